"""`pipelines quarantine replay --media`: inspect quarantined media files again, as they are in bronze,
with the present decoders and limits.

A file refused under older ones (a decoder since upgraded, a limit since raised, a check since
corrected) needs no new landing: its bytes are still in bronze. Files that now decode move to
silver/media_metadata (an object already there only gains their paths) and are embedded by the next
process_media run; each is recorded in silver/quarantine/_replays/media with the replay's id and the
reason it had, before it is deleted from quarantine. Files that still fail stay, with their reason
and detail brought up to date. Commit order (metadata, replay record, quarantine) makes a rerun after
a crash converge to the same state. Only files of bronze batches in process_media's batch record are
replayed: the others belong to a process_media run that has not finished.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType, TimestampType

from palindrom import quality
from palindrom.config import PipelineConfig
from palindrom.lake import tables
from palindrom.lake.paths import MEDIA_FOLDERS, Lake
from palindrom.logging import logger
from palindrom.media.decoding import REASONS
from pipelines.silver.process_media import inspected, unaccounted, write_metadata
from pipelines.tasks import replay_task_main

MOVED_TO_METADATA = "moved_to_metadata"
KEYS = ("media_type", "path")
REPLAYS_SCHEMA = StructType([
    StructField("media_type", StringType(), False),
    StructField("path", StringType(), False),
    StructField("sha256", StringType(), False),
    StructField("bronze_batch_id", StringType(), False),
    StructField("former_reason", StringType(), False),
    StructField("former_detail", StringType(), True),
    StructField("outcome", StringType(), False),
    StructField("replay_id", StringType(), False),
    StructField("replayed_at", TimestampType(), False),
])


@dataclass(frozen=True)
class MediaReplayResult:
    replay_id: str
    replayed: int
    moved_to_metadata: int
    still_quarantined: int
    reason_or_detail_changed: int  # of those still quarantined


def run(spark: SparkSession, config: PipelineConfig, reasons: list[str] | None = None) -> MediaReplayResult:
    lake = Lake(config.storage_root)
    quarantine_ref = lake.table("silver.quarantine.media")
    now = dt.datetime.now(dt.UTC)
    replay_id = tables.new_run_id(now)
    recorded = tables.read_small(lake.table("silver.media_batches"), ["media_type", "batch_id"])
    if not tables.exists(quarantine_ref) or not recorded:
        return MediaReplayResult(replay_id, 0, 0, 0, 0)

    finished = spark.createDataFrame([(r["media_type"], r["batch_id"]) for r in recorded],
                                     "media_type string, bronze_batch_id string")
    quarantined = tables.read(spark, quarantine_ref).join(F.broadcast(finished), ["media_type", "bronze_batch_id"],
                                                          "left_semi")
    if reasons:
        quarantined = quarantined.filter(F.col("reason").isin(reasons))
    replaying = quarantined.select(*KEYS, "sha256", "bronze_batch_id", "reason", "detail").persist()
    try:
        counts = dict(replaying.groupBy("media_type").count().collect())
        if not counts:
            return MediaReplayResult(replay_id, 0, 0, 0, 0)
        bronze = {}
        for media_type in counts:
            rows = tables.read(spark, lake.table(f"bronze.{MEDIA_FOLDERS[media_type]}"))
            mine = replaying.filter(F.col("media_type") == media_type).select("path", "sha256")
            # The quarantined paths broadcast, bronze scanned: its bytes are never shuffled.
            bronze[media_type] = rows.join(F.broadcast(mine), ["path", "sha256"], "left_semi")
        outcome = inspected(config, bronze).select(
            "*", F.explode("paths").alias("replayed_path")).persist()
        try:
            return _write(spark, lake, replay_id, now, replaying, outcome)
        finally:
            outcome.unpersist()
    finally:
        replaying.unpersist()


def _write(spark: SparkSession, lake: Lake, replay_id: str, now: dt.datetime, replaying: DataFrame,
           outcome: DataFrame) -> MediaReplayResult:
    """`outcome`: inspected's rows, one per replayed path (`replayed_path`)."""
    quarantine_ref, meta_ref = lake.table("silver.quarantine.media"), lake.table("silver.media_metadata")
    replays_ref = lake.table("silver.quarantine.media_replays")
    per_path = outcome.select("media_type", F.col("replayed_path").alias("path"), "reason", "detail")
    decoded = per_path.filter(F.col("reason").isNull()).select(*KEYS)
    leaving = replaying.join(decoded, list(KEYS)).select(
        *KEYS, "sha256", "bronze_batch_id", F.col("reason").alias("former_reason"),
        F.col("detail").alias("former_detail"), F.lit(MOVED_TO_METADATA).alias("outcome"),
        F.lit(replay_id).alias("replay_id"), F.lit(now).cast("timestamp").alias("replayed_at"))
    staying = per_path.filter(F.col("reason").isNotNull()).join(
        replaying.select(*KEYS, F.col("reason").alias("_reason"), F.col("detail").alias("_detail")), list(KEYS))
    changed = staying.filter(~F.col("reason").eqNullSafe(F.col("_reason"))
                             | ~F.col("detail").eqNullSafe(F.col("_detail")))
    moved, still, updated = leaving.count(), staying.count(), changed.count()
    logger.info("quarantine replay %s: %d media files inspected again: %d decode now, %d still refused (%d with "
                "a new reason or detail)", replay_id, moved + still, moved, still, updated)

    if moved:
        known = tables.read(spark, meta_ref).select("media_type", "sha256", "paths")
        objects = outcome.filter(F.col("reason").isNull()).drop("replayed_path").dropDuplicates(
            ["media_type", "sha256"])
        write_metadata(spark, meta_ref, objects, leaving.select(*KEYS, "sha256"), known, now)
        tables.ensure(spark, replays_ref, REPLAYS_SCHEMA)
        tables.insert_new(spark, leaving, replays_ref, KEYS)
        tables.delete_matching(spark, quarantine_ref, leaving.select(*KEYS), KEYS)
    if updated:
        tables.update_columns(spark, changed.select(*KEYS, "reason", "detail"), quarantine_ref, KEYS,
                              ["reason", "detail"])

    # Nothing is lost: every file replayed is now among its object's paths in metadata or in quarantine.
    quality.enforce([quality.media_conserved(unaccounted(replaying, tables.read(spark, meta_ref),
                                                         tables.read(spark, quarantine_ref)))])
    return MediaReplayResult(replay_id, moved + still, moved, still, updated)


def main(argv: list[str] | None = None) -> int:
    return replay_task_main("replay_media_quarantine", run, __doc__, REASONS, "media",
                            "silver.quarantine.media", argv)


if __name__ == "__main__":
    raise SystemExit(main())
