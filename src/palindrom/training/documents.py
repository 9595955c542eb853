"""Documents from silver tables, as DataFrame → DataFrame transformations (the builder's first step).

- chat: one document per conversation, its turns in order (`turn`, then time, then event id);
  conversations with any negative rating are dropped when the spec asks, and so are conversations
  without an assistant turn (nothing to learn from under an assistant-only loss mask);
- text: one document per message text, caption or transcript;
- multimodal: one example per uploaded media object, its caption or transcript joined on
  `(media_type, path)` with the object's embedding from the pinned model and revision.

Nothing is filtered out silently: every candidate keeps its row, and a dropped one carries
`drop_reason` (and `dropped_by` = "documents"), so the builder counts it. Every document has a
`document_id`, `source`, and the split keys `user_id` and `conversation_id`; chat documents have
`turns` (role, text), the others `text`.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from palindrom.events.columns import payload_column
from palindrom.training.spec import PinnedEmbedding, Source

MESSAGE, UPLOAD, RATING = (payload_column(t) for t in ("conversation.message", "media.uploaded", "feedback.rating"))
STAGE = "documents"


def source_events(events: DataFrame, source: Source, build_date: dt.date) -> DataFrame:
    """The source's event types within its date range (by the UTC date the event occurred)."""
    first, last = source.dates.resolve(build_date)
    return events.filter(F.col("event_type").isin(list(source.event_types))
                         & F.col("occurred_at").cast("date").between(F.lit(first), F.lit(last)))


def _drop_when(*reasons: tuple[Column, str]) -> list[Column]:
    """`drop_reason` = the first reason whose condition holds (null: kept), and `dropped_by`."""
    reason = F.lit(None).cast("string")
    for condition, name in reversed(reasons):
        reason = F.when(condition, F.lit(name)).otherwise(reason)
    return [reason.alias("drop_reason"), F.when(reason.isNotNull(), F.lit(STAGE)).alias("dropped_by")]


def chat_documents(events: DataFrame, source: str, drop_negative_feedback: bool) -> DataFrame:
    messages = events.filter(F.col("event_type") == "conversation.message").select(
        F.col(f"{MESSAGE}.conversation_id").alias("conversation_id"), "user_id",
        F.struct(F.col(f"{MESSAGE}.turn").alias("turn"), F.col("occurred_at"), F.col("event_id"),
                 F.col(f"{MESSAGE}.role").alias("role"), F.col(f"{MESSAGE}.text").alias("text")).alias("t"))
    negative = events.filter((F.col("event_type") == "feedback.rating") & (F.col(f"{RATING}.rating") < 0)) \
        .select(F.col(f"{RATING}.conversation_id").alias("conversation_id"), F.lit(True).alias("negative")) \
        .distinct()
    chats = messages.groupBy("conversation_id").agg(
        F.min("user_id").alias("user_id"),
        F.transform(F.array_sort(F.collect_list("t")), lambda t: F.struct(t["role"].alias("role"),
                                                                          t["text"].alias("text"))).alias("turns"),
    ).join(negative, "conversation_id", "left")
    has_assistant = F.exists("turns", lambda t: t["role"] == "assistant")
    return chats.select(
        F.col("conversation_id").alias("document_id"), F.lit(source).alias("source"), "user_id", "conversation_id",
        "turns",
        *_drop_when((F.lit(drop_negative_feedback) & F.coalesce("negative", F.lit(False)), "negative_feedback"),
                    (~has_assistant, "no_assistant_turn")),
    )


def _upload_text() -> Column:
    return F.coalesce(F.col(f"{UPLOAD}.caption"), F.col(f"{UPLOAD}.transcript"))


def text_documents(events: DataFrame, source: str) -> DataFrame:
    is_message = F.col("event_type") == "conversation.message"
    text = F.when(is_message, F.col(f"{MESSAGE}.text")) \
        .when(F.col("event_type") == "media.uploaded", _upload_text())
    return events.select(
        F.col("event_id").alias("document_id"), F.lit(source).alias("source"), "user_id",
        F.when(is_message, F.col(f"{MESSAGE}.conversation_id")).alias("conversation_id"),
        text.alias("text"),
        *_drop_when((text.isNull(), "no_text")),
    )


def multimodal_documents(events: DataFrame, metadata: DataFrame, embeddings: DataFrame,
                         pinned: dict[str, PinnedEmbedding], source: str) -> DataFrame:
    uploads = events.filter(F.col("event_type") == "media.uploaded").select(
        F.col("event_id").alias("document_id"), "user_id",
        F.col(f"{UPLOAD}.media_type").alias("media_type"), F.col(f"{UPLOAD}.file_name").alias("path"),
        _upload_text().alias("text"))
    objects = metadata.select("media_type", F.explode("paths").alias("path"), "sha256")
    wanted = F.lit(False)
    for modality, model in pinned.items():
        wanted = wanted | ((F.col("modality") == modality) & (F.col("model_name") == model.model_name)
                           & (F.col("model_revision") == model.model_revision))
    vectors = embeddings.filter(wanted).select(F.col("modality").alias("media_type"), "sha256", "vector")
    joined = uploads.join(objects, ["media_type", "path"], "left").join(vectors, ["media_type", "sha256"], "left")
    return joined.select(
        "document_id", F.lit(source).alias("source"), "user_id", F.lit(None).cast("string").alias("conversation_id"),
        "text", "media_type", "path", "sha256", "vector",
        # A file that failed decoding is in quarantine, not in media_metadata.
        *_drop_when((F.col("sha256").isNull(), "media_not_decoded"),
                    (F.col("vector").isNull(), "no_embedding"),
                    (F.col("text").isNull(), "no_text")),
    )
