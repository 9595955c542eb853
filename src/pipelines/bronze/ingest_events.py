"""ingest_events (bronze): new files in landing/events/ → bronze/events, each file exactly once.

Every non-blank line becomes one row: its raw bytes as received, its text where it is valid
UTF-8, the file (relative to landing/events/), the line number, the ingestion time and a batch id.
A file over `ingest.max_file_bytes` (or a corrupt .gz) is refused and left in landing; the other
files are ingested first, then the task fails naming it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
from pyspark import AccumulatorParam
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    BinaryType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from palindrom.config import PipelineConfig
from palindrom.events.lines import FileRefused, decompress, split_lines
from palindrom.lake import tables
from palindrom.lake.files import list_files, read_files, relative_path
from palindrom.lake.paths import Lake
from palindrom.logging import logger
from pipelines.tasks import task_main

BRONZE_EVENTS_SCHEMA = StructType([
    StructField("batch_id", StringType(), False),
    StructField("ingested_at", TimestampType(), False),
    StructField("source_file", StringType(), False),
    StructField("source_modified_at", TimestampType(), True),
    StructField("line_number", LongType(), False),
    StructField("raw", BinaryType(), False),
    StructField("text", StringType(), True),
])
_ARROW_SCHEMA = pa.schema([
    pa.field("batch_id", pa.string(), False),
    pa.field("ingested_at", pa.timestamp("us", tz="UTC"), False),
    pa.field("source_file", pa.string(), False),
    pa.field("source_modified_at", pa.timestamp("us", tz="UTC")),
    pa.field("line_number", pa.int64(), False),
    pa.field("raw", pa.binary(), False),
    pa.field("text", pa.string()),
])


class IngestRefused(RuntimeError):
    """Some landing files could not be ingested; they stay in landing."""


class _ListParam(AccumulatorParam):
    def zero(self, value):
        return []

    def addInPlace(self, a, b):
        return a + b


@dataclass(frozen=True)
class IngestResult:
    batch_id: str
    files: int
    lines: int
    refused: list[str]


def new_batch_id(now: dt.datetime) -> str:
    """Sortable by time of the run, unique across concurrent runs."""
    return f"{now:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}"


def split_files(files: DataFrame, batch_id: str, ingested_at: dt.datetime, max_bytes: int,
                refusals) -> DataFrame:
    """binaryFile rows (source_file, modificationTime, content) → one bronze row per non-blank line."""

    def split_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for name, modified, content in zip(*(batch.column(c).to_pylist() for c in
                                                 ("source_file", "modificationTime", "content")), strict=True):
                try:
                    data = decompress(content, max_bytes) if name.endswith(".gz") else content
                except FileRefused as e:
                    refusals.add([(name, str(e))])
                    continue
                lines = list(split_lines(data))
                n = len(lines)
                yield pa.RecordBatch.from_arrays([
                    pa.array([batch_id] * n, pa.string()),
                    pa.array([ingested_at] * n, pa.timestamp("us", tz="UTC")),
                    pa.array([name] * n, pa.string()),
                    pa.array([modified] * n, pa.timestamp("us", tz="UTC")),
                    pa.array([line.number for line in lines], pa.int64()),
                    pa.array([line.raw for line in lines], pa.binary()),
                    pa.array([line.text for line in lines], pa.string()),
                ], schema=_ARROW_SCHEMA)

    return files.mapInArrow(split_partition, BRONZE_EVENTS_SCHEMA)


INGESTED_FILES_SCHEMA = StructType([
    StructField("source_file", StringType(), False),
    StructField("batch_id", StringType(), False),
    StructField("ingested_at", TimestampType(), False),
    StructField("size_bytes", LongType(), False),
    StructField("lines", LongType(), False),
])


def ingested_files(spark: SparkSession, lake: Lake) -> set[str]:
    """Files already taken in: the file record, plus bronze itself in case a run died before its record."""
    done: set[str] = set()
    for name in ("bronze.events_files", "bronze.events"):
        ref = lake.table(name)
        if tables.exists(spark, ref):
            done |= {r[0] for r in tables.read(spark, ref).select("source_file").distinct().collect()}
    return done


def run(spark: SparkSession, config: PipelineConfig) -> IngestResult:
    lake = Lake(config.storage_root)
    bronze, files_record = lake.table("bronze.events"), lake.table("bronze.events_files")
    landing = lake.landing("events")
    max_bytes = config.ingest.max_file_bytes

    done = ingested_files(spark, lake)
    pending = sorted((f for f in list_files(spark, landing) if f.name not in done), key=lambda f: f.name)
    refused = {f.name: f"{f.size} bytes; the limit is {max_bytes}" for f in pending if f.size > max_bytes}
    pending = [f for f in pending if f.name not in refused]

    now = dt.datetime.now(dt.UTC)
    batch_id = new_batch_id(now)
    lines = 0
    if pending:
        logger.info("ingest_events: %d new files (%d bytes) → %s, batch %s",
                    len(pending), sum(f.size for f in pending), bronze, batch_id)
        tables.ensure(spark, bronze, BRONZE_EVENTS_SCHEMA)
        contents = read_files(spark, [f.uri for f in pending]).select(
            relative_path(F.col("path"), landing).alias("source_file"), "modificationTime", "content"
        )
        refusals = spark.sparkContext.accumulator([], _ListParam())
        tables.append(split_files(contents, batch_id, now, max_bytes, refusals), bronze)
        refused.update(dict(refusals.value))
        per_file = dict(
            tables.read(spark, bronze).filter(F.col("batch_id") == batch_id)
            .groupBy("source_file").count().collect()
        )
        taken = [f for f in pending if f.name not in refused]
        record = spark.createDataFrame(
            [(f.name, batch_id, now, f.size, per_file.get(f.name, 0)) for f in taken], INGESTED_FILES_SCHEMA
        )
        tables.ensure(spark, files_record, INGESTED_FILES_SCHEMA)
        tables.append(record, files_record)
        lines = sum(per_file.values())
        logger.info("ingest_events: batch %s: %d lines from %d files", batch_id, lines, len(taken))
    else:
        logger.info("ingest_events: no new files in %s", landing)
    if refused:
        raise IngestRefused(
            "refused, left in landing: " + "; ".join(f"{landing}/{n}: {why}" for n, why in sorted(refused.items()))
        )
    return IngestResult(batch_id, len(pending), lines, sorted(refused))


def main(argv: list[str] | None = None) -> int:
    return task_main("ingest_events", "bronze", run, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())
