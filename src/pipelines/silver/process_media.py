"""process_media (silver): bronze media → silver/media_metadata, silver/quarantine/media, and
silver/media_embeddings (media, plus texts: messages, captions, transcripts).

Features first, for the bronze batches of every media type not processed yet (one pass, one
commit per table): objects already known (by SHA-256) only gain the new paths; new objects are
decoded once; what cannot be decoded goes to quarantine with a reason, one row per path. Every
bronze row of those batches must then be in metadata (among an object's paths) or in quarantine
before the batch record is written. Then embeddings, incrementally: only objects and texts with no
row for the configured model name and revision are embedded (media in one commit, texts in
another: their Arrow batch sizes differ); a new model or revision adds rows beside the old ones.
A media type is looked at again only once metadata has changed since its objects were all embedded
with that model (a progress record per type and model). Texts are looked for only among the silver
events inserted since the last run for that model (silver's change data feed; all of silver for a
new model).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType, TimestampType

from palindrom import quality
from palindrom.config import PipelineConfig
from palindrom.data.processors import EMBEDDING_SCHEMA, OUTCOME_FIELDS, PROCESSORS, TextProcessor, metadata_schema
from palindrom.events.columns import payload_column
from palindrom.lake import tables
from palindrom.lake.paths import MEDIA_FOLDERS, Lake, TableRef
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
TEXT_PROGRESS_SCHEMA = StructType([
    StructField("model_name", StringType(), False),
    StructField("model_revision", StringType(), False),
    StructField("silver_version", LongType(), False),  # silver.events' texts are embedded up to this version
    StructField("texts_read", LongType(), False),  # distinct texts among the events read
    StructField("embedded", LongType(), False),
    StructField("embedded_at", TimestampType(), False),
])
MEDIA_PROGRESS_SCHEMA = StructType([
    StructField("media_type", StringType(), False),
    StructField("model_name", StringType(), False),
    StructField("model_revision", StringType(), False),
    StructField("metadata_version", LongType(), False),  # every object of this version has an embedding
    StructField("embedded", LongType(), False),
    StructField("embedded_at", TimestampType(), False),
])
# Texts worth an embedding: (event type, payload field).
TEXT_FIELDS = (("conversation.message", "text"), ("media.uploaded", "caption"), ("media.uploaded", "transcript"))


@dataclass
class ProcessResult:
    batches: dict[str, list[str]] = field(default_factory=dict)
    to_metadata: dict[str, int] = field(default_factory=dict)
    to_quarantine: dict[str, int] = field(default_factory=dict)
    embedded: dict[str, int] = field(default_factory=dict)
    texts_read: int = 0  # distinct texts of the silver events read (those inserted since the last run)


def pending_batches(lake: Lake, batch_ids: Callable[[TableRef], Collection[str] | None]) \
        -> dict[str, list[str]] | None:
    """Each media type's bronze batches that the batch record does not name (types with none left
    out), given each bronze table's batch ids (None where `batch_ids` cannot tell: then None)."""
    recorded = {(r["media_type"], r["batch_id"])
                for r in tables.read_small(lake.table("silver.media_batches"), ["media_type", "batch_id"])}
    pending = {}
    for media_type, folder in MEDIA_FOLDERS.items():
        batches = batch_ids(lake.table(f"bronze.{folder}"))
        if batches is None:
            return None
        if unrecorded := sorted(b for b in batches if (media_type, b) not in recorded):
            pending[media_type] = unrecorded
    return pending


def without_absent_blobs(bronze: DataFrame, ref: TableRef, where: tuple[str, Collection] | None = None) \
        -> DataFrame:
    """Bronze media rows without their `blob_uri` column where the Delta log shows it null in every row
    that may be read (`where`: tables.logged_nulls_only): the processors then look for no blobs, a
    Spark job per media type (about a second) that in the usual run finds none."""
    return bronze.drop("blob_uri") if tables.logged_nulls_only(ref, "blob_uri", where) else bronze


