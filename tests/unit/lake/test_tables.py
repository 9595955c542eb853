"""The I/O layer on its own, against temporary folders."""

import datetime as dt
from pathlib import Path

import deltalake
import pytest
from delta.tables import DeltaTable
from deltalake.exceptions import DeltaError
from py4j.protocol import Py4JJavaError
from pyspark.sql import Row
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType, TimestampType

from palindrom.lake import native, tables
from palindrom.lake.paths import Lake, TableRef
from tests.conftest import compact_and_vacuum, spark_jobs

SCHEMA = "k string, v long, day date"


@pytest.fixture
def ref(tmp_path):
    return TableRef("test.table", f"file:{tmp_path / 't'}")


def frame(spark, rows):
    return spark.createDataFrame(rows, "k string, v long").withColumn("day", F.to_date(F.lit("2026-11-26")))


def test_missing_table_is_named(spark_session, ref):
    assert not tables.exists(ref)
    assert tables.current_version(ref) is None
    with pytest.raises(tables.TableNotFound, match=r"test\.table does not exist"):
        tables.read(spark_session, ref)


def test_read_small_sees_every_commit_and_no_table_as_empty(spark_session, ref):
    """Also past the checkpoint Spark's Delta writes at version 10, as a daily record soon is."""
    assert tables.read_small(ref, ["k"]) == []
    tables.ensure(spark_session, ref, frame(spark_session, []).schema, partition_by=["day"])
    assert tables.read_small(ref, ["k"]) == []
    for i in range(12):
        tables.append(frame(spark_session, [(f"k{i:02}", i)]), ref)
    assert (Path(ref.uri.removeprefix("file:")) / "_delta_log" / f"{10:020}.checkpoint.parquet").exists()
    rows = sorted(tables.read_small(ref, ["k", "v", "day"]), key=lambda r: r["k"])
    assert [(r["k"], r["v"], str(r["day"])) for r in rows] == [(f"k{i:02}", i, "2026-11-26") for i in range(12)]


def test_a_table_another_writer_created_after_this_session_looked_is_found(spark_session, ref):
    """A build whose table creation lost to a concurrent build's holds a cached view of the path from
    before the table existed (Delta's create command loaded it); the table must still be found."""
    folder = ref.uri.removeprefix("file:")
    spark_session._jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark_session._jsparkSession, folder)
    deltalake.write_deltalake(folder, frame(spark_session, [("a", 1)]).toArrow())
    assert tables.exists(ref)
    tables.ensure(spark_session, ref, frame(spark_session, []).schema)  # nothing to do
    tables.append(frame(spark_session, [("b", 2)]), ref)
    assert sorted(r["k"] for r in tables.read(spark_session, ref).collect()) == ["a", "b"]


def test_append_small_creates_the_table_in_its_first_commit_and_spark_reads_it(spark_session, ref):
    schema = StructType([StructField("k", StringType(), False), StructField("at", TimestampType(), False),
                         StructField("n", LongType(), True)])
    utc = dt.datetime(2026, 11, 30, 5, 0, 1, 123456, tzinfo=dt.UTC)
    local = utc.astimezone().replace(tzinfo=None)  # naive local time, as Spark's collect() returns a timestamp
    assert spark_jobs(lambda: tables.append_small(ref, [("a", utc, 1), ("b", local, None)], schema)) == (None, False)
    tables.append_small(ref, [Row(k="c", at=utc, n=3)], schema)
    assert [c["version"] for c in native.commits(ref.uri, 5)] == [1, 0]  # no separate create commit
    assert tables.read(spark_session, ref).schema == schema  # NOT NULL kept
    assert sorted(tuple(r) for r in tables.read(spark_session, ref).collect()) == [
        ("a", local, 1), ("b", local, None), ("c", local, 3)]
    folder = Path(ref.uri.removeprefix("file:"))
    assert deltalake.DeltaTable(folder).metadata().configuration == tables.SMALL_TABLE_PROPERTIES
    with pytest.raises(DeltaError, match=r"/t: 1 rows not appended: .*'k' is declared as non-nullable"):
        tables.append_small(ref, [(None, utc, 4)], schema)
    assert tables.current_version(ref) == 1
    for i in range(8):  # a checkpoint at the 10th commit, as Spark writes one
        tables.append_small(ref, [(f"d{i}", utc, i)], schema)
    assert (folder / "_delta_log" / f"{9:020}.checkpoint.parquet").exists()
    assert len(tables.read_small(ref, ["k"])) == 11


