"""aggregate_events (gold): silver/events → gold/aggregations/events_daily.

One row per (user_id, event_date, event_type) with its event_count, recomputed for exactly the
dates this run touched: the event dates of rows inserted into silver (its change data feed) since
the silver version the previous run aggregated up to.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, LongType, StringType, StructField, StructType, TimestampType

from palindrom import quality
from palindrom.config import PipelineConfig
from palindrom.lake import tables
from palindrom.lake.paths import Lake
from palindrom.logging import logger
from pipelines.tasks import task_main

EVENTS_DAILY_SCHEMA = StructType([
    StructField("user_id", StringType(), False),
    StructField("event_date", DateType(), False),
    StructField("event_type", StringType(), False),
    StructField("event_count", LongType(), False),
])
PROGRESS_SCHEMA = StructType([
    StructField("silver_version", LongType(), False),
    StructField("dates_recomputed", LongType(), False),
    StructField("aggregated_at", TimestampType(), False),
])


def aggregate_daily(events: DataFrame) -> DataFrame:
    """Events → event counts per user, UTC date and event type."""
    return (
        events.groupBy("user_id", "event_date", "event_type")
        .agg(F.count(F.lit(1)).alias("event_count"))
        .select(*EVENTS_DAILY_SCHEMA.fieldNames())
    )


def silver_progress(lake: Lake) -> tuple[int | None, int | None]:
    """silver.events' current version, and the version the last run aggregated up to (None: none)."""
    progress = tables.read_small(lake.table("gold.events_daily_progress"), ["silver_version"])
    return (tables.current_version(lake.table("silver.events")),
            max((r["silver_version"] for r in progress), default=None))


def _nothing_new(silver_version: int | None, last: int | None) -> str | None:
    if silver_version is None:
        return "silver.events does not exist yet; nothing to aggregate"
    return f"up to date with silver.events version {silver_version}" if last == silver_version else None


def up_to_date(config: PipelineConfig) -> str | None:
    return _nothing_new(*silver_progress(Lake(config.storage_root)))


def run(spark: SparkSession, config: PipelineConfig) -> list[dt.date]:
    lake = Lake(config.storage_root)
    silver_ref, daily_ref = lake.table("silver.events"), lake.table("gold.events_daily")
    progress_ref = lake.table("gold.events_daily_progress")

    silver_version, last = silver_progress(lake)
    if nothing_new := _nothing_new(silver_version, last):
        logger.info("aggregate_events: %s", nothing_new)
        return []

    dates = tables.consume_inserted(spark, silver_ref, last, silver_version, lambda inserted: sorted(
        r[0] for r in inserted.select("event_date").distinct().collect()))
    logger.info("aggregate_events: silver versions %s..%d touched %d dates", last, silver_version, len(dates))
    if dates:
        silver = tables.read(spark, silver_ref, version=silver_version)
        daily = aggregate_daily(silver.filter(F.col("event_date").isin(dates)))
        quality.enforce(quality.events_daily_checks(daily))
        tables.ensure(spark, daily_ref, EVENTS_DAILY_SCHEMA, partition_by=["event_date"])
        tables.replace_where(daily, daily_ref, tables.sql_in("event_date", dates))
    tables.append_small(progress_ref, [(silver_version, len(dates), dt.datetime.now(dt.UTC))], PROGRESS_SCHEMA)
    return dates


def main(argv: list[str] | None = None) -> int:
    return task_main("aggregate_events", "gold", run, __doc__, argv, up_to_date=up_to_date)


if __name__ == "__main__":
    raise SystemExit(main())
