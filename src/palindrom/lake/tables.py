"""Delta table I/O: the only module that reads or writes tables.

Jobs pass a `TableRef` (from `Lake.table(name)`), never a path. Every table is created with
explicit properties so that it stays readable by other Delta clients (delta-rs): no deletion
vectors, no features beyond what they read.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import TypeVar

import pyarrow as pa
import pyarrow.compute as pc
from delta.tables import DeltaTable
from py4j.protocol import Py4JJavaError
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import StructType

from palindrom.lake import native
from palindrom.lake.paths import TableRef
from palindrom.logging import logger

T = TypeVar("T")

PORTABLE_PROPERTIES = {"delta.enableDeletionVectors": "false"}
# A checkpoint every 10 commits, as Delta Spark writes by default; delta-rs' own default is every 100,
# and a reader of a log without one reads every commit file since the last.
SMALL_TABLE_PROPERTIES = {**PORTABLE_PROPERTIES, "delta.checkpointInterval": "10"}


class TableNotFound(LookupError):
    def __init__(self, ref: TableRef):
        super().__init__(f"table {ref.name} does not exist at {ref.uri}; has the job that writes it run?")
        self.ref = ref


def exists(ref: TableRef) -> bool:
    return native.commits(ref.uri, 1) is not None


def new_run_id(now: dt.datetime) -> str:
    """The id a run writes its rows under (an ingest batch, a replay, a training build): sortable by the
    run's start, unique across concurrent runs."""
    return f"{now:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}"


def sql_in(column: str, values: Iterable[str | int | dt.date]) -> str:
    """The SQL predicate `column IN (…)`, for the APIs that take SQL text (replaceWhere, MERGE
    conditions): strings quoted and escaped, dates as DATE literals."""
    def literal(value) -> str:
        if isinstance(value, str):
            return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
        if isinstance(value, dt.date):
            return f"DATE'{value.isoformat()}'"
        return str(int(value))

    literals = [literal(v) for v in values]
    if not literals:
        raise ValueError(f"no values for {column} IN (…)")
    return f"{column} IN ({', '.join(literals)})"


def _last_commit(ref: TableRef, field: str):
    """A field of the table's newest commit (None: no table), read by delta-rs from the log: a Spark
    look-up (DeltaTable.forPath, history) builds the table's snapshot in the JVM first, a tenth of a
    second or more each time, several times in a short job. (Not `DeltaTable.isDeltaTable` either:
    once a session has looked at a path, that answers from a cached snapshot.)"""
    newest = native.commits(ref.uri, 1)
    return None if newest is None else newest[0].get(field)


def current_version(ref: TableRef) -> int | None:
    return _last_commit(ref, "version")


def last_commit_metadata(ref: TableRef) -> str | None:
    """The `userMetadata` of the table's newest commit (None: no table, or no metadata)."""
    return _last_commit(ref, "userMetadata")


def read(spark: SparkSession, ref: TableRef, version: int | None = None) -> DataFrame:
    if not exists(ref):
        raise TableNotFound(ref)
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(ref.uri)


def distinct_values(ref: TableRef, column: str) -> set:
    """The distinct values of one column (an empty set if there is no table), read by delta-rs in this
    process, that column's data alone: they are wanted here anyway, and a Spark query in a task's fresh
    process takes seconds before it reads anything (a media ingest with nothing new: 14 s with one, 5 s
    without)."""
    rows = native.read_table(ref.uri, columns=[column])
    return set() if rows is None else set(pc.unique(rows.column(column)).to_pylist())


def _may_hold(low, high, wanted: set | None) -> bool:
    """Whether a file whose statistics give `low`..`high` (None: not kept) may hold a value of `wanted`
    (None: any)."""
    return wanted is None or None in (low, high) or any(low <= v <= high for v in wanted)