def test_insert_new_is_idempotent(spark_session, ref):
    tables.ensure(spark_session, ref, frame(spark_session, []).schema, partition_by=["day"])
    tables.insert_new(spark_session, frame(spark_session, [("a", 1), ("b", 2)]), ref, ["k"])
    tables.insert_new(spark_session, frame(spark_session, [("a", 9), ("c", 3)]), ref, ["k"])
    assert sorted(tuple(r) for r in tables.read(spark_session, ref).select("k", "v").collect()) == [
        ("a", 1), ("b", 2), ("c", 3)]
    assert tables.current_version(ref) == 2


def test_append_once_skips_a_version_already_written_and_adds_new_columns(spark_session, ref):
    assert tables.append_once(frame(spark_session, [("a", 1)]), ref, "job", 0)
    assert not tables.append_once(frame(spark_session, [("a", 1)]), ref, "job", 0)  # a retry: skipped
    assert tables.current_version(ref) == 0
    tables.append(frame(spark_session, [("c", 3)]), ref)  # another writer's commit comes between
    assert not tables.append_once(frame(spark_session, [("c", 3)]), ref, "job", 0)  # still skipped
    assert tables.append_once(frame(spark_session, [("b", 2)]).withColumn("extra", F.lit("x")), ref, "job", 1)
    rows = sorted((r["k"], r["extra"]) for r in tables.read(spark_session, ref).collect())
    assert rows == [("a", None), ("b", "x"), ("c", None)]


def test_delete_update_and_replace_where(spark_session, ref):
    tables.ensure(spark_session, ref, frame(spark_session, []).schema)
    tables.append(frame(spark_session, [("a", 1), ("b", 2), ("c", 3)]), ref)
    tables.delete_matching(spark_session, ref, spark_session.createDataFrame([("a",)], "k string"), ["k"])
    tables.update_columns(spark_session, frame(spark_session, [("b", 20)]), ref, ["k"], ["v"])
    assert sorted(tuple(r) for r in tables.read(spark_session, ref).select("k", "v").collect()) == [("b", 20), ("c", 3)]
    tables.replace_where(frame(spark_session, [("z", 0)]), ref, "day = DATE'2026-11-26'")
    assert [tuple(r) for r in tables.read(spark_session, ref).select("k", "v").collect()] == [("z", 0)]


def test_sql_in_selects_exactly_the_values_named_quotes_and_backslashes_included(spark_session):
    keys = ["plain", "it's", "back\\slash", "\\'", "other"]
    days = [dt.date(2026, 1, 2), dt.date(2026, 1, 3)]
    df = spark_session.createDataFrame([(k, i, days[i % 2]) for i, k in enumerate(keys)], SCHEMA)
    named = ["it's", "back\\slash", "\\'"]
    assert sorted(r["k"] for r in df.filter(tables.sql_in("k", named)).collect()) == sorted(named)
    assert sorted(r["v"] for r in df.filter(tables.sql_in("v", [0, 4])).collect()) == [0, 4]
    assert sorted(r["v"] for r in df.filter(tables.sql_in("day", days[:1])).collect()) == [0, 2, 4]
    with pytest.raises(ValueError, match="no values for k"):
        tables.sql_in("k", [])


