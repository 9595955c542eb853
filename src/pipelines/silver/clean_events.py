"""clean_events (silver): bronze/events → silver/events + silver/quarantine/events.

Reads the bronze batches not yet cleaned, validates every line against the registered schemas,
deduplicates by event_id against each other and silver, and commits: quarantine (the rejected lines
of the batches it holds none of yet), then silver (the events new to the silver version it read,
appended as Delta's idempotent write), then the batch record. The first two are idempotent and the
batch record is written only once both are in, so a task killed between any two commits and run
again ends exactly where an uninterrupted run would. Before the batch record is written, the tables
must account for every bronze line (the conservation check).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType, TimestampType

from palindrom import quality
from palindrom.config import PipelineConfig
from palindrom.events.columns import ENVELOPE_FIELDS, payload_column
from palindrom.events.registry import SchemaRegistry
from palindrom.events.transforms import (
    ALREADY_IN_SILVER,
    COORDINATES,
    IDENTICAL_DUPLICATE,
    TO_QUARANTINE,
    TO_SILVER,
    VERDICT_COLUMNS,
    classify_duplicates,
    contested_event_ids,
    contested_lines,
    fate_by_validity,
    uncontested_lines,
    validate_events,
)
from palindrom.failpoints import failpoint
from palindrom.lake import tables
from palindrom.lake.paths import Lake, TableRef
from palindrom.logging import logger
from pipelines.tasks import schema_registry, task_main

SILVER_TABLE_PROPERTIES = {
    "delta.enableChangeDataFeed": "true",  # gold reads what each run inserted
    # File statistics (data skipping) on the columns reads select by: event_date (gold recomputes
    # dates), bronze_batch_id (each run's checks). Delta's default, the first 32 leaf columns, spends
    # them on payload fields and hashes, and the payload of one more event type would push
    # bronze_batch_id past the 32nd. Fewer statistics are also less to compute on every write.
    "delta.dataSkippingStatsColumns":
        "event_id,event_type,occurred_at,event_date,user_id,bronze_batch_id,ingested_at",
}
CONTESTED_IDS_LIMIT = 200_000  # event_ids collected to the driver and broadcast (see contested_ids)
BROADCAST_RUN_IDS_LIMIT = 2_000_000  # bronze lines in a run up to which its event_ids are broadcast
BROADCAST_REJECTED_LIMIT = 100_000  # rejected lines up to which they are broadcast (see quarantine_rows)
# The txnAppId of every writer that appends events classified against silver (see append_new_events).
SILVER_WRITER = "silver.events new events"
CLEANED_BATCHES_SCHEMA = StructType([
    StructField("batch_id", StringType(), False),
    StructField("lines", LongType(), False),
    StructField("to_silver", LongType(), False),
    StructField("to_quarantine", LongType(), False),
    StructField("identical_duplicates", LongType(), False),
    StructField("cleaned_at", TimestampType(), False),
])


class SilverChanged(RuntimeError):
    """silver/events changed between a run's classification and its write; the run wrote nothing there."""


@dataclass(frozen=True)
class CleanResult:
    batches: list[str]
    lines: int
    to_silver: int
    to_quarantine: int
    identical_duplicates: int


def deduplicate_events(df: DataFrame) -> DataFrame:
    """Drop duplicate events, keeping the first.

    On validated events (validate_events' output) this is the contract's rule: the rows that go to
    silver. On any other frame, rows that are equal in every column are one event.
    """
    if {"event_id", "content_hash", *VERDICT_COLUMNS} <= set(df.columns):
        return classify_duplicates(df, None).filter(F.col("fate") == TO_SILVER).drop("fate")
    return df.dropDuplicates()


def silver_rows(classified: DataFrame, payload_columns: list[str]) -> DataFrame:
    # The payload structs last: delta-rs (1.6) reads a file's statistics only for the columns before
    # the first struct column, and the checks count each batch's rows from bronze_batch_id's.
    return classified.filter(F.col("fate") == TO_SILVER).select(
        *ENVELOPE_FIELDS, "event_date", *COORDINATES, "ingested_at", "content_hash", *payload_columns,
    )