def quarantine_rows(rejected: DataFrame, bronze: DataFrame, now: dt.datetime) -> DataFrame:
    """One quarantine row per bronze path of each object that could not be decoded."""
    per_path = rejected.select("media_type", "sha256", "reason", "detail", F.explode("paths").alias("path"))
    return per_path.join(bronze.select("media_type", "path", F.col("batch_id").alias("bronze_batch_id")),
                         ["media_type", "path"]).select(
        "media_type", "path", "sha256", "reason", "detail", "bronze_batch_id",
        F.lit(now).cast("timestamp").alias("quarantined_at"),
    )


def merged_paths(new: DataFrame, known: DataFrame) -> DataFrame:
    """Objects already in metadata that new bronze rows point at, with the union of their paths."""
    added = new.join(known, ["media_type", "sha256"]).groupBy("media_type", "sha256", "paths").agg(
        F.collect_set("path").alias("new_paths"))
    union = F.array_sort(F.array_union("paths", "new_paths"))
    return (added.filter(F.size(union) > F.size("paths"))
            .select("media_type", "sha256", union[0].alias("path"), union.alias("paths")))


def unaccounted(new: DataFrame, metadata: DataFrame, quarantine: DataFrame) -> DataFrame:
    """Bronze rows that are neither among their object's paths in metadata nor in quarantine."""
    keys = ["media_type", "path", "sha256"]
    accounted = metadata.select("media_type", "sha256", F.explode("paths").alias("path")).unionByName(
        quarantine.select("media_type", "sha256", "path"))
    return new.select(*keys).join(accounted, keys, "left_anti")


def inspected(config: PipelineConfig, bronze: dict[str, DataFrame]) -> DataFrame:
    """Each media type's bronze rows → one row per object (by SHA-256, with its `paths` among those
    rows): its metadata columns where it decodes, else its `reason` and `detail`."""
    spark = next(iter(bronze.values())).sparkSession
    every_column = spark.createDataFrame([], StructType([*metadata_schema().fields, *OUTCOME_FIELDS]))
    return _union([every_column, *(PROCESSORS[media_type](config.media, config.embeddings).extract_features(rows)
                                   for media_type, rows in bronze.items())])


def write_metadata(spark: SparkSession, meta_ref: TableRef, decoded: DataFrame | None, paths: DataFrame,
                   known: DataFrame, now: dt.datetime) -> None:
    """Decoded objects (inspected's rows without a reason; None: none) into metadata, keyed by media
    type and SHA-256; then the objects `known` before (metadata's media_type, sha256, paths) gain the
    bronze `paths` (media_type, sha256, path) that point at them."""
    if decoded is not None:
        rows = decoded.withColumn("processed_at", F.lit(now).cast("timestamp")).select(*METADATA_SCHEMA.fieldNames())
        tables.insert_new(spark, rows, meta_ref, ("media_type", "sha256"))
    updates = merged_paths(paths, known)
    if not updates.isEmpty():
        tables.update_columns(spark, updates, meta_ref, ("media_type", "sha256"), ("path", "paths"))


def _union(frames: list[DataFrame]) -> DataFrame:
    return functools.reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)


