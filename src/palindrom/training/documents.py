"""Documents from silver tables, as DataFrame → DataFrame transformations (the builder's first step).

- chat: one document per conversation, its turns in order (`turn`, then time, then event id), with
  an optional filter dropping conversations that received any negative rating;
- text: one document per message text, caption or transcript;
- multimodal: one example per uploaded media object, its caption or transcript joined on
  `(media_type, path)` with the object's embedding from the pinned model and revision.
Every document has a `document_id`, `user_id` and `conversation_id` (the split keys) and `source`.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from palindrom.events.columns import payload_column
from palindrom.training.spec import PinnedEmbedding, Source

MESSAGE, UPLOAD, RATING = (payload_column(t) for t in ("conversation.message", "media.uploaded", "feedback.rating"))


def source_events(events: DataFrame, source: Source, build_date: dt.date) -> DataFrame:
    """The source's event types within its date range (by the UTC date the event occurred)."""
    first, last = source.dates.resolve(build_date)
    return events.filter(F.col("event_type").isin(list(source.event_types))
                         & F.col("occurred_at").cast("date").between(F.lit(first), F.lit(last)))


def chat_documents(events: DataFrame, source: str, drop_negative_feedback: bool) -> DataFrame:
    messages = events.filter(F.col("event_type") == "conversation.message").select(
        F.col(f"{MESSAGE}.conversation_id").alias("conversation_id"), "user_id",
        F.struct(F.col(f"{MESSAGE}.turn").alias("turn"), F.col("occurred_at"), F.col("event_id"),
                 F.col(f"{MESSAGE}.role").alias("role"), F.col(f"{MESSAGE}.text").alias("text")).alias("t"))
    if drop_negative_feedback:
        negative = events.filter((F.col("event_type") == "feedback.rating") & (F.col(f"{RATING}.rating") < 0)) \
            .select(F.col(f"{RATING}.conversation_id").alias("conversation_id")).distinct()
        messages = messages.join(negative, "conversation_id", "left_anti")
    return messages.groupBy("conversation_id").agg(
        F.min("user_id").alias("user_id"),
        F.transform(F.array_sort(F.collect_list("t")), lambda t: F.struct(t["role"].alias("role"),
                                                                          t["text"].alias("text"))).alias("turns"),
    ).select(F.col("conversation_id").alias("document_id"), "conversation_id", "user_id", "turns",
             F.lit(source).alias("source"))


def text_documents(events: DataFrame, source: str) -> DataFrame:
    texts = events.select(
        F.col("event_id").alias("document_id"), "user_id",
        F.when(F.col("event_type") == "conversation.message", F.col(f"{MESSAGE}.conversation_id"))
        .alias("conversation_id"),
        F.when(F.col("event_type") == "conversation.message", F.col(f"{MESSAGE}.text"))
        .when(F.col("event_type") == "media.uploaded",
              F.coalesce(F.col(f"{UPLOAD}.caption"), F.col(f"{UPLOAD}.transcript"))).alias("text"),
    )
    return texts.filter(F.col("text").isNotNull()).withColumn("source", F.lit(source))


def multimodal_documents(events: DataFrame, metadata: DataFrame, embeddings: DataFrame,
                         pinned: dict[str, PinnedEmbedding], source: str) -> DataFrame:
    uploads = events.filter(F.col("event_type") == "media.uploaded").select(
        F.col("event_id").alias("document_id"), "user_id", F.lit(None).cast("string").alias("conversation_id"),
        F.col(f"{UPLOAD}.media_type").alias("media_type"), F.col(f"{UPLOAD}.file_name").alias("path"),
        F.coalesce(F.col(f"{UPLOAD}.caption"), F.col(f"{UPLOAD}.transcript")).alias("text"))
    objects = metadata.select("media_type", "sha256", F.explode("paths").alias("path"))
    wanted = F.lit(False)
    for modality, model in pinned.items():
        wanted = wanted | ((F.col("modality") == modality) & (F.col("model_name") == model.model_name)
                           & (F.col("model_revision") == model.model_revision))
    vectors = embeddings.filter(wanted).select(F.col("modality").alias("media_type"), "sha256", "vector")
    # Uploads whose file was quarantined, or has no vector from the pinned model, make no example:
    # the builder reports them among the documents dropped, by reason.
    return (uploads.filter(F.col("text").isNotNull())
            .join(objects, ["media_type", "path"]).join(vectors, ["media_type", "sha256"])
            .withColumn("source", F.lit(source)))
