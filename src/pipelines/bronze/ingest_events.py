"""ingest_events (bronze): new files in landing/events/ → bronze/events, each file exactly once.

Every non-blank line becomes one row: its raw bytes as received, its text where it is valid
UTF-8, the file (relative to landing/events/), the line number, the ingestion time and a batch id.
Plain files up to `ingest.whole_file_max_bytes` are read whole and split in Spark; larger ones and
.gz files are streamed and split by Python tasks. A file over `ingest.max_file_bytes`, a corrupt
.gz, one named as compressed otherwise (.bz2, .zst, ...), or one whose path Spark cannot read
(`LandingFile.unreadable`, see `palindrom.lake.files`) is refused, left in landing and recorded in
bronze/_refusals/events; the other files are ingested, then the task fails naming it (or, with
`--on-refusal record` as in the job, succeeds, and `check_landing` fails naming it).
"""

from __future__ import annotations

import collections
import datetime as dt
import functools
import heapq
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
from pyspark import AccumulatorParam
from pyspark.sql import Column, DataFrame, Observation, Row, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema
from pyspark.sql.types import (
    BinaryType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from palindrom.config import PipelineConfig
from palindrom.events.lines import (
    UTF8_BOM,
    WHITESPACE,
    FileRefused,
    gunzip,
    is_gzipped,
    physical_lines,
    unsupported_compression,
)
from palindrom.lake import refusals, tables
from palindrom.lake.files import (
    LandingFile,
    list_files,
    not_taken,
    piece_reader,
    read_files,
    relative_path,
)
from palindrom.lake.paths import Lake, TableRef
from palindrom.logging import logger
from pipelines.tasks import ingest_task_main

BRONZE_EVENTS_SCHEMA = StructType([
    StructField("batch_id", StringType(), False),
    StructField("ingested_at", TimestampType(), False),
    StructField("source_file", StringType(), False),
    StructField("source_modified_at", TimestampType(), True),
    StructField("line_number", LongType(), False),
    StructField("raw", BinaryType(), False),
    StructField("text", StringType(), True),
])
# File statistics on what reads select by, not on the lines themselves (min/max of every line's text
# is work on every write that no query can use).
BRONZE_TABLE_PROPERTIES = {"delta.dataSkippingStatsColumns": "batch_id,ingested_at,source_file,line_number"}
MAX_OBSERVED_FILES = 256  # see append_counting_lines
BYTES_AS_TEXT = "ISO-8859-1"  # one character per byte: split and cut as text, every byte kept
MAX_BINARY = 2**31 - 1
PIECE_BYTES = 16 << 20  # what a streaming task reads of a file at a time (see streamed_lines)
WRITE_TASK_BYTES = 64 << 20  # landing bytes per write task where files are many and small (see in_few_tasks)
# The physical lines of a streamed file, as its Python task hands them to Spark.
STREAMED_SCHEMA = pa.schema([("source_file", pa.string()), ("modificationTime", pa.timestamp("us", tz="UTC")),
                             ("index", pa.int64()), ("line", pa.binary())])


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


def landing_files(spark: SparkSession, uris: list[str], landing: str) -> DataFrame:
    """(source_file relative to `landing`, modificationTime, content) of the named files."""
    return read_files(spark, uris).select(relative_path(F.col("path"), landing).alias("source_file"),
                                          "modificationTime", "content")


def whole_file_lines(files: DataFrame) -> DataFrame:
    """(source_file, modificationTime, content) → (source_file, modificationTime, utf8, index, line):
    every physical line (index from 0) by the line rules of `palindrom.events.lines`, in Spark
    expressions (no Python worker). The content, less a leading BOM, is split on "\\n" as UTF-8 text
    where it is valid UTF-8 (every line then is, `utf8`), else as ISO-8859-1 text (one character per
    byte, so no byte is altered and bronze_lines checks each line on its own)."""
    content = F.col("content")
    content = F.when(F.substring(content, 1, len(UTF8_BOM)) == F.lit(bytearray(UTF8_BOM)),
                     F.substring(content, len(UTF8_BOM) + 1, MAX_BINARY)).otherwise(content)
    as_text = content.cast(StringType())  # the bytes as they are, not checked
    checked = files.select("source_file", "modificationTime", content.alias("content"),
                           F.is_valid_utf8(as_text).alias("utf8"))
    # Exploded in a step of its own: `utf8` is then a column of each line, not a check of the whole
    # content repeated for every line.
    utf8, content = F.col("utf8"), F.col("content")
    return checked.select(
        "source_file", "modificationTime", "utf8",
        F.posexplode(F.split(F.when(utf8, content.cast(StringType())).otherwise(F.decode(content, BYTES_AS_TEXT)),
                             "\n")).alias("index", "line"))


def streamed_lines(spark: SparkSession, landing: str, files: list[LandingFile], max_bytes: int, refusals,
                   piece_bytes: int = PIECE_BYTES) -> DataFrame:
    """The same columns as whole_file_lines for the named files of `landing`, read by Python tasks (the
    files dealt out by task_groups) in pieces of `piece_bytes` (decompressed pieces too) and split there
    (`palindrom.events.lines`), so that no file is ever whole in memory: a whole-file read holds a
    file several times over in the JVM (a 1 GB file ran out of a 4 GB driver's heap). A .gz file is
    decompressed twice: first to check all of it (a corrupt or oversized one gives no line and is
    named in `refusals`), then for its lines."""
    def read(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        pieces = piece_reader(landing, piece_bytes)
        for batch in batches:
            for file in batch.to_pylist():
                name = file["source_file"]
                content = pieces(name)
                if is_gzipped(name):
                    try:  # all of it first: its lines go out only if the whole file can be read
                        collections.deque(gunzip(content, max_bytes, piece_bytes), maxlen=0)
                    except FileRefused as e:
                        refusals.add([(name, str(e))])
                        continue
                    content = gunzip(pieces(name), max_bytes, piece_bytes)
                source_file = pa.scalar(name, pa.string())
                modified = pa.scalar(file["modificationTime"], STREAMED_SCHEMA.field("modificationTime").type)
                index = 0
                for lines in physical_lines(content):
                    n = len(lines)
                    yield pa.RecordBatch.from_arrays([
                        pa.repeat(source_file, n), pa.repeat(modified, n),
                        pa.array(range(index, index + n), pa.int64()), pa.array(lines, pa.binary()),
                    ], schema=STREAMED_SCHEMA)
                    index += n

    tasks = write_tasks(sum(f.size for f in files), spark.sparkContext.defaultParallelism)
    groups = [[(f.name, f.modified_at) for f in group] for group in task_groups(files, tasks)]
    # One group a partition (as many slices as elements), one partition a task.
    listing = spark.sparkContext.parallelize(groups, len(groups)).flatMap(lambda group: group).toDF(
        from_arrow_schema(STREAMED_SCHEMA)[:2])
    streamed = listing.mapInArrow(read, from_arrow_schema(STREAMED_SCHEMA))
    line = F.col("line")
    utf8 = F.is_valid_utf8(line.cast(StringType()))
    return streamed.select("source_file", "modificationTime", utf8.alias("utf8"), "index",
                           F.when(utf8, line.cast(StringType())).otherwise(F.decode(line, BYTES_AS_TEXT))
                           .alias("line"))


def bronze_lines(lines: DataFrame, batch_id: str, ingested_at: dt.datetime) -> DataFrame:
    """Physical lines (whole_file_lines' columns) → one bronze row per non-blank line: one trailing
    "\\r" goes; a line whose text is only white space is skipped; line numbers from 1."""
    line, utf8 = F.col("line"), F.col("utf8")
    stripped = F.when(line.endswith("\r"), line.substr(F.lit(1), F.length(line) - 1)).otherwise(line)
    # A UTF-8 line's bytes are its string's own (a cast copies them; `encode` would decode and re-encode).
    raw = F.when(utf8, stripped.cast(BinaryType())).otherwise(F.encode(stripped, BYTES_AS_TEXT))
    text = F.when(utf8, stripped).otherwise(F.try_validate_utf8(raw.cast(StringType())))
    # Blank is decided before `text` is selected: a filter on the selected column is pushed below the
    # selection with `text` substituted, computing it twice per line. Where the line is UTF-8 the
    # line itself decides ("\r" is white space: stripping it changes nothing).
    non_blank = lines.filter(F.when(utf8, _has_text(line)).otherwise(text.isNull() | _has_text(text)))
    return non_blank.select(
        F.lit(batch_id).alias("batch_id"),
        F.lit(ingested_at).cast(TimestampType()).alias("ingested_at"),
        "source_file",
        F.col("modificationTime").alias("source_modified_at"),
        (F.col("index") + 1).cast(LongType()).alias("line_number"),
        raw.alias("raw"),
        text.alias("text"),
    )


def write_tasks(landing_bytes: int, cores: int) -> int:
    """How many tasks a batch of `landing_bytes` is read and written by, at most: 2 x cores, or one per
    WRITE_TASK_BYTES where that is more, so that many small files are not a task (and a bronze file)
    each, and large files keep a task each."""
    return max(2 * cores, -(-landing_bytes // WRITE_TASK_BYTES))


def task_groups(files: list[LandingFile], tasks: int) -> list[list[LandingFile]]:
    """`files` dealt into at most `tasks` groups of about equal bytes: the largest first, each to the
    group with the fewest bytes so far. A Python task per file cost about 45 ms a file on two cores
    (1,000 small .gz files: 43 to 56 s, against 3 s read whole); a file larger than a group's share
    has a group to itself."""
    groups: list[list[LandingFile]] = [[] for _ in range(min(tasks, len(files)))]
    loads = [(0, i) for i in range(len(groups))]
    for f in sorted(files, key=lambda f: (-f.size, f.name)):
        load, i = heapq.heappop(loads)
        groups[i].append(f)
        heapq.heappush(loads, (load + f.size, i))
    return groups


def in_few_tasks(lines: DataFrame, landing_bytes: int, cores: int) -> DataFrame:
    """`lines` written by at most write_tasks(landing_bytes, cores) tasks, merged without a shuffle.
    Spark packs small landing files into a read task by a 4 MB open cost each, and each task writes a
    bronze file: 3,000 files of 1.7 KB made 94 bronze files of 160 lines, and their ingest took 5.8 to
    7.3 s against 3.3 s as 4 files (one warm session). (A coalesce to more tasks than there are leaves
    them as they are.)"""
    return lines.coalesce(write_tasks(landing_bytes, cores))


def _has_text(s: Column) -> Column:
    """`s` is not empty and not only white space: for nearly every line its first character (`{`)
    decides; only where that is white space is the line trimmed (a copy of it)."""
    first = F.substring(s, 1, 1)
    return (((first != "") & (F.instr(F.lit(WHITESPACE), first) == 0))
            | (F.length(F.btrim(s, F.lit(WHITESPACE))) > 0))


INGESTED_FILES_SCHEMA = StructType([
    StructField("source_file", StringType(), False),
    StructField("batch_id", StringType(), False),
    StructField("ingested_at", TimestampType(), False),
    StructField("size_bytes", LongType(), True),  # null: recorded after the file left landing (see run)
    StructField("lines", LongType(), False),
])


def bronze_commit_tag(batch_id: str) -> str:
    """The `userMetadata` of the bronze commit that appends a batch."""
    return f"ingest_events batch {batch_id}"


def recorded_files(lake: Lake) -> tuple[set[str], str | None]:
    """The files in the file record, and the newest batch that recorded any (None: none yet)."""
    rows = tables.read_small(lake.table("bronze.events_files"), ["source_file", "batch_id"])
    return {r["source_file"] for r in rows}, max((r["batch_id"] for r in rows), default=None)


def record_behind_bronze(lake: Lake, last_recorded: str | None) -> bool:
    """Whether bronze's newest commit is not the newest recorded batch's: a run died between its
    bronze commit and its file record. Read from the log's newest commit: bronze is not queried."""
    bronze_ref = lake.table("bronze.events")
    if not tables.exists(bronze_ref):
        return False
    return last_recorded is None or tables.last_commit_metadata(bronze_ref) != bronze_commit_tag(last_recorded)


def ingested_files(spark: SparkSession, lake: Lake) -> tuple[set[str], list[Row]]:
    """Files already taken in: those in the file record, and those of bronze batches after the last
    recorded one, which a run that died between its bronze commit and its record left unrecorded. The
    latter come back as (source_file, batch_id, ingested_at, lines) rows for the next record commit to
    include: runs do not overlap (max_concurrent_runs: 1) and batch ids sort by run start, so after
    that commit every batch up to the newest recorded one is recorded, and bronze's file statistics on
    batch_id let this skip all older files: it reads no more of bronze as bronze grows. Where the
    record is not behind bronze (the usual case) there is nothing to look for, and bronze is not
    queried at all (a query builds the table's file list: seconds in a fresh process)."""
    recorded, last_recorded = recorded_files(lake)
    if not record_behind_bronze(lake, last_recorded):
        return recorded, []
    bronze = tables.read(spark, lake.table("bronze.events"))
    if last_recorded is not None:
        bronze = bronze.filter(F.col("batch_id") > last_recorded)
    unrecorded = (bronze.groupBy("source_file", "batch_id")
                  .agg(F.min("ingested_at").alias("ingested_at"), F.count(F.lit(1)).alias("lines")).collect())
    return recorded, [r for r in unrecorded if r["source_file"] not in recorded]


def up_to_date(config: PipelineConfig) -> str | None:
    """Nothing to ingest: every landing file is in the file record, and the record is not behind bronze."""
    lake = Lake(config.storage_root)
    recorded, last_recorded = recorded_files(lake)
    landing = lake.landing("events")
    if record_behind_bronze(lake, last_recorded) or not_taken(list_files(landing), recorded):
        return None
    return f"no new files in {landing}"


def append_counting_lines(spark: SparkSession, lines: DataFrame, bronze: TableRef, batch_id: str,
                          names: list[str]) -> dict[str, int]:
    """Append a batch's lines to bronze; returns the lines written per source file. Up to
    MAX_OBSERVED_FILES files, the counts are observed while the lines are written (one pass); beyond
    that, one count per file per row would cost more than reading the batch back, which it does."""
    tag = bronze_commit_tag(batch_id)
    if len(names) > MAX_OBSERVED_FILES:
        tables.append(lines, bronze, tag)
        return dict(tables.read(spark, bronze).filter(F.col("batch_id") == batch_id)
                    .groupBy("source_file").count().collect())
    observed = Observation("lines per file")
    counts = [F.count_if(F.col("source_file") == name).alias(f"file{i}") for i, name in enumerate(names)]
    tables.append(lines.observe(observed, *counts), bronze, tag)
    metrics = observed.get
    return {name: metrics[f"file{i}"] for i, name in enumerate(names) if metrics[f"file{i}"]}


def run(spark: SparkSession, config: PipelineConfig, on_refusal: str = "fail") -> IngestResult:
    lake = Lake(config.storage_root)
    bronze, files_record = lake.table("bronze.events"), lake.table("bronze.events_files")
    landing = lake.landing("events")
    max_bytes = config.ingest.max_file_bytes

    recorded, unrecorded = ingested_files(spark, lake)
    done = recorded | {r["source_file"] for r in unrecorded}
    listing = list_files(landing)
    pending = not_taken(listing, done)
    refused = {f.name: f"{f.size} bytes; the limit is {max_bytes}" for f in pending if f.size > max_bytes}
    refused |= {f.name: why for f in pending if (why := f.unreadable or unsupported_compression(f.name))}
    pending = [f for f in pending if f.name not in refused]

    now = dt.datetime.now(dt.UTC)
    batch_id = tables.new_run_id(now)
    lines, record = 0, []
    if pending:
        logger.info("ingest_events: %d new files (%d bytes) → %s, batch %s",
                    len(pending), sum(f.size for f in pending), bronze, batch_id)
        tables.ensure(spark, bronze, BRONZE_EVENTS_SCHEMA, properties=BRONZE_TABLE_PROPERTIES)
        corrupt = spark.sparkContext.accumulator([], _ListParam())
        whole, streamed = [], []
        for f in pending:
            (streamed if is_gzipped(f.name) or f.size > config.ingest.whole_file_max_bytes else whole).append(f)
        physical = [whole_file_lines(landing_files(spark, [f.uri for f in whole], landing))] if whole else []
        if streamed:
            physical.append(streamed_lines(spark, landing, streamed, max_bytes, corrupt))
        lines_of_batch = in_few_tasks(bronze_lines(functools.reduce(DataFrame.unionByName, physical), batch_id, now),
                                      sum(f.size for f in pending), spark.sparkContext.defaultParallelism)
        per_file = append_counting_lines(spark, lines_of_batch, bronze, batch_id, [f.name for f in pending])
        refused.update(dict(corrupt.value))
        taken = [f for f in pending if f.name not in refused]
        record = [(f.name, batch_id, now, f.size, per_file.get(f.name, 0)) for f in taken]
        lines = sum(per_file.values())
        logger.info("ingest_events: batch %s: %d lines from %d files", batch_id, lines, len(taken))
    else:
        logger.info("ingest_events: no new files in %s", landing)
    # Recorded also when nothing is new: else every run would look into bronze again, as this one did.
    # A file taken from landing since the run died is recorded too, without its size: its lines are in
    # bronze, and the record must name every file of every batch up to the newest it holds.
    sizes = {f.name: f.size for f in listing}
    repaired = [(r["source_file"], r["batch_id"], r["ingested_at"], sizes.get(r["source_file"]), r["lines"])
                for r in unrecorded]
    if repaired:
        logger.warning("ingest_events: recording %d files that bronze holds from batches %s, whose run "
                       "died before its file record", len(repaired), sorted({r[1] for r in repaired}))
    if gone := sorted(r[0] for r in repaired if r[3] is None):
        logger.warning("ingest_events: %d of them no longer in %s, recorded without a size: %s",
                       len(gone), landing, ", ".join(gone[:10]) + (", ..." if len(gone) > 10 else ""))
        tables.allow_nulls(spark, files_record, "size_bytes")  # a record created before sizes could be null
    if record or repaired:
        tables.append_small(files_record, record + repaired, INGESTED_FILES_SCHEMA)
    if refused:
        refusals.record(lake.table("bronze.events_refusals"), batch_id, now,
                        {("events", name): why for name, why in refused.items()})
        refusals.report({f"{landing}/{name}": why for name, why in refused.items()}, "ingest_events", on_refusal)
    return IngestResult(batch_id, len(pending), lines, sorted(refused))


def main(argv: list[str] | None = None) -> int:
    return ingest_task_main("ingest_events", run, __doc__, up_to_date, argv)


if __name__ == "__main__":
    raise SystemExit(main())
