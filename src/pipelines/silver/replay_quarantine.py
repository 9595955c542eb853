"""`pipelines quarantine replay`: re-validate quarantined lines against the current schemas.

Lines that now pass go through the same dedup rules as clean_events: new events move into silver,
identical duplicates are dropped and counted; each line that leaves quarantine is recorded in
silver/quarantine/_replays/events with its replay id and outcome before it is deleted from
quarantine. Lines that still fail stay, with their reason, detail and schema brought up to date
(after a schema change the same reason may name another field or version). Commit order (silver,
replay record, quarantine) makes a rerun after a crash converge to the same state. Silver is written
as clean_events writes it (`append_new_events`): if either commits new events while the other is
between classifying and writing, the other writes nothing to silver and fails, to be run again.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F

from palindrom.config import PipelineConfig
from palindrom.events.columns import payload_column
from palindrom.events.contract import REASON_CODES
from palindrom.events.registry import SchemaRegistry
from palindrom.events.transforms import (
    ALREADY_IN_SILVER,
    COORDINATES,
    IDENTICAL_DUPLICATE,
    TO_QUARANTINE,
    TO_SILVER,
    validate_events,
)
from palindrom.lake import tables
from palindrom.lake.paths import Lake
from palindrom.logging import logger
from pipelines.silver.clean_events import append_new_events, classify, silver_rows
from pipelines.tasks import replay_task_main, schema_registry

MOVED_TO_SILVER = "moved_to_silver"


@dataclass(frozen=True)
class ReplayResult:
    replay_id: str
    replayed: int
    moved_to_silver: int
    identical_duplicates: int
    still_quarantined: int
    reason_or_detail_changed: int  # of those still quarantined


def run(spark: SparkSession, config: PipelineConfig, reasons: list[str] | None = None,
        registry: SchemaRegistry | None = None) -> ReplayResult:
    lake = Lake(config.storage_root)
    quarantine_ref, silver_ref = lake.table("silver.quarantine.events"), lake.table("silver.events")
    replays_ref = lake.table("silver.quarantine.events_replays")
    replay_id = tables.new_run_id(dt.datetime.now(dt.UTC))
    if not tables.exists(quarantine_ref):
        return ReplayResult(replay_id, 0, 0, 0, 0, 0)

    quarantined = tables.read(spark, quarantine_ref)
    if reasons:
        quarantined = quarantined.filter(F.col("reason").isin(reasons))
    snapshot = (registry or schema_registry(config)).snapshot()
    as_bronze = quarantined.select(
        F.col("bronze_batch_id").alias("batch_id"), "source_file", "line_number", "ingested_at",
        F.col("raw_text").alias("text"),
    )
    validated = validate_events(as_bronze, snapshot, config.ingest.max_line_bytes)
    silver_version = tables.current_version(silver_ref)
    existing = None if silver_version is None else tables.read(spark, silver_ref, silver_version)
    cached = [validated.persist(StorageLevel.MEMORY_AND_DISK)]
    try:
        # As clean_events does: only the lines whose event_id is contested are ranked and compared with
        # silver, which is scanned for them rather than shuffled (a replay is usually a few lines).
        classified = classify(validated, existing, validated.count(), cached).persist(StorageLevel.MEMORY_AND_DISK)
        cached.append(classified)
        counts = dict(classified.groupBy("fate").count().collect())
        total = sum(counts.values())
        logger.info("quarantine replay %s: %d lines re-validated: %s", replay_id, total, counts)

        if counts.get(TO_SILVER):
            events = silver_rows(classified, [payload_column(t) for t in sorted(snapshot)])
            append_new_events(spark, events, silver_ref, silver_version, any_rows=True)

        leaving = classified.filter(F.col("fate").isin(TO_SILVER, ALREADY_IN_SILVER, IDENTICAL_DUPLICATE)).select(
            *COORDINATES, "event_id",
            F.when(F.col("fate") == IDENTICAL_DUPLICATE, F.lit(IDENTICAL_DUPLICATE))
            .otherwise(F.lit(MOVED_TO_SILVER)).alias("outcome"),
            F.lit(replay_id).alias("replay_id"), F.current_timestamp().alias("replayed_at"),
        )
        if total - counts.get(TO_QUARANTINE, 0):
            tables.ensure(spark, replays_ref, leaving.schema)
            tables.insert_new(spark, leaving, replays_ref, COORDINATES)
            tables.delete_matching(spark, quarantine_ref, leaving.select(*COORDINATES), COORDINATES)

        verdict = ["reason", "detail", "schema_ref"]
        staying = classified.filter(F.col("fate") == TO_QUARANTINE).select(*COORDINATES, *verdict)
        former = tables.read(spark, quarantine_ref).select(*COORDINATES, *(F.col(c).alias(f"_{c}") for c in verdict))
        changed = staying.join(former, list(COORDINATES)).filter(
            functools.reduce(Column.__or__, (~F.col(c).eqNullSafe(F.col(f"_{c}")) for c in verdict))
        ).select(*COORDINATES, *verdict).persist(StorageLevel.MEMORY_AND_DISK)
        cached.append(changed)
        if n_changed := changed.count():
            tables.update_columns(spark, changed, quarantine_ref, COORDINATES, verdict)
    finally:
        for frame in cached:
            frame.unpersist()
    return ReplayResult(
        replay_id, total, counts.get(TO_SILVER, 0) + counts.get(ALREADY_IN_SILVER, 0),
        counts.get(IDENTICAL_DUPLICATE, 0), counts.get(TO_QUARANTINE, 0), n_changed,
    )


def main(argv: list[str] | None = None) -> int:
    return replay_task_main("replay_quarantine", run, __doc__, REASON_CODES, "event", "silver.quarantine.events", argv)


if __name__ == "__main__":
    raise SystemExit(main())