def logged_rows_per_value(ref: TableRef, column: str, values: Collection | None = None) -> dict | None:
    """The table's row count per non-null value of `column` (only `values`, if given; {} if there is
    no table), from the file statistics in the Delta log, read by delta-rs, where every file that may
    hold a wanted value names exactly one (min == max, no nulls) and its row count: each bronze commit
    writes one batch, and each silver or quarantine commit the rows of the batches one run cleaned.
    None where the log cannot tell (statistics not kept, truncated, or a file of several values)."""
    files = native.file_statistics(ref.uri)
    if files is None:
        return {}
    wanted = None if values is None else set(values)
    names = (f"min.{column}", f"max.{column}", f"null_count.{column}", "num_records")
    if not all(n in files.column_names for n in names):
        return None
    counts: Counter = Counter()
    for low, high, nulls, rows in zip(*(files.column(n).to_pylist() for n in names), strict=True):
        if rows is not None and nulls == rows:
            continue  # nulls only
        if not _may_hold(low, high, wanted):
            continue
        if low is None or low != high or nulls != 0 or rows is None:
            return None
        if wanted is None or low in wanted:
            counts[low] += rows
    return dict(counts)


def logged_nulls_only(ref: TableRef, column: str, where: tuple[str, Collection] | None = None) -> bool:
    """Whether the Delta log shows `column` null in every row (only the rows of files that may hold
    one of `where`'s values of its column, if given): each such file's null count equals its row
    count. False where it shows otherwise or cannot tell (no statistics kept); True if there is no
    table. No data file is opened."""
    files = native.file_statistics(ref.uri)
    if files is None:
        return True
    names = [f"null_count.{column}", "num_records"]
    if where is not None:
        names += [f"min.{where[0]}", f"max.{where[0]}"]
    if not all(n in files.column_names for n in names):
        return False
    wanted = None if where is None else set(where[1])
    for nulls, rows, *bounds in zip(*(files.column(n).to_pylist() for n in names), strict=True):
        if bounds and not _may_hold(*bounds, wanted):
            continue
        if rows is None or nulls != rows:
            return False
    return True


def rows_per_value(spark: SparkSession, ref: TableRef, column: str, values: Collection | None = None) -> dict:
    """logged_rows_per_value, or where the log cannot tell, a scan of the column."""
    logged = logged_rows_per_value(ref, column, values)
    if logged is not None:
        return logged
    rows = read(spark, ref).select(column).filter(F.col(column).isNotNull())
    if values is not None:
        rows = rows.filter(F.col(column).isin(list(values)))
    return {r[0]: r[1] for r in rows.groupBy(column).count().collect()}


def values_without_rows(spark: SparkSession, ref: TableRef, column: str, values: Collection) -> list:
    """Those of `values` that no row of the table holds in `column`, sorted (rows_per_value: from the
    Delta log where it can tell). A run that appends all its batches' rows in one commit asks this
    for the batches an earlier run of them, which died before its batch record, has not written."""
    if not values:
        return []
    held = rows_per_value(spark, ref, column, values)
    return sorted(v for v in values if v not in held)


def logged_distinct_combinations(ref: TableRef, columns: Sequence[str]) -> set[tuple] | None:
    """The distinct combinations of `columns`' values in the table (empty if there is no table), from
    the Delta log alone, where every file pins one value of each: a partition column, or statistics
    with min == max and no nulls (a training dataset's files each hold one build's rows of one
    release). None where the log cannot tell."""
    files = native.file_statistics(ref.uri)
    if files is None:
        return set()
    found, names = set(), set(files.column_names)
    for file in files.to_pylist():
        values = []
        for c in columns:
            if f"partition.{c}" in names:
                values.append(file[f"partition.{c}"])
            elif ({f"min.{c}", f"max.{c}", f"null_count.{c}"} <= names and file[f"null_count.{c}"] == 0
                  and file[f"min.{c}"] is not None and file[f"min.{c}"] == file[f"max.{c}"]):
                values.append(file[f"min.{c}"])
            else:
                return None
        found.add(tuple(values))
    return found


def distinct_combinations(spark: SparkSession, ref: TableRef, columns: Sequence[str]) -> set[tuple]:
    """logged_distinct_combinations, or where the log cannot tell, a scan of those columns."""
    logged = logged_distinct_combinations(ref, columns)
    if logged is not None:
        return logged
    return {tuple(r) for r in read(spark, ref).select(*columns).distinct().collect()}