def quarantine_rows(classified: DataFrame, bronze: DataFrame, broadcast: bool) -> DataFrame:
    """Rejected lines with their raw text (or bytes, where not UTF-8) from bronze. Where `broadcast`
    (few rejected lines), they are broadcast and bronze is only scanned, not shuffled with its text and
    bytes (0.3 to 0.5 s less at 1,000,000 lines, 8,310 rejected). Every rejected line has its one
    bronze row, so the inner join keeps them all (the conservation check would fail if it did not)."""
    raw = bronze.select(
        F.col("batch_id").alias("bronze_batch_id"), "source_file", "line_number",
        F.col("text").alias("raw_text"), F.when(F.col("text").isNull(), F.col("raw")).alias("raw_bytes"),
    )
    rejected = (classified.filter(F.col("fate") == TO_QUARANTINE)
                .select(*COORDINATES, "ingested_at", "event_id", "reason", "detail", "schema_ref"))
    return (
        (F.broadcast(rejected) if broadcast else rejected).join(raw, list(COORDINATES))
        .withColumn("quarantined_at", F.current_timestamp())
    )


def _ensure_silver(spark: SparkSession, events: DataFrame, silver_ref: TableRef) -> None:
    """Created on first use, with change data feed (gold reads what each run inserted). Not partitioned:
    a day's events are one run's files, so reads by date skip other runs' files by their statistics,
    and a run spanning many dates (a backfill) writes a few files, not a few per date (each task
    would first sort its rows by date: at 1,000,000 events over 75 dates the append took 3.6-4.2 s
    unpartitioned, 5.9-6.9 s partitioned)."""
    tables.ensure(spark, silver_ref, events.schema, properties=SILVER_TABLE_PROPERTIES)


def append_new_events(spark: SparkSession, events: DataFrame, silver_ref: TableRef, read_version: int | None,
                      any_rows: bool) -> None:
    """Append events classified as new against silver at `read_version` (None: no table yet). No key
    lookup is needed: classification already found them absent. Every writer of new events (this job,
    quarantine replay) appends as Delta's idempotent write under one txnAppId, with txnVersion the
    version after the one it read: so once one of them commits, a writer that classified against an
    older version cannot (Delta skips its write, or fails it if both commit at once) and this raises
    SilverChanged rather than add an event twice. A rerun after a crash classifies against the version
    holding this run's rows and finds none of them new."""
    _ensure_silver(spark, events, silver_ref)
    if any_rows:
        next_version = 0 if read_version is None else read_version + 1
        if not tables.append_once(events, silver_ref, SILVER_WRITER, next_version):
            raise SilverChanged(
                f"{silver_ref.name} ({silver_ref.uri}): another writer added events after this run classified "
                f"against version {read_version}; nothing was written to silver, run again to classify afresh"
            )


def contested_ids(validated: DataFrame, existing: DataFrame | None, lines: int) -> list[str] | None:
    """The event_ids the dedup rules have to decide (contested_event_ids), collected to the driver; None
    past CONTESTED_IDS_LIMIT of them (a rerun of lines already in silver). Usually a few: ranking every
    line instead (a shuffle and sort of whole rows) took about 2.5 s of a run at 1,000,000 events,
    finding these ids about 1 s. The run's event_ids are broadcast against silver up to
    BROADCAST_RUN_IDS_LIMIT bronze `lines`."""
    broadcast = lines <= BROADCAST_RUN_IDS_LIMIT
    ids = contested_event_ids(validated, existing, broadcast).limit(CONTESTED_IDS_LIMIT + 1).collect()
    return None if len(ids) > CONTESTED_IDS_LIMIT else [r["event_id"] for r in ids]