def process_features(spark: SparkSession, config: PipelineConfig, lake: Lake, result: ProcessResult) -> None:
    """Every media type's new bronze batches in one pass: one commit per table, one conservation check."""
    pending = pending_batches(lake, lambda ref: tables.batch_ids(spark, ref))
    if not pending:
        logger.info("process_media: no bronze media batches to process")
        return
    meta_ref, quarantine_ref = lake.table("silver.media_metadata"), lake.table("silver.quarantine.media")
    batches_ref = lake.table("silver.media_batches")
    tables.ensure(spark, meta_ref, METADATA_SCHEMA, partition_by=["media_type"])
    tables.ensure(spark, quarantine_ref, QUARANTINE_MEDIA_SCHEMA)
    known = tables.read(spark, meta_ref).select("media_type", "sha256", "paths")
    now = dt.datetime.now(dt.UTC)

    news, fresh = [], {}
    for media_type, batches in pending.items():
        bronze_ref = lake.table(f"bronze.{MEDIA_FOLDERS[media_type]}")
        new = without_absent_blobs(tables.read(spark, bronze_ref).filter(F.col("batch_id").isin(batches)),
                                   bronze_ref, ("batch_id", batches)).withColumn("media_type", F.lit(media_type))
        news.append(new.select("media_type", "path", "sha256", "batch_id"))
        fresh[media_type] = new.join(known.filter(F.col("media_type") == media_type).select("sha256"),
                                     "sha256", "left_anti")
    new = _union(news)
    outcome = inspected(config, fresh).persist()
    counts = {r["media_type"]: r for r in outcome.groupBy("media_type").agg(
        F.count(F.when(F.col("reason").isNull(), 1)).alias("decoded"),
        F.count("reason").alias("refused")).collect()}
    for media_type, batches in pending.items():
        c = counts.get(media_type)
        logger.info("process_media: %s batches %s: %d new objects decoded, %d refused", media_type,
                    ", ".join(batches), c["decoded"] if c else 0, c["refused"] if c else 0)

    # A path enters bronze once, so its quarantine rows can only be of these batches, and they are
    # appended in one commit: a batch with rows there was written whole by an earlier run of it that
    # died before its batch record. Quarantine's other files are skipped by their statistics on
    # bronze_batch_id, not read by every run.
    of_these_batches = sorted({b for batches in pending.values() for b in batches})
    if any(c["refused"] for c in counts.values()):
        unwritten = tables.values_without_rows(spark, quarantine_ref, "bronze_batch_id", of_these_batches)
        if unwritten:
            rejected = outcome.filter(F.col("reason").isNotNull())
            tables.append(quarantine_rows(rejected, new.filter(F.col("batch_id").isin(unwritten)), now),
                          quarantine_ref)
    decoded = outcome.filter(F.col("reason").isNull()) if any(c["decoded"] for c in counts.values()) else None
    write_metadata(spark, meta_ref, decoded, new, known, now)
    outcome.unpersist()

    metadata = tables.read(spark, meta_ref)
    quarantine = tables.read(spark, quarantine_ref).filter(F.col("bronze_batch_id").isin(of_these_batches))
    quality.enforce([quality.media_conserved(unaccounted(new, metadata, quarantine)),
                     *quality.media_metadata_checks(metadata), *quality.media_quarantine_checks(quarantine)])
    # The batch record is the last commit: a run that dies before it is simply run again (metadata's
    # MERGEs are keyed and quarantine's append skips the batches it holds, so a rerun changes nothing
    # they already wrote).
    flagged = quarantine.select("media_type", "path", "sha256", F.lit(1).alias("q"))
    record = (new.join(flagged, ["media_type", "path", "sha256"], "left")
              .groupBy("media_type", "batch_id").agg(F.count("*").alias("rows"), F.count("q").alias("to_quarantine"))
              .select("media_type", "batch_id", "rows", (F.col("rows") - F.col("to_quarantine")).alias("to_metadata"),
                      "to_quarantine")
              .collect())
    tables.append_small(batches_ref, [(*r, now) for r in record], MEDIA_BATCHES_SCHEMA)
    for r in record:
        result.batches.setdefault(r["media_type"], []).append(r["batch_id"])
        result.to_metadata[r["media_type"]] = result.to_metadata.get(r["media_type"], 0) + r["to_metadata"]
        result.to_quarantine[r["media_type"]] = result.to_quarantine.get(r["media_type"], 0) + r["to_quarantine"]


def _not_embedded(spark: SparkSession, lake: Lake, objects: DataFrame, modality: str, model: tuple[str, str]) \
        -> DataFrame:
    ref = lake.table("silver.media_embeddings")
    tables.ensure(spark, ref, EMBEDDINGS_SCHEMA, partition_by=["modality"])
    name, revision = model
    done = tables.read(spark, ref).filter(
        (F.col("modality") == modality) & (F.col("model_name") == name) & (F.col("model_revision") == revision))
    return objects.join(done.select("sha256"), "sha256", "left_anti")


def _insert_embeddings(spark: SparkSession, lake: Lake, vectors: DataFrame) -> None:
    now = F.lit(dt.datetime.now(dt.UTC)).cast("timestamp")
    tables.insert_new(spark, vectors.withColumn("embedded_at", now), lake.table("silver.media_embeddings"),
                      EMBEDDING_KEYS)