def test_run_ids_sort_by_start_and_differ_within_one_instant():
    now = dt.datetime(2026, 11, 30, 8, 0, 0, 123456, tzinfo=dt.UTC)
    first, second = tables.new_run_id(now), tables.new_run_id(now)
    assert first.startswith("20261130T080000123456Z-")
    assert first != second
    assert tables.new_run_id(now + dt.timedelta(microseconds=1)) > max(first, second)


def test_change_feed_gives_rows_inserted_after_a_version(spark_session, ref):
    change_feed = {"delta.enableChangeDataFeed": "true"}
    tables.ensure(spark_session, ref, frame(spark_session, []).schema, properties=change_feed)
    tables.append(frame(spark_session, [("a", 1)]), ref)
    tables.append(frame(spark_session, [("b", 2)]), ref)
    inserted = tables.inserted_since(spark_session, ref, 1, tables.current_version(ref))
    assert [r["k"] for r in inserted.collect()] == ["b"]


def test_tables_are_readable_by_delta_rs(spark_session, ref):
    tables.ensure(spark_session, ref, frame(spark_session, []).schema, partition_by=["day"],
                  properties={"delta.enableChangeDataFeed": "true"})
    tables.append(frame(spark_session, [("a", 1), ("b", 2)]), ref)
    table = deltalake.DeltaTable(ref.uri.removeprefix("file:"))
    assert sorted(table.to_pyarrow_table().column("k").to_pylist()) == ["a", "b"]


@pytest.mark.parametrize("folder", ["my lake \u00e9", "100% sure & 'quoted' `x`"])
def test_tables_in_a_folder_named_with_spaces_and_signs_are_read_without_spark(spark_session, tmp_path, folder):
    # delta-rs spells the table's own path percent-encoded in its file URIs; the log's paths decode once
    # to the files' names, partition folders included ("c%d" is in the folder "k=c%25d").
    spark_made = TableRef("test.table", f"file:{tmp_path / folder / 't'}")
    spark_session.createDataFrame([("a b", 1), ("c%d", 2), ("\u00e9#", 3)], "k string, v long") \
        .write.format("delta").partitionBy("k").save(spark_made.uri)
    assert sorted(tuple(r.values()) for r in native.read_table(spark_made.uri).to_pylist()) == [
        ("a b", 1), ("c%d", 2), ("\u00e9#", 3)]
    assert native.read_table(spark_made.uri, partition=("k", "c%d")).column("v").to_pylist() == [2]
    small = TableRef("test.small", f"file:{tmp_path / folder / 'small'}")
    schema = StructType([StructField("k", StringType(), False)])
    tables.append_small(small, [("x",)], schema)
    tables.append_small(small, [("y",)], schema)
    assert sorted(r["k"] for r in tables.read_small(small, ["k"])) == ["x", "y"]
    assert sorted(r.k for r in tables.read(spark_session, small).collect()) == ["x", "y"]
    tables.allow_nulls(spark_session, small, "k")  # in Spark SQL, the path quoted
    assert native.not_null_columns(small.uri) == set()


def test_lake_builds_every_path_from_the_root():
    lake = Lake("s3a://palindrom-data-dev")
    assert lake.table("silver.events").uri == "s3a://palindrom-data-dev/silver/events"
    assert lake.landing("events") == "s3a://palindrom-data-dev/landing/events"
    with pytest.raises(KeyError, match=r"unknown table 'silver\.nope'"):
        lake.table("silver.nope")