def classify(validated: DataFrame, existing: DataFrame | None, lines: int, cache: list[DataFrame]) -> DataFrame:
    """The validated lines with their `fate` by the dedup rules (classify_duplicates), against silver's
    `existing` rows. Only the lines of contested event_ids are ranked (past CONTESTED_IDS_LIMIT, every
    line), and those (a few) are cached, since each of a run's passes over the result would rank them
    again: appended to `cache` for the caller to unpersist. With none contested, a line's fate is its
    validity: no join at all (about 0.4 s less for each pass over 1,000,000 lines)."""
    ids = contested_ids(validated, existing, lines)
    logger.info("clean_events: lines validated; %s event_ids contested",
                f"over {CONTESTED_IDS_LIMIT}" if ids is None else len(ids))
    if ids is None:
        return classify_duplicates(validated, existing)
    if not ids:
        return fate_by_validity(validated)
    contested = validated.sparkSession.createDataFrame([(i,) for i in ids],
                                                       StructType([StructField("event_id", StringType())]))
    ranked = contested_lines(validated, existing, contested).persist(StorageLevel.MEMORY_AND_DISK)
    cache.append(ranked)
    return uncontested_lines(validated, contested).unionByName(ranked)


def batch_counts(classified: DataFrame) -> DataFrame:
    def n(*fates: str):
        return F.sum(F.col("fate").isin(*fates).cast("long"))

    return classified.groupBy(F.col("bronze_batch_id").alias("batch_id")).agg(
        F.count(F.lit(1)).alias("lines"),
        n(TO_SILVER, ALREADY_IN_SILVER).alias("to_silver"),
        n(TO_SILVER).alias("inserted"),  # to_silver less the lines an interrupted run already committed
        n(TO_QUARANTINE).alias("to_quarantine"),
        n(IDENTICAL_DUPLICATE).alias("identical_duplicates"),
    )


def quarantine_to_write(spark: SparkSession, quarantine_ref: TableRef, counts: dict[str, Row]) -> list[str]:
    """The batches of `counts` (batch_counts' rows by batch) with rejected lines that quarantine holds
    none of yet. A run appends all its batches' rejected lines in one commit, so a batch with rows in
    quarantine was written whole by an earlier run of it that died before its batch record (a replay
    since may have moved some of them to silver, where this run finds them). A plain append of the
    others then takes the place of a MERGE on coordinates (0.4 to 2 s less at 8,310 rejected lines;
    it reads none of quarantine's rows)."""
    rejecting = [batch for batch, c in counts.items() if c["to_quarantine"]]
    return tables.values_without_rows(spark, quarantine_ref, "bronze_batch_id", rejecting)


def cleaned_batch_ids(lake: Lake) -> set[str]:
    return {r["batch_id"] for r in tables.read_small(lake.table("silver.events_batches"), ["batch_id"])}


def pending_batches(lake: Lake, lines: dict[str, int]) -> dict[str, int]:
    """The bronze batches not cleaned yet, in order, with their line counts, given bronze's line
    count per batch."""
    return {batch: lines[batch] for batch in sorted(lines.keys() - cleaned_batch_ids(lake))}


def up_to_date(config: PipelineConfig) -> str | None:
    """Nothing to clean: the batch record names every batch of bronze's Delta log."""
    lake = Lake(config.storage_root)
    lines = tables.logged_rows_per_value(lake.table("bronze.events"), "batch_id")
    if lines is None or pending_batches(lake, lines):
        return None
    return "no bronze batches to clean"