def batch_ids(spark: SparkSession, ref: TableRef) -> set[str]:
    """The distinct batch ids of a bronze table (empty if there is no table), from the Delta log
    however many files bronze has grown to (see rows_per_value)."""
    return set(rows_per_value(spark, ref, "batch_id"))


def read_small(ref: TableRef, columns: Sequence[str]) -> list[dict]:
    """The rows of a small bookkeeping table (a file or batch record) as dicts, read by delta-rs in
    this process ([] if there is no table): a Spark query would first build the table's file list in
    the session, about a second of a short run, for a few hundred rows."""
    rows = native.read_table(ref.uri, columns=list(columns))
    return [] if rows is None else rows.to_pylist()


def append_small(ref: TableRef, rows: Sequence[Sequence], schema: StructType) -> None:
    """Append rows made on the driver (a file or batch record, a progress mark: a few rows, in
    `schema`'s column order) to a small bookkeeping table, created with `schema` and
    SMALL_TABLE_PROPERTIES where it does not exist yet: one commit by delta-rs in this process, about
    10 ms, where Spark plans and runs a job for it (0.2 to 0.3 s, every run of every task) and commits
    a new table's creation first (another 0.2 to 0.4 s). Each bookkeeping table has a single writer,
    its task, which runs one at a time; `read_small` reads it back. A naive datetime is local time, as
    Spark's `collect()` returns one."""
    arrow_schema = to_arrow_schema(schema, timezone="UTC")
    table = pa.Table.from_pylist([dict(zip(arrow_schema.names, map(_aware, row), strict=True)) for row in rows],
                                 schema=arrow_schema)
    native.append(ref.uri, table, SMALL_TABLE_PROPERTIES)


def allow_nulls(spark: SparkSession, ref: TableRef, column: str) -> None:
    """Drop `column`'s NOT NULL constraint where the table has one: a metadata-only commit, for a table
    created before the column became optional (delta-rs can append to it but not alter it)."""
    if column in native.not_null_columns(ref.uri):
        path = ref.uri.replace("`", "``")  # a backquote in a quoted SQL name is doubled
        spark.sql(f"ALTER TABLE delta.`{path}` ALTER COLUMN {column} DROP NOT NULL")


def _aware(value):
    return value.astimezone(dt.UTC) if type(value) is dt.datetime and value.tzinfo is None else value


def ensure(
    spark: SparkSession,
    ref: TableRef,
    schema: StructType,
    partition_by: Sequence[str] = (),
    properties: Mapping[str, str] | None = None,
) -> None:
    """Create the table with this schema and properties if it does not exist yet. Writers creating it
    at the same moment are fine: the losers' commits fail (Delta's ProtocolChangedException) and
    they find the winner's table."""
    if exists(ref):
        return
    builder = DeltaTable.createIfNotExists(spark).location(ref.uri).addColumns(schema)
    if partition_by:
        builder = builder.partitionedBy(*partition_by)
    for key, value in {**PORTABLE_PROPERTIES, **(properties or {})}.items():
        builder = builder.property(key, value)
    try:
        builder.execute()
    except Exception:
        if not exists(ref):
            raise


def _appender(df: DataFrame, user_metadata: str | None):
    writer = df.write.format("delta").mode("append")
    return writer if user_metadata is None else writer.option("userMetadata", user_metadata)


def append(df: DataFrame, ref: TableRef, user_metadata: str | None = None) -> None:
    _appender(df, user_metadata).save(ref.uri)


def append_once(df: DataFrame, ref: TableRef, app_id: str, version: int) -> bool:
    """Append as Delta's idempotent write (txnAppId/txnVersion): skipped where a write of `app_id` at
    `version` or later is already committed, and a concurrent one of the same version fails. New
    columns in `df` are added to the table. Returns whether this write committed (False: skipped);
    Delta does not say, so the commit is tagged and looked for among those made since."""
    before = current_version(ref)
    tag = f"{app_id}@{version}:{uuid.uuid4().hex}"
    (_appender(df, tag).option("txnAppId", app_id).option("txnVersion", version)
     .option("mergeSchema", "true").save(ref.uri))
    first_new, last = (0 if before is None else before + 1), current_version(ref)
    if last < first_new:
        return False
    return any(c.get("userMetadata") == tag for c in native.commits(ref.uri, last - first_new + 1))