def test_batch_ids_from_file_statistics_or_by_a_scan(spark_session, ref):
    def batches(ids):
        return spark_session.createDataFrame([(i, "x") for i in ids], "batch_id string, v string")

    assert tables.batch_ids(spark_session, ref) == set()
    tables.ensure(spark_session, ref, batches([]).schema)
    assert tables.batch_ids(spark_session, ref) == set()
    tables.append(batches(["b1", "b1"]), ref)
    tables.append(batches(["b2"]), ref)
    statistics = native.file_statistics(ref.uri)
    assert statistics.column("min.batch_id").to_pylist() == statistics.column("max.batch_id").to_pylist()
    assert tables.batch_ids(spark_session, ref) == {"b1", "b2"}
    assert tables.rows_per_value(spark_session, ref, "batch_id", ["b1", "b9"]) == {"b1": 2}
    # A file of two ids (not a bronze commit): its statistics no longer name them, so the column is
    # read; a count of values outside its range still comes from the statistics.
    tables.append(batches(["b3", "b4"]).coalesce(1), ref)
    assert tables.logged_rows_per_value(ref, "batch_id") is None  # the log cannot tell
    assert tables.logged_rows_per_value(ref, "batch_id", ["b1"]) == {"b1": 2}
    assert tables.batch_ids(spark_session, ref) == {"b1", "b2", "b3", "b4"}
    assert tables.rows_per_value(spark_session, ref, "batch_id") == {"b1": 2, "b2": 1, "b3": 1, "b4": 1}
    assert spark_jobs(lambda: tables.rows_per_value(spark_session, ref, "batch_id", ["b4"])) == ({"b4": 1}, True)
    assert spark_jobs(lambda: tables.rows_per_value(spark_session, ref, "batch_id", ["b2"])) == ({"b2": 1}, False)
    assert spark_jobs(lambda: tables.values_without_rows(spark_session, ref, "batch_id", ["b9", "b2", "b0"])) == (
        ["b0", "b9"], False)
    assert tables.values_without_rows(spark_session, ref, "batch_id", ["b4", "b5"]) == ["b5"]  # by a scan
    assert tables.values_without_rows(spark_session, ref, "batch_id", []) == []


def test_nulls_only_from_the_log_of_the_files_that_may_hold_the_wanted_rows(spark_session, ref):
    def rows(values):
        return spark_session.createDataFrame(values, "batch_id string, blob string")

    assert tables.logged_nulls_only(ref, "blob")  # no table: no row holds one
    tables.append(rows([("b1", None), ("b1", None)]), ref)
    tables.append(rows([("b2", "x"), ("b2", None)]).coalesce(1), ref)
    tables.append(rows([("b3", None)]), ref)
    assert not tables.logged_nulls_only(ref, "blob")
    assert tables.logged_nulls_only(ref, "blob", ("batch_id", ["b1", "b3", "b9"]))
    assert not tables.logged_nulls_only(ref, "blob", ("batch_id", ["b3", "b2"]))
    # A file of two batches, one with a value: it may hold either batch's rows.
    tables.append(rows([("b4", "y"), ("b6", None)]).coalesce(1), ref)
    assert not tables.logged_nulls_only(ref, "blob", ("batch_id", ["b5"]))
    assert tables.logged_nulls_only(ref, "blob", ("batch_id", ["b7"]))
    # Without statistics on the column the log cannot tell.
    other = TableRef("test.unlogged", ref.uri + "-unlogged")
    tables.ensure(spark_session, other, rows([]).schema, properties={"delta.dataSkippingNumIndexedCols": "1"})
    tables.append(rows([("b1", None)]), other)
    assert not tables.logged_nulls_only(other, "blob")


def test_distinct_combinations_from_partitions_and_statistics_or_by_a_scan(spark_session, ref):
    assert tables.distinct_combinations(spark_session, ref, ("day", "k")) == set()  # no table
    tables.ensure(spark_session, ref, frame(spark_session, []).schema, partition_by=["day"])
    tables.append(frame(spark_session, [("a", 1), ("a", 2)]).coalesce(1), ref)
    tables.append(frame(spark_session, [("b", 3)]), ref)
    day = dt.date(2026, 11, 26)
    assert spark_jobs(lambda: tables.distinct_combinations(spark_session, ref, ("day", "k"))) == (
        {(day, "a"), (day, "b")}, False)
    # A file of two values of k: its statistics no longer name one, so the columns are read.
    tables.append(frame(spark_session, [("c", 4), ("d", 5)]).coalesce(1), ref)
    assert tables.logged_distinct_combinations(ref, ("day", "k")) is None
    assert tables.logged_distinct_combinations(ref, ("day",)) == {(day,)}
    assert spark_jobs(lambda: tables.distinct_combinations(spark_session, ref, ("day", "k"))) == (
        {(day, "a"), (day, "b"), (day, "c"), (day, "d")}, True)


