"""process_media (silver): bronze media → silver/media_metadata, silver/quarantine/media, and
silver/media_embeddings (media, plus texts: messages, captions, transcripts).

Features first, per media type, for the bronze batches not processed yet: objects already known
(by SHA-256) only gain the new paths; new objects are decoded once; what cannot be decoded goes to
quarantine with a reason, one row per path. Every bronze row of those batches must then be in
metadata (among an object's paths) or in quarantine before the batch record is written. Then
embeddings, incrementally: only objects and texts with no row for the configured model name and
revision are embedded; a new model or revision adds rows beside the old ones.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType, TimestampType

from palindrom import quality
from palindrom.config import PipelineConfig
from palindrom.data.processors import EMBEDDING_SCHEMA, PROCESSORS, TextProcessor, metadata_schema
from palindrom.events.columns import payload_column
from palindrom.lake import tables
from palindrom.lake.paths import MEDIA_FOLDERS, Lake
from palindrom.logging import logger
from pipelines.tasks import task_main

PROCESSED_AT = StructField("processed_at", TimestampType(), False)
METADATA_SCHEMA = StructType([*metadata_schema().fields, PROCESSED_AT])
QUARANTINE_MEDIA_SCHEMA = StructType([
    StructField("media_type", StringType(), False),
    StructField("path", StringType(), False),
    StructField("sha256", StringType(), False),
    StructField("reason", StringType(), False),
    StructField("detail", StringType(), True),
    StructField("bronze_batch_id", StringType(), False),
    StructField("quarantined_at", TimestampType(), False),
])
EMBEDDINGS_SCHEMA = StructType([*EMBEDDING_SCHEMA.fields, StructField("embedded_at", TimestampType(), False)])
EMBEDDING_KEYS = ("sha256", "modality", "model_name", "model_revision")
MEDIA_BATCHES_SCHEMA = StructType([
    StructField("media_type", StringType(), False),
    StructField("batch_id", StringType(), False),
    StructField("rows", LongType(), False),
    StructField("to_metadata", LongType(), False),
    StructField("to_quarantine", LongType(), False),
    StructField("processed_at", TimestampType(), False),
])
# Texts worth an embedding: (event type, payload field).
TEXT_FIELDS = (("conversation.message", "text"), ("media.uploaded", "caption"), ("media.uploaded", "transcript"))


@dataclass
class ProcessResult:
    batches: dict[str, list[str]] = field(default_factory=dict)
    to_metadata: dict[str, int] = field(default_factory=dict)
    to_quarantine: dict[str, int] = field(default_factory=dict)
    embedded: dict[str, int] = field(default_factory=dict)


def pending_batches(spark: SparkSession, lake: Lake, media_type: str) -> list[str]:
    bronze, done = lake.table(f"bronze.{MEDIA_FOLDERS[media_type]}"), lake.table("silver.media_batches")
    if not tables.exists(spark, bronze):
        return []
    batches = tables.read(spark, bronze).select("batch_id").distinct()
    if tables.exists(spark, done):
        recorded = tables.read(spark, done).filter(F.col("media_type") == media_type).select("batch_id")
        batches = batches.join(recorded, "batch_id", "left_anti")
    return sorted(r[0] for r in batches.collect())


def quarantine_rows(rejected: DataFrame, bronze: DataFrame, now: dt.datetime) -> DataFrame:
    """One quarantine row per bronze path of each object that could not be decoded."""
    per_path = rejected.select("media_type", "sha256", "reason", "detail", F.explode("paths").alias("path"))
    return per_path.join(bronze.select("path", F.col("batch_id").alias("bronze_batch_id")), "path").select(
        "media_type", "path", "sha256", "reason", "detail", "bronze_batch_id",
        F.lit(now).cast("timestamp").alias("quarantined_at"),
    )


def merged_paths(new: DataFrame, known: DataFrame) -> DataFrame:
    """Objects already in metadata that new bronze rows point at, with the union of their paths."""
    added = new.join(known, "sha256").groupBy("sha256", "media_type", "paths").agg(
        F.collect_set("path").alias("new_paths"))
    union = F.array_sort(F.array_union("paths", "new_paths"))
    return (added.filter(F.size(union) > F.size("paths"))
            .select("media_type", "sha256", union[0].alias("path"), union.alias("paths")))


def unaccounted(new: DataFrame, metadata: DataFrame, quarantine: DataFrame) -> DataFrame:
    """Bronze rows (path, sha256) that are neither among their object's paths nor in quarantine."""
    accounted = metadata.select("sha256", F.explode("paths").alias("path")).unionByName(
        quarantine.select("sha256", "path"))
    return new.select("path", "sha256").join(accounted, ["path", "sha256"], "left_anti")