def media_processors(config: PipelineConfig) -> dict:
    return {media_type: PROCESSORS[media_type](config.media, config.embeddings) for media_type in MEDIA_FOLDERS}


def media_to_embed(lake: Lake, models: dict[str, tuple[str, str]]) -> tuple[int | None, list[str]]:
    """silver.media_metadata's current version (None: no table), and the media types whose objects
    the progress record does not say are all embedded with their model (name, revision) at it."""
    metadata_version = tables.current_version(lake.table("silver.media_metadata"))
    if metadata_version is None:
        return None, []
    progress = tables.read_small(lake.table("silver.media_embeddings_progress"),
                                 ["media_type", "model_name", "model_revision", "metadata_version"])
    done = {(r["media_type"], r["model_name"], r["model_revision"])
            for r in progress if r["metadata_version"] == metadata_version}
    return metadata_version, [t for t in MEDIA_FOLDERS if (t, *models[t]) not in done]


def embed_media(spark: SparkSession, config: PipelineConfig, lake: Lake, result: ProcessResult) -> None:
    """Objects with no embedding for their configured model: every media type in one commit. A media
    type whose objects were all embedded with its model at the present metadata version (the progress
    record) is skipped without a query: the anti-joins that find nothing cost about 10 s of a run with
    nothing new. The record is written last: a run that dies before it looks again, and finds what it
    embedded already there."""
    processors = media_processors(config)
    models = {media_type: processor.model_identity() for media_type, processor in processors.items()}
    metadata_version, looked_at = media_to_embed(lake, models)
    if metadata_version is None:
        return
    for media_type, (name, revision) in models.items():
        if media_type not in looked_at:
            result.embedded[media_type] = 0
            logger.info("process_media: every %s of silver.media_metadata version %d already embedded with %s@%s",
                        media_type, metadata_version, name, revision)
    if not looked_at:
        return
    progress_ref = lake.table("silver.media_embeddings_progress")
    metadata = tables.read(spark, lake.table("silver.media_metadata"), metadata_version)
    todo = {}
    for media_type in looked_at:
        objects = metadata.filter(F.col("media_type") == media_type).select("sha256", "path", "key_frames")
        todo[media_type] = (processors[media_type], models[media_type],
                            _not_embedded(spark, lake, objects, media_type, models[media_type]))
    counts = dict(_union([df.select(F.lit(t).alias("modality")) for t, (_, _, df) in todo.items()])
                  .groupBy("modality").count().collect())
    vectors = []
    for media_type, (processor, (name, revision), objects) in todo.items():
        result.embedded[media_type] = n = counts.get(media_type, 0)
        if not n:
            logger.info("process_media: every %s already embedded with %s@%s", media_type, name, revision)
            continue
        logger.info("process_media: embedding %d %s objects with %s@%s", n, media_type, name, revision)
        if media_type == "video":
            inputs = objects.select("sha256", "key_frames")
        else:  # the bytes of each object's first path
            bronze_ref = lake.table(f"bronze.{MEDIA_FOLDERS[media_type]}")
            bronze = tables.read(spark, bronze_ref).select("path", "content", "blob_uri")
            inputs = without_absent_blobs(bronze, bronze_ref).join(
                F.broadcast(objects.select("sha256", "path")), "path")
        vectors.append(processor.extract_embeddings(inputs))
    if vectors:
        _insert_embeddings(spark, lake, _union(vectors))
    now = dt.datetime.now(dt.UTC)
    record = [(media_type, name, revision, metadata_version, result.embedded[media_type], now)
              for media_type, (_, (name, revision), _) in todo.items()]
    tables.append_small(progress_ref, record, MEDIA_PROGRESS_SCHEMA)


def texts(events: DataFrame) -> DataFrame:
    """Every text of these silver events worth an embedding (messages, captions, transcripts)."""
    parts = [events.filter(F.col("event_type") == event_type).select(
        F.col(f"{payload_column(event_type)}.{name}").alias("text")) for event_type, name in TEXT_FIELDS]
    return _union(parts).filter(F.col("text").isNotNull())