def test_the_table_id_is_the_one_delta_spark_reports(spark_session, ref):
    with pytest.raises(tables.TableNotFound, match=r"test\.table does not exist"):
        tables.table_id(ref)
    tables.ensure(spark_session, ref, frame(spark_session, []).schema)
    assert tables.table_id(ref) == DeltaTable.forPath(spark_session, ref.uri).detail().first()["id"]


def test_distinct_values_are_read_without_a_spark_job(spark_session, ref):
    assert tables.distinct_values(ref, "k") == set()  # no table
    tables.ensure(spark_session, ref, frame(spark_session, []).schema, partition_by=["day"])
    assert tables.distinct_values(ref, "k") == set()
    tables.append(frame(spark_session, [("a", 1), ("b", 2)]), ref)
    tables.append(frame(spark_session, [("a", 3)]), ref)
    assert spark_jobs(lambda: tables.distinct_values(ref, "k")) == ({"a", "b"}, False)


def test_the_logged_row_count_is_the_tables_or_none_where_the_log_cannot_tell(spark_session, ref, tmp_path):
    assert native.logged_row_count(ref.uri) is None  # no table
    tables.ensure(spark_session, ref, frame(spark_session, []).schema)
    assert native.logged_row_count(ref.uri) == 0
    tables.append(frame(spark_session, [("a", 1), ("b", 2)]), ref)
    tables.append(frame(spark_session, [("c", 3)]), ref)
    assert native.logged_row_count(ref.uri) == 3
    spark_session.conf.set("spark.databricks.delta.stats.collect", "false")
    try:  # a file written without statistics: its record count is unknown
        tables.append(frame(spark_session, [("d", 4)]), ref)
    finally:
        spark_session.conf.unset("spark.databricks.delta.stats.collect")
    assert native.logged_row_count(ref.uri) is None
    # With deletion vectors a file's record count still holds the rows deleted from it.
    deleted_from = f"file:{tmp_path / 'dv'}"
    spark_session.sql(f"CREATE TABLE delta.`{deleted_from}` (id BIGINT) USING delta "
                      "TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')")
    spark_session.range(10).write.format("delta").mode("append").save(deleted_from)
    spark_session.sql(f"DELETE FROM delta.`{deleted_from}` WHERE id = 3")
    assert spark_session.read.format("delta").load(deleted_from).count() == 9
    assert native.logged_row_count(deleted_from) is None


def test_consume_inserted_reads_the_whole_table_once_the_change_feed_is_gone(spark_session, ref):
    def keys(rows):
        return sorted(r["k"] for r in rows.collect())

    change_feed = {"delta.enableChangeDataFeed": "true"}
    tables.ensure(spark_session, ref, frame(spark_session, []).schema, properties=change_feed)
    for k in ("a", "b", "c"):  # versions 1, 2, 3
        tables.append(frame(spark_session, [(k, 1)]), ref)
    assert tables.consume_inserted(spark_session, ref, 1, 3, keys) == ["b", "c"]
    assert tables.consume_inserted(spark_session, ref, None, 3, keys) == ["a", "b", "c"]
    compact_and_vacuum(spark_session, ref.uri)  # the files versions 2 and 3 added are gone
    with pytest.raises(Py4JJavaError, match="FILE_NOT_EXIST"):
        keys(tables.inserted_since(spark_session, ref, 1, 4))
    assert tables.consume_inserted(spark_session, ref, 1, 4, keys) == ["a", "b", "c"]
    with pytest.raises(ZeroDivisionError):  # any other failure is the consumer's own
        tables.consume_inserted(spark_session, ref, 1, 4, lambda rows: 1 / 0)