def run(spark: SparkSession, config: PipelineConfig, registry: SchemaRegistry | None = None) -> CleanResult:
    lake = Lake(config.storage_root)
    bronze_ref, silver_ref = lake.table("bronze.events"), lake.table("silver.events")
    quarantine_ref, cleaned_ref = lake.table("silver.quarantine.events"), lake.table("silver.events_batches")

    bronze_lines = pending_batches(lake, tables.rows_per_value(spark, bronze_ref, "batch_id"))
    pending, n_bronze = list(bronze_lines), sum(bronze_lines.values())
    if not pending:
        logger.info("clean_events: no bronze batches to clean")
        return CleanResult([], 0, 0, 0, 0)
    snapshot = (registry or schema_registry(config)).snapshot()
    payload_columns = [payload_column(t) for t in sorted(snapshot)]
    logger.info("clean_events: cleaning %d bronze batches against %d event types", len(pending), len(snapshot))

    bronze = tables.read(spark, bronze_ref).filter(F.col("batch_id").isin(pending))
    validated = validate_events(bronze, snapshot, config.ingest.max_line_bytes).persist(StorageLevel.MEMORY_AND_DISK)
    cached = [validated]
    silver_version = tables.current_version(silver_ref)
    existing = None if silver_version is None else tables.read(spark, silver_ref, silver_version)
    try:
        classified = classify(validated, existing, n_bronze, cached)
        counts = {r["batch_id"]: r for r in batch_counts(classified).collect()}
        total = {k: sum(r[k] for r in counts.values())
                 for k in ("lines", "to_silver", "inserted", "to_quarantine", "identical_duplicates")}
        logger.info("clean_events: classified %s", total)

        quarantined = quarantine_rows(classified, bronze, total["to_quarantine"] <= BROADCAST_REJECTED_LIMIT)
        tables.ensure(spark, quarantine_ref, quarantined.schema)
        if unwritten := quarantine_to_write(spark, quarantine_ref, counts):
            tables.append(quarantined.filter(F.col("bronze_batch_id").isin(unwritten)), quarantine_ref)
        logger.info("clean_events: quarantine committed (%d lines)", total["to_quarantine"])
        failpoint("clean_events.after_quarantine_commit")

        append_new_events(spark, silver_rows(classified, payload_columns), silver_ref, silver_version,
                          total["inserted"] > 0)
        logger.info("clean_events: silver committed (%d events)", total["to_silver"])
        failpoint("clean_events.after_silver_commit")

        # Checks over what the tables now hold for these batches, not the whole history: each run's
        # cost grows with its input, not with silver. (An event_id of these batches cannot also be in
        # an earlier one's rows: classification found it absent, and append_new_events commits only
        # if no other writer has added events since.) The conservation counts come from the Delta log's
        # file statistics where they pin each file's batch (tables.rows_per_value), else from a scan.
        silver, quarantine = tables.read(spark, silver_ref), tables.read(spark, quarantine_ref)
        n_silver, n_quarantine = (sum(tables.rows_per_value(spark, ref, "bronze_batch_id", pending).values())
                                  for ref in (silver_ref, quarantine_ref))
        quality.enforce([
            quality.events_conserved_counts(n_bronze, n_silver, n_quarantine, total["identical_duplicates"]),
            *quality.silver_events_checks(silver.filter(F.col("bronze_batch_id").isin(pending))),
            *(quality.quarantine_checks(quarantine.filter(F.col("bronze_batch_id").isin(pending)))
              if n_quarantine else []),  # no rows of these batches to look at
        ])
        # The batch record is the last commit: a run that dies before it is simply run again.
        now = dt.datetime.now(dt.UTC)
        record = [(*(r[k] for k in CLEANED_BATCHES_SCHEMA.fieldNames()[:-1]), now) for r in counts.values()]
        tables.append_small(cleaned_ref, record, CLEANED_BATCHES_SCHEMA)
        logger.info("clean_events: checks passed; batches %s recorded", ", ".join(pending))
    finally:
        for frame in cached:
            frame.unpersist()
    return CleanResult(pending, total["lines"], total["to_silver"], total["to_quarantine"],
                       total["identical_duplicates"])


def main(argv: list[str] | None = None) -> int:
    return task_main("clean_events", "silver", run, __doc__, argv, up_to_date=up_to_date)


if __name__ == "__main__":
    raise SystemExit(main())