def _matching(keys: Iterable[str]) -> str:
    """MERGE condition: target `t` and source `s` equal on every key (NULL-safe)."""
    return " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)


def insert_new(spark: SparkSession, df: DataFrame, ref: TableRef, keys: Iterable[str],
               target_filter: str | None = None) -> None:
    """MERGE: insert the rows whose keys are not in the table yet; rows already there are untouched.
    `target_filter` (a SQL predicate on `t`, e.g. a partition) narrows what the MERGE reads, so that
    concurrent writers to other partitions do not conflict with it."""
    condition = _matching(keys) + (f" AND ({target_filter})" if target_filter else "")
    (
        DeltaTable.forPath(spark, ref.uri).alias("t")
        .merge(df.alias("s"), condition)
        .whenNotMatchedInsertAll()
        .execute()
    )


def update_columns(spark: SparkSession, df: DataFrame, ref: TableRef, keys: Iterable[str],
                   columns: Iterable[str]) -> None:
    """MERGE: set `columns` of the rows matching `df` on `keys` to `df`'s values."""
    (
        DeltaTable.forPath(spark, ref.uri).alias("t")
        .merge(df.alias("s"), _matching(keys))
        .whenMatchedUpdate(set={c: f"s.`{c}`" for c in columns})
        .execute()
    )


def delete_matching(spark: SparkSession, ref: TableRef, keys_df: DataFrame, keys: Iterable[str]) -> None:
    """MERGE: delete the rows whose keys appear in `keys_df`."""
    (
        DeltaTable.forPath(spark, ref.uri).alias("t")
        .merge(keys_df.alias("s"), _matching(keys))
        .whenMatchedDelete()
        .execute()
    )


def delete_where(spark: SparkSession, ref: TableRef, condition: str) -> None:
    """Delete the rows matching `condition` (a SQL predicate)."""
    DeltaTable.forPath(spark, ref.uri).delete(condition)


def table_id(ref: TableRef) -> str:
    """The Delta table's id (from its metadata, read by delta-rs): with a version, it names the data
    exactly."""
    table_id = native.table_id(ref.uri)
    if table_id is None:
        raise TableNotFound(ref)
    return table_id


def replace_where(df: DataFrame, ref: TableRef, condition: str) -> None:
    """Atomically replace the rows matching `condition` (a SQL predicate) with `df`."""
    df.write.format("delta").mode("overwrite").option("replaceWhere", condition).save(ref.uri)


def inserted_since(spark: SparkSession, ref: TableRef, after_version: int | None, up_to: int) -> DataFrame:
    """Rows inserted into a table with change data feed after `after_version`, up to `up_to`."""
    start = 0 if after_version is None else after_version + 1
    return (
        spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", start)
        .option("endingVersion", up_to)
        .load(ref.uri)
        .filter("_change_type = 'insert'")
    )


def consume_inserted(spark: SparkSession, ref: TableRef, after_version: int | None, up_to: int,
                     consume: Callable[[DataFrame], T]) -> T:
    """consume(the rows inserted after `after_version` up to `up_to`), or consume(every row at `up_to`)
    where `after_version` is None or the change feed of those versions is gone: the files their
    commits added removed by a VACUUM after an OPTIMIZE rewrote them, or the commits cleaned from the
    log. For a consumer that skips what it has done before (dates recomputed, texts already embedded)
    the full read is slower, never wrong."""
    if after_version is not None:
        try:
            return consume(inserted_since(spark, ref, after_version, up_to))
        except Py4JJavaError as e:
            if not _change_feed_gone(e):
                raise
            logger.warning("%s (%s): the change feed after version %d can no longer be read (%s); reading "
                           "the whole table at version %d instead", ref.name, ref.uri, after_version,
                           e.java_exception.getMessage(), up_to)
    return consume(read(spark, ref, up_to))


def _change_feed_gone(error: Py4JJavaError) -> bool:
    cause = error.java_exception
    while cause is not None:
        name = cause.getClass().getName()
        if name == "java.io.FileNotFoundException" or name.endswith((".DeltaFileNotFoundException",
                                                                     ".VersionNotFoundException")):
            return True
        cause = cause.getCause()
    return False