def process_features(spark: SparkSession, config: PipelineConfig, lake: Lake, media_type: str,
                     result: ProcessResult) -> None:
    pending = pending_batches(spark, lake, media_type)
    if not pending:
        logger.info("process_media: no %s batches to process", media_type)
        return
    bronze = tables.read(spark, lake.table(f"bronze.{MEDIA_FOLDERS[media_type]}"))
    new = bronze.filter(F.col("batch_id").isin(pending))
    meta_ref, quarantine_ref = lake.table("silver.media_metadata"), lake.table("silver.quarantine.media")
    tables.ensure(spark, meta_ref, METADATA_SCHEMA, partition_by=["media_type"])
    tables.ensure(spark, quarantine_ref, QUARANTINE_MEDIA_SCHEMA)
    known = tables.read(spark, meta_ref).filter(F.col("media_type") == media_type).select(
        "media_type", "sha256", "paths")
    now = dt.datetime.now(dt.UTC)

    fresh = new.join(known.select("sha256"), "sha256", "left_anti")
    features = PROCESSORS[media_type](config.media, config.embeddings).extract_features(fresh).persist()
    decoded = features.filter(F.col("reason").isNull()).drop("reason", "detail")
    rejected = features.filter(F.col("reason").isNotNull())
    n_decoded, n_rejected = decoded.count(), rejected.count()
    logger.info("process_media: %s batches %s: %d new objects decoded, %d refused",
                media_type, ", ".join(pending), n_decoded, n_rejected)

    if n_rejected:
        tables.insert_new(spark, quarantine_rows(rejected, new, now), quarantine_ref,
                          ("media_type", "path", "sha256"))
    if n_decoded:
        rows = decoded.withColumn("processed_at", F.lit(now).cast("timestamp"))
        tables.insert_new(spark, rows.unionByName(spark.createDataFrame([], METADATA_SCHEMA),
                                                  allowMissingColumns=True).select(*METADATA_SCHEMA.fieldNames()),
                          meta_ref, ("media_type", "sha256"))
    updates = merged_paths(new, known)
    if not updates.isEmpty():
        tables.update_columns(spark, updates, meta_ref, ("media_type", "sha256"), ("path", "paths"))
    features.unpersist()

    metadata = tables.read(spark, meta_ref).filter(F.col("media_type") == media_type)
    quarantine = tables.read(spark, quarantine_ref).filter(F.col("media_type") == media_type)
    lost = unaccounted(new, metadata, quarantine)
    quality.enforce([quality.media_conserved(lost, media_type), *quality.media_metadata_checks(metadata),
                     *quality.media_quarantine_checks(quarantine)])
    counts = new.join(quarantine.select("path", "sha256", F.lit(1).alias("q")), ["path", "sha256"], "left") \
        .groupBy("batch_id").agg(F.count("*").alias("rows"), F.count("q").alias("to_quarantine")).collect()
    record = [(media_type, r["batch_id"], r["rows"], r["rows"] - r["to_quarantine"], r["to_quarantine"], now)
              for r in counts]
    tables.ensure(spark, lake.table("silver.media_batches"), MEDIA_BATCHES_SCHEMA)
    tables.append(spark.createDataFrame(record, MEDIA_BATCHES_SCHEMA), lake.table("silver.media_batches"))
    result.batches[media_type] = pending
    result.to_metadata[media_type] = sum(r[3] for r in record)
    result.to_quarantine[media_type] = sum(r[4] for r in record)