def texts_embedded(lake: Lake, model: tuple[str, str]) -> tuple[int | None, int | None]:
    """silver.events' current version (None: no table), and the version its texts are embedded up to
    with `model` (name, revision; None: not yet)."""
    records = tables.read_small(lake.table("silver.text_embeddings_progress"),
                                ["model_name", "model_revision", "silver_version"])
    return (tables.current_version(lake.table("silver.events")),
            max((r["silver_version"] for r in records if (r["model_name"], r["model_revision"]) == model),
                default=None))


def embed_texts(spark: SparkSession, config: PipelineConfig, lake: Lake, result: ProcessResult) -> None:
    """Texts of the silver events inserted since the version this model's texts are embedded up to
    (read from silver's change data feed), or of all of silver for a model with no record yet or where
    that feed is gone (tables.consume_inserted); only those with no embedding for the model are
    embedded. The record is written last: a run that dies before it reads the same events again, and
    finds what it embedded already there."""
    silver_ref, progress_ref = lake.table("silver.events"), lake.table("silver.text_embeddings_progress")
    processor = TextProcessor(config.media, config.embeddings)
    name, revision = model = processor.model_identity()
    silver_version, embedded_up_to = texts_embedded(lake, model)
    if silver_version is None:
        logger.info("process_media: no silver events, so no texts to embed")
        return
    if embedded_up_to == silver_version:
        result.embedded["text"] = 0
        logger.info("process_media: texts of silver.events up to version %d already embedded with %s@%s",
                    silver_version, name, revision)
        return

    def counted(events: DataFrame) -> DataFrame:
        candidates = processor.extract_features(texts(events)).persist()
        try:
            result.texts_read = candidates.count()
        except Exception:
            candidates.unpersist()
            raise
        return candidates

    candidates = tables.consume_inserted(spark, silver_ref, embedded_up_to, silver_version, counted)
    try:
        todo = _not_embedded(spark, lake, candidates, "text", model)
        result.embedded["text"] = n = todo.count()
        logger.info("process_media: %d distinct texts in silver.events versions %s..%d, %d to embed with %s@%s",
                    result.texts_read, "0" if embedded_up_to is None else embedded_up_to + 1, silver_version, n,
                    name, revision)
        if n:
            _insert_embeddings(spark, lake, processor.extract_embeddings(todo, texts_count=n))
    finally:
        candidates.unpersist()
    record = [(name, revision, silver_version, result.texts_read, n, dt.datetime.now(dt.UTC))]
    tables.append_small(progress_ref, record, TEXT_PROGRESS_SCHEMA)


def up_to_date(config: PipelineConfig) -> str | None:
    """Nothing to process: every bronze batch in the batch record, every media type embedded at the
    present metadata version, silver's texts embedded up to its present version (each with its
    configured model)."""
    lake = Lake(config.storage_root)
    if pending_batches(lake, lambda ref: tables.logged_rows_per_value(ref, "batch_id")) != {}:
        return None  # batches to process, or the Delta log cannot tell
    models = {media_type: processor.model_identity() for media_type, processor in media_processors(config).items()}
    if media_to_embed(lake, models)[1]:
        return None
    text_model = TextProcessor(config.media, config.embeddings).model_identity()
    silver_version, embedded_up_to = texts_embedded(lake, text_model)
    if silver_version is not None and embedded_up_to != silver_version:
        return None
    return "no new bronze media batches, and every object and text is embedded with its configured model"


def run(spark: SparkSession, config: PipelineConfig) -> ProcessResult:
    lake = Lake(config.storage_root)
    result = ProcessResult()
    process_features(spark, config, lake, result)
    embed_media(spark, config, lake, result)
    embed_texts(spark, config, lake, result)
    logger.info("process_media: metadata %s, quarantine %s, embedded %s",
                result.to_metadata, result.to_quarantine, result.embedded)
    return result


def main(argv: list[str] | None = None) -> int:
    return task_main("process_media", "silver", run, __doc__, argv, up_to_date=up_to_date)


if __name__ == "__main__":
    raise SystemExit(main())
