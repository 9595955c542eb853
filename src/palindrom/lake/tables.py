"""Delta table I/O: the only module that reads or writes tables.

Jobs pass a `TableRef` (from `Lake.table(name)`), never a path. Every table is created with
explicit properties so that it stays readable by other Delta clients (delta-rs): no deletion
vectors, no features beyond what they read.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence

from delta.tables import DeltaTable
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from palindrom.lake import native
from palindrom.lake.paths import TableRef

PORTABLE_PROPERTIES = {"delta.enableDeletionVectors": "false"}


class TableNotFound(LookupError):
    def __init__(self, ref: TableRef):
        super().__init__(f"table {ref.name} does not exist at {ref.uri}; has the job that writes it run?")
        self.ref = ref


def _current(spark: SparkSession, ref: TableRef) -> DeltaTable | None:
    """The Delta table at the path now, or None. Not `DeltaTable.isDeltaTable`: once this session has
    looked at the path, that answers from a cached snapshot, which misses a table another process
    created since; `forPath` reads the log afresh."""
    try:
        return DeltaTable.forPath(spark, ref.uri)
    except AnalysisException:
        return None


def exists(spark: SparkSession, ref: TableRef) -> bool:
    return _current(spark, ref) is not None


def _last_commit(spark: SparkSession, ref: TableRef, field: str):
    """A field of the table's newest commit (None: no table), read from the commit itself: no file
    list is built, unlike a query."""
    table = _current(spark, ref)
    return None if table is None else table.history(1).select(field).first()[0]


def current_version(spark: SparkSession, ref: TableRef) -> int | None:
    return _last_commit(spark, ref, "version")


def last_commit_metadata(spark: SparkSession, ref: TableRef) -> str | None:
    """The `userMetadata` of the table's newest commit (None: no table, or no metadata)."""
    return _last_commit(spark, ref, "userMetadata")


def read(spark: SparkSession, ref: TableRef, version: int | None = None) -> DataFrame:
    if not exists(spark, ref):
        raise TableNotFound(ref)
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(ref.uri)


def distinct_values(spark: SparkSession, ref: TableRef, column: str) -> set:
    """The distinct values of one column (an empty set if there is no table): batch ids, paths."""
    if not exists(spark, ref):
        return set()
    return {r[0] for r in read(spark, ref).select(column).distinct().collect()}


def batch_ids(spark: SparkSession, ref: TableRef) -> set[str]:
    """The distinct batch ids of a bronze table (empty if there is no table). Every bronze commit
    writes one batch, so each file holds one id, which its statistics in the Delta log name (min ==
    max, no nulls): read by delta-rs from the log alone, however many files bronze has grown to. A
    scan of the column where any file's statistics do not pin its id (none kept, or truncated)."""
    files = native.file_statistics(ref.uri)
    if files is None or files.num_rows == 0:
        return set()
    names = ("min.batch_id", "max.batch_id", "null_count.batch_id")
    if all(n in files.column_names for n in names):
        low, high, nulls = (files.column(n).to_pylist() for n in names)
        if all(lo is not None and lo == hi and n == 0 for lo, hi, n in zip(low, high, nulls, strict=True)):
            return set(low)
    return distinct_values(spark, ref, "batch_id")


def read_small(ref: TableRef, columns: Sequence[str]) -> list[dict]:
    """The rows of a small bookkeeping table (a file or batch record) as dicts, read by delta-rs in
    this process ([] if there is no table): a Spark query would first build the table's file list in
    the session, about a second of a short run, for a few hundred rows."""
    rows = native.read_table(ref.uri, columns=list(columns))
    return [] if rows is None else rows.to_pylist()


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
    if exists(spark, ref):
        return
    builder = DeltaTable.createIfNotExists(spark).location(ref.uri).addColumns(schema)
    if partition_by:
        builder = builder.partitionedBy(*partition_by)
    for key, value in {**PORTABLE_PROPERTIES, **(properties or {})}.items():
        builder = builder.property(key, value)
    try:
        builder.execute()
    except Exception:
        if not exists(spark, ref):
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
    spark = df.sparkSession
    before = current_version(spark, ref)
    tag = f"{app_id}@{version}:{uuid.uuid4().hex}"
    (_appender(df, tag).option("txnAppId", app_id).option("txnVersion", version)
     .option("mergeSchema", "true").save(ref.uri))
    first_new, last = (0 if before is None else before + 1), current_version(spark, ref)
    if last < first_new:
        return False
    recent = DeltaTable.forPath(spark, ref.uri).history(last - first_new + 1)
    return recent.filter(recent.userMetadata == tag).limit(1).count() > 0


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


def table_id(spark: SparkSession, ref: TableRef) -> str:
    """The Delta table's id (from its metadata): with a version, it names the data exactly."""
    return DeltaTable.forPath(spark, ref.uri).detail().select("id").first()[0]


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