def _insert_embeddings(spark: SparkSession, lake: Lake, vectors: DataFrame, now: dt.datetime) -> None:
    ref = lake.table("silver.media_embeddings")
    tables.insert_new(spark, vectors.withColumn("embedded_at", F.lit(now).cast("timestamp")), ref, EMBEDDING_KEYS)


def _not_embedded(spark: SparkSession, lake: Lake, objects: DataFrame, modality: str, model: tuple[str, str]) \
        -> DataFrame:
    ref = lake.table("silver.media_embeddings")
    tables.ensure(spark, ref, EMBEDDINGS_SCHEMA, partition_by=["modality"])
    name, revision = model
    done = tables.read(spark, ref).filter(
        (F.col("modality") == modality) & (F.col("model_name") == name) & (F.col("model_revision") == revision))
    return objects.join(done.select("sha256"), "sha256", "left_anti")


def embed_media(spark: SparkSession, config: PipelineConfig, lake: Lake, media_type: str,
                result: ProcessResult) -> None:
    meta_ref = lake.table("silver.media_metadata")
    if not tables.exists(spark, meta_ref):
        return
    processor = PROCESSORS[media_type](config.media, config.embeddings)
    model = processor.model_identity()
    metadata = tables.read(spark, meta_ref).filter(F.col("media_type") == media_type)
    todo = _not_embedded(spark, lake, metadata.select("sha256", "path", "key_frames"), media_type, model)
    n = todo.count()
    result.embedded[media_type] = n
    if not n:
        logger.info("process_media: every %s already embedded with %s@%s", media_type, *model)
        return
    logger.info("process_media: embedding %d %s objects with %s@%s", n, media_type, *model)
    if media_type == "video":
        inputs = todo.select("sha256", "key_frames")
    else:  # the bytes of each object's first path
        bronze = tables.read(spark, lake.table(f"bronze.{MEDIA_FOLDERS[media_type]}"))
        inputs = bronze.select("path", "content", "blob_uri").join(F.broadcast(todo.select("sha256", "path")), "path")
    _insert_embeddings(spark, lake, processor.extract_embeddings(inputs), dt.datetime.now(dt.UTC))


def texts(spark: SparkSession, lake: Lake) -> DataFrame | None:
    """Every text in silver events worth an embedding (messages, captions, transcripts)."""
    ref = lake.table("silver.events")
    if not tables.exists(spark, ref):
        return None
    events = tables.read(spark, ref)
    parts = [events.filter(F.col("event_type") == event_type).select(
        F.col(f"{payload_column(event_type)}.{name}").alias("text")) for event_type, name in TEXT_FIELDS]
    union = parts[0]
    for part in parts[1:]:
        union = union.unionByName(part)
    return union.filter(F.col("text").isNotNull())


def embed_texts(spark: SparkSession, config: PipelineConfig, lake: Lake, result: ProcessResult) -> None:
    source = texts(spark, lake)
    if source is None:
        logger.info("process_media: no silver events, so no texts to embed")
        return
    processor = TextProcessor(config.media, config.embeddings)
    model = processor.model_identity()
    todo = _not_embedded(spark, lake, processor.extract_features(source), "text", model)
    n = todo.count()
    result.embedded["text"] = n
    if not n:
        logger.info("process_media: every text already embedded with %s@%s", *model)
        return
    logger.info("process_media: embedding %d distinct texts with %s@%s", n, *model)
    _insert_embeddings(spark, lake, processor.extract_embeddings(todo), dt.datetime.now(dt.UTC))


def run(spark: SparkSession, config: PipelineConfig) -> ProcessResult:
    lake = Lake(config.storage_root)
    result = ProcessResult()
    for media_type in MEDIA_FOLDERS:
        process_features(spark, config, lake, media_type, result)
    for media_type in MEDIA_FOLDERS:
        embed_media(spark, config, lake, media_type, result)
    embed_texts(spark, config, lake, result)
    logger.info("process_media: metadata %s, quarantine %s, embedded %s",
                result.to_metadata, result.to_quarantine, result.embedded)
    return result


def main(argv: list[str] | None = None) -> int:
    return task_main("process_media", "silver", run, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())
