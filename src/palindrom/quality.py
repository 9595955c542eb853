"""Data-quality checks, written once: run inside the jobs (a failure fails the task) and over the
tables in tests/data_quality. Each check takes DataFrames and returns a CheckResult."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from palindrom.events.transforms import IDENTICAL_DUPLICATE


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str


class DataQualityError(AssertionError):
    def __init__(self, failures: list[CheckResult]):
        super().__init__("data-quality checks failed: " + "; ".join(f"{r.name}: {r.detail}" for r in failures))
        self.failures = failures


def enforce(results: Iterable[CheckResult]) -> list[CheckResult]:
    """Raise DataQualityError naming every failed check; return the results otherwise."""
    results = list(results)
    failures = [r for r in results if not r.passed]
    if failures:
        raise DataQualityError(failures)
    return results


def _no_nulls_result(table: str, column: str, n: int) -> CheckResult:
    return CheckResult(f"{table}: no null {column}", n == 0, f"found {n} null {column}s")


def _unique_result(table: str, column: str, n: int, example: object) -> CheckResult:
    return CheckResult(f"{table}: unique {column}", n == 0, f"{n} values appear more than once, e.g. {example!r}")


def no_nulls(df: DataFrame, column: str, table: str) -> CheckResult:
    return _no_nulls_result(table, column, df.filter(F.col(column).isNull()).count())


def non_empty(df: DataFrame, column: str, table: str) -> CheckResult:
    n = df.filter(F.col(column).isNull() | (F.length(F.trim(F.col(column))) == 0)).count()
    return CheckResult(f"{table}: every row has a {column}", n == 0, f"found {n} rows without a {column}")


def all_positive(df: DataFrame, column: str, table: str) -> CheckResult:
    n = df.filter(~(F.col(column) > 0) | F.col(column).isNull()).count()
    return CheckResult(f"{table}: every {column} positive", n == 0, f"found {n} rows with {column} <= 0")


def unique(df: DataFrame, column: str, table: str) -> CheckResult:
    dupes = df.groupBy(column).count().filter("count > 1")
    n = dupes.count()
    return _unique_result(table, column, n, dupes.first()[column] if n else None)


def events_conserved(
    bronze: DataFrame, silver: DataFrame, quarantine: DataFrame, identical_duplicates: int,
    batch_ids: list[str] | None = None,
) -> CheckResult:
    """Every bronze line is in silver, in quarantine, or counted as an identical duplicate: the tables
    counted by a scan, in one job."""
    if batch_ids is not None:
        bronze = bronze.filter(F.col("batch_id").isin(batch_ids))
        silver = silver.filter(F.col("bronze_batch_id").isin(batch_ids))
        quarantine = quarantine.filter(F.col("bronze_batch_id").isin(batch_ids))
    tagged = [df.select(F.lit(i).alias("table")) for i, df in enumerate((bronze, silver, quarantine))]
    counts = dict(functools.reduce(DataFrame.union, tagged).groupBy("table").count().collect())
    return events_conserved_counts(*(counts.get(i, 0) for i in range(3)), identical_duplicates)


def events_conserved_in_lake(bronze: DataFrame, silver: DataFrame, quarantine: DataFrame,
                             batches: DataFrame | None, replays: DataFrame | None) -> CheckResult:
    """The conservation rule over every batch of a lake: its identical duplicates are those that
    clean_events counted (silver.events_batches) and those a quarantine replay dropped
    (silver.quarantine.events_replays, outcome identical_duplicate). None: no such table yet."""
    identical = 0 if batches is None else batches.agg(F.sum("identical_duplicates")).first()[0] or 0
    if replays is not None:
        identical += replays.filter(F.col("outcome") == IDENTICAL_DUPLICATE).count()
    return events_conserved(bronze, silver, quarantine, identical)


def events_conserved_counts(bronze: int, silver: int, quarantine: int, identical_duplicates: int) -> CheckResult:
    """The conservation rule over row counts however obtained (clean_events reads them from the Delta log)."""
    accounted = silver + quarantine + identical_duplicates
    return CheckResult(
        "events conserved (bronze = silver + quarantine + identical duplicates)",
        bronze == accounted,
        f"bronze {bronze} != silver {silver} + quarantine {quarantine} "
        f"+ identical duplicates {identical_duplicates} = {accounted}",
    )


def silver_events_checks(silver: DataFrame) -> list[CheckResult]:
    """Unique event_id and no null user_id, in one pass over `silver`."""
    per_event = silver.groupBy("event_id").agg(
        F.count(F.lit(1)).alias("rows"), F.count_if(F.col("user_id").isNull()).alias("null_user_ids"))
    found = per_event.agg(
        F.count_if(F.col("rows") > 1).alias("repeated"),
        F.first(F.when(F.col("rows") > 1, F.col("event_id")), ignorenulls=True).alias("example"),
        F.coalesce(F.sum("null_user_ids"), F.lit(0)).alias("null_user_ids"),
    ).first()
    return [_unique_result("silver.events", "event_id", found["repeated"], found["example"]),
            _no_nulls_result("silver.events", "user_id", found["null_user_ids"])]


def quarantine_checks(quarantine: DataFrame) -> list[CheckResult]:
    return [non_empty(quarantine, "reason", "silver.quarantine.events")]


def events_daily_checks(daily: DataFrame) -> list[CheckResult]:
    return [no_nulls(daily, "user_id", "gold.events_daily"), all_positive(daily, "event_count", "gold.events_daily")]


def media_conserved(unaccounted: DataFrame) -> CheckResult:
    """`unaccounted`: bronze media rows (media_type, path) found neither in silver metadata nor in quarantine."""
    n = unaccounted.count()
    examples = [f"{r['media_type']}:{r['path']}" for r in unaccounted.limit(5).collect()] if n else []
    return CheckResult("media conserved (every bronze row in media_metadata or quarantine)", n == 0,
                       f"{n} bronze rows unaccounted for, e.g. {examples}")


def media_metadata_checks(metadata: DataFrame) -> list[CheckResult]:
    return [unique(metadata.select(F.concat_ws(":", "media_type", "sha256").alias("object")), "object",
                   "silver.media_metadata"),
            no_nulls(metadata, "mime_type", "silver.media_metadata")]


def media_quarantine_checks(quarantine: DataFrame) -> list[CheckResult]:
    return [non_empty(quarantine, "reason", "silver.quarantine.media")]


def training_release_checks(rows: DataFrame, vocab_size: int, length: int, name: str) -> list[CheckResult]:
    """What every release must satisfy; run before the commit, and over releases in tests/data_quality."""
    bad = rows.select(
        F.sum((F.col("num_tokens") <= 0).cast("int")).alias("empty"),
        F.max(F.array_max("input_ids")).alias("max_id"), F.min(F.array_min("input_ids")).alias("min_id"),
        F.sum(((F.size("input_ids") != length) | (F.size("loss_mask") != length)
               | (F.size("document_index") != length)).cast("int")).alias("wrong_length"),
    ).first()
    table = f"gold.training_datasets.{name}"
    return [
        CheckResult(f"{table}: no empty sequences", not bad["empty"], f"{bad['empty']} rows without tokens"),
        CheckResult(f"{table}: token ids within the vocabulary",
                    bad["max_id"] is None or (bad["min_id"] >= 0 and bad["max_id"] < vocab_size),
                    f"ids span {bad['min_id']}..{bad['max_id']}, vocabulary {vocab_size}"),
        CheckResult(f"{table}: every sequence has {length} positions", not bad["wrong_length"],
                    f"{bad['wrong_length']} rows of another length"),
        unique(rows, "example_id", table),
    ]
