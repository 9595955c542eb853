"""Documents built from the sample lake's silver tables (read only)."""

import datetime as dt

import pytest
from pyspark.sql import functions as F

from palindrom.lake import tables
from palindrom.lake.paths import Lake
from palindrom.training import documents
from palindrom.training.spec import load_spec
from pipelines.sample_media import SAMPLE_MEDIA

pytestmark = pytest.mark.integration
BUILD_DATE = dt.date(2026, 11, 27)  # the sample lake holds 2026-11-26


def read(spark, config, name):
    return tables.read(spark, Lake(config.storage_root).table(name))


def test_chat_documents_keep_turn_order_and_drop_negative_conversations(spark_session, sample_lake):
    spec = load_spec("chat_sft")
    events = documents.source_events(read(spark_session, sample_lake, "silver.events"), spec.sources[0], BUILD_DATE)
    chats = documents.chat_documents(events, "conversations", drop_negative_feedback=True)
    negative = {r[0] for r in events.filter("event_type = 'feedback.rating'")
                .filter(F.col(f"{documents.RATING}.rating") < 0)
                .select(f"{documents.RATING}.conversation_id").collect()}
    reasons = {r["document_id"]: r["drop_reason"] for r in chats.collect()}
    conversations = {r[0] for r in events.filter("event_type = 'conversation.message'")
                     .select(f"{documents.MESSAGE}.conversation_id").distinct().collect()}
    assert set(reasons) == conversations  # every conversation is a candidate, kept or dropped with a reason
    assert negative
    assert {d for d, reason in reasons.items() if reason == "negative_feedback"} == negative & conversations
    kept_without_filter = documents.chat_documents(events, "conversations", drop_negative_feedback=False)
    assert not kept_without_filter.filter(F.col("drop_reason") == "negative_feedback").count()
    messages = events.filter("event_type = 'conversation.message'").select(
        f"{documents.MESSAGE}.conversation_id", f"{documents.MESSAGE}.turn", f"{documents.MESSAGE}.text")
    some = chats.filter(F.col("drop_reason").isNull()).first()
    expected = [r["text"] for r in messages.filter(F.col("conversation_id") == some["document_id"])
                .orderBy("turn").collect()]
    assert [t["text"] for t in some["turns"]] == expected


def test_an_old_date_range_selects_nothing(spark_session, sample_lake):
    spec = load_spec("chat_sft")
    events = documents.source_events(read(spark_session, sample_lake, "silver.events"), spec.sources[0],
                                     dt.date(2027, 6, 1))
    assert events.count() == 0


def test_text_and_multimodal_documents(spark_session, sample_lake):
    spec = load_spec("multimodal_captions")
    events = documents.source_events(read(spark_session, sample_lake, "silver.events"), spec.sources[0], BUILD_DATE)
    texts = documents.text_documents(events, "captions")
    assert texts.count() == events.count()
    assert texts.filter(F.col("drop_reason").isNotNull()).count() == 0  # every sample upload has a caption
    examples = documents.multimodal_documents(events, read(spark_session, sample_lake, "silver.media_metadata"),
                                              read(spark_session, sample_lake, "silver.media_embeddings"),
                                              spec.embeddings, "uploads")
    broken = {m.path for m in SAMPLE_MEDIA if m.reason}
    rows = examples.select("path", "text", F.size("vector").alias("dim"), "media_type", "drop_reason").collect()
    assert len(rows) == events.count()  # one candidate per upload
    kept = [r for r in rows if r["drop_reason"] is None]
    assert kept
    assert not {r["path"] for r in kept} & broken
    assert {r["drop_reason"] for r in rows if r["path"] in broken} == {"media_not_decoded"}
    assert {(r["media_type"], r["dim"]) for r in kept} <= {("image", 112), ("video", 112), ("audio", 64)}
