import datetime as dt
import gzip
import os
import random

import pytest
from pyspark.sql.types import StructField, StructType

from palindrom.config import load_config
from palindrom.events.lines import UTF8_BOM
from palindrom.lake import native, tables
from palindrom.lake.files import LandingFile, list_files
from palindrom.lake.paths import Lake
from palindrom.lake.refusals import IngestRefused
from pipelines.bronze import check_landing, ingest_events
from tests.conftest import lake_path
from tests.unit.events.conformance import file_bytes, load_cases
from tests.unit.events.line_rules import Line
from tests.unit.events.line_rules import split_lines as oracle_split


def landing(config):
    folder = lake_path(config) / "landing" / "events"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def bronze_rows(spark, config):
    ref = Lake(config.storage_root).table("bronze.events")
    return sorted(
        (r["source_file"], r["line_number"], bytes(r["raw"]), r["text"])
        for r in tables.read(spark, ref).collect()
    )


def files_recorded(spark, config) -> dict[str, int]:
    ref = Lake(config.storage_root).table("bronze.events_files")
    return {r["source_file"]: r["lines"] for r in tables.read(spark, ref).collect()}


def test_lines_per_file_are_recorded_also_for_batches_of_many_files(spark_session, lake_config, monkeypatch):
    monkeypatch.setattr(ingest_events, "MAX_OBSERVED_FILES", 1)  # counted by reading the batch back
    folder = landing(lake_config)
    (folder / "a.jsonl").write_bytes(b'{"x":1}\n{"x":2}\n')
    (folder / "b.jsonl").write_bytes(b"\n")
    assert ingest_events.run(spark_session, lake_config).lines == 2
    assert files_recorded(spark_session, lake_config) == {"a.jsonl": 2, "b.jsonl": 0}


def test_many_small_files_make_few_bronze_files(spark_session, lake_config):
    folder = landing(lake_config)
    for i in range(300):  # Spark reads about 32 such files a task: about 10 tasks, each a bronze file
        (folder / f"part-{i:03d}.jsonl").write_bytes(b'{"n":%d}\n' % i)
    assert ingest_events.run(spark_session, lake_config).lines == 300
    bronze_files = list((lake_path(lake_config) / "bronze" / "events").glob("*.parquet"))
    assert 1 <= len(bronze_files) <= 2 * spark_session.sparkContext.defaultParallelism
    assert len(bronze_rows(spark_session, lake_config)) == 300


def test_large_files_keep_their_own_write_tasks(spark_session):
    lines = spark_session.range(1000).repartition(10)
    assert ingest_events.in_few_tasks(lines, 1000, cores=2).rdd.getNumPartitions() == 4
    assert ingest_events.in_few_tasks(lines, 10 * ingest_events.WRITE_TASK_BYTES, cores=2).rdd.getNumPartitions() == 10
    assert ingest_events.in_few_tasks(lines, 1000, cores=8).rdd.getNumPartitions() == 10


def test_streamed_files_are_dealt_into_few_groups_of_about_equal_bytes():
    rng = random.Random(3)
    modified = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
    files = [LandingFile(f"f{i:03d}.jsonl.gz", f"file:/landing/f{i:03d}.jsonl.gz", rng.randrange(1, 10_000), modified)
             for i in range(500)]
    big = LandingFile("big.jsonl", "file:/landing/big.jsonl", 10**9, modified)
    groups = ingest_events.task_groups([*files, big], 4)
    assert sorted(f.name for group in groups for f in group) == sorted(f.name for f in [*files, big])
    assert [big] in groups  # a file larger than a group's share has its group to itself
    loads = sorted(sum(f.size for f in group) for group in groups if group != [big])
    assert len(loads) == 3
    assert loads[-1] - loads[0] < 10_000  # within one small file of each other
    assert sorted(map(len, ingest_events.task_groups(files[:2], 4))) == [1, 1]  # fewer files than tasks


def test_many_streamed_files_are_read_by_few_tasks(spark_session, tmp_path):
    folder = tmp_path / "landing"
    folder.mkdir()
    for i in range(40):
        (folder / f"f{i:02d}.jsonl.gz").write_bytes(gzip.compress(b'{"n":%d}\n' % i))
    refusals = spark_session.sparkContext.accumulator([], ingest_events._ListParam())
    lines = ingest_events.streamed_lines(spark_session, str(folder), list_files(str(folder)), 1 << 20, refusals)
    assert lines.rdd.getNumPartitions() == 2 * spark_session.sparkContext.defaultParallelism  # not one a file
    assert sorted((r["source_file"], r["index"], r["line"]) for r in lines.collect()) == sorted(
        line for i in range(40) for line in ((f"f{i:02d}.jsonl.gz", 0, f'{{"n":{i}}}'), (f"f{i:02d}.jsonl.gz", 1, "")))


def test_each_file_is_ingested_exactly_once_with_raw_bytes_and_line_numbers(spark_session, lake_config):
    folder = landing(lake_config)
    (folder / "a.jsonl").write_bytes(b'\xef\xbb\xbf{"x":1}\r\n\n\xff\xfe\n')
    (folder / "sub").mkdir()
    (folder / "sub" / "b.jsonl.gz").write_bytes(gzip.compress(b'{"y":2}\n  \n{"z":3}'))
    (folder / "blank.jsonl").write_bytes(b"\n \n")
    (folder / ".in-flight.tmp").write_bytes(b'{"not":"yet"}\n')

    assert ingest_events.up_to_date(lake_config) is None
    result = ingest_events.run(spark_session, lake_config)
    assert (result.files, result.lines) == (3, 4)
    landing_uri = Lake(lake_config.storage_root).landing("events")
    assert ingest_events.up_to_date(lake_config) == f"no new files in {landing_uri}"
    assert bronze_rows(spark_session, lake_config) == [
        ("a.jsonl", 1, b'{"x":1}', '{"x":1}'),
        ("a.jsonl", 3, b"\xff\xfe", None),
        ("sub/b.jsonl.gz", 1, b'{"y":2}', '{"y":2}'),
        ("sub/b.jsonl.gz", 3, b'{"z":3}', '{"z":3}'),
    ]
    assert files_recorded(spark_session, lake_config) == {"a.jsonl": 2, "sub/b.jsonl.gz": 2, "blank.jsonl": 0}
    bronze = Lake(lake_config.storage_root).table("bronze.events")
    version = tables.current_version(bronze)

    again = ingest_events.run(spark_session, lake_config)  # nothing new: nothing committed
    assert (again.files, again.lines) == (0, 0)
    assert tables.current_version(bronze) == version

    (folder / "C.JSONL.GZ").write_bytes(gzip.compress(b'{"w":4}\n'))  # gzipped: ".gz" in any case
    assert ingest_events.up_to_date(lake_config) is None
    later = ingest_events.run(spark_session, lake_config)
    assert (later.files, later.lines) == (1, 1)
    assert later.batch_id > result.batch_id  # batches sort in the order they ran
    assert ("C.JSONL.GZ", 1, b'{"w":4}', '{"w":4}') in bronze_rows(spark_session, lake_config)


def test_a_run_that_died_before_its_file_record_is_recorded_by_the_next(spark_session, lake_config, monkeypatch):
    """a.jsonl reaches bronze but not the file record; the next run, with or without new files, must
    neither ingest it again nor leave it unrecorded (once later batches are recorded, only the record
    would remember it). Only a run that finds bronze's newest commit unrecorded looks into bronze."""
    folder = landing(lake_config)
    (folder / "a.jsonl").write_bytes(b'{"x":1}\n{"x":2}\n')
    read, read_small = tables.read, tables.read_small

    def record_fails(ref, rows, schema):
        assert ref.name == "bronze.events_files"
        raise RuntimeError("killed before the file record")

    monkeypatch.setattr(tables, "append_small", record_fails)
    with pytest.raises(RuntimeError, match="killed before the file record"):
        ingest_events.run(spark_session, lake_config)
    monkeypatch.undo()
    assert ingest_events.up_to_date(lake_config) is None  # no new file, but the record is behind bronze

    tables_read = []

    def spied_read(spark, ref, version=None):
        tables_read.append(ref.name)
        return read(spark, ref, version)

    def spied_read_small(ref, columns):
        tables_read.append(ref.name)
        return read_small(ref, columns)

    monkeypatch.setattr(tables, "read", spied_read)
    monkeypatch.setattr(tables, "read_small", spied_read_small)
    bronze = Lake(lake_config.storage_root).table("bronze.events")
    bronze_version = tables.current_version(bronze)
    assert ingest_events.run(spark_session, lake_config).files == 0  # nothing new, but a's record repaired
    assert tables_read == ["bronze.events_files", "bronze.events"]
    assert files_recorded(spark_session, lake_config) == {"a.jsonl": 2}
    assert tables.current_version(bronze) == bronze_version
    assert ingest_events.up_to_date(lake_config).startswith("no new files in ")

    (folder / "b.jsonl").write_bytes(b'{"y":1}\n')
    tables_read.clear()
    assert ingest_events.run(spark_session, lake_config).files == 1  # b only
    assert tables_read == ["bronze.events_files"]
    assert files_recorded(spark_session, lake_config) == {"a.jsonl": 2, "b.jsonl": 1}
    assert [r[0] for r in bronze_rows(spark_session, lake_config)] == ["a.jsonl", "a.jsonl", "b.jsonl"]


def test_a_file_gone_from_landing_after_a_run_died_before_its_record_is_recorded_without_a_size(
        spark_session, lake_config, monkeypatch):
    """The record names every file of every batch bronze holds, even one removed from landing between a
    run that died before its record and the next run: else the record would stay behind bronze (every
    later run looking into bronze) and forget the file. A record made before sizes could be null (NOT
    NULL size_bytes) is altered first."""
    folder, record = landing(lake_config), Lake(lake_config.storage_root).table("bronze.events_files")
    (folder / "old.jsonl").write_bytes(b'{"x":0}\n')
    old_schema = StructType([f if f.name != "size_bytes" else StructField(f.name, f.dataType, False)
                             for f in ingest_events.INGESTED_FILES_SCHEMA.fields])
    monkeypatch.setattr(ingest_events, "INGESTED_FILES_SCHEMA", old_schema)
    ingest_events.run(spark_session, lake_config)
    monkeypatch.undo()
    assert "size_bytes" in native.not_null_columns(record.uri)

    (folder / "a.jsonl").write_bytes(b'{"x":1}\n{"x":2}\n')

    def record_fails(ref, rows, schema):
        raise RuntimeError("killed before the file record")

    monkeypatch.setattr(tables, "append_small", record_fails)
    with pytest.raises(RuntimeError, match="killed before the file record"):
        ingest_events.run(spark_session, lake_config)
    monkeypatch.undo()
    (folder / "a.jsonl").unlink()

    assert ingest_events.run(spark_session, lake_config).files == 0
    rows = {r["source_file"]: (r["size_bytes"], r["lines"]) for r in tables.read_small(record, ["source_file",
                                                                                             "size_bytes", "lines"])}
    assert rows == {"old.jsonl": (8, 1), "a.jsonl": (None, 2)}
    assert "size_bytes" not in native.not_null_columns(record.uri)
    assert ingest_events.up_to_date(lake_config).startswith("no new files in ")  # the record caught up with bronze


def with_max_file_bytes(config, limit: int):
    return config.model_copy(update={"ingest": config.ingest.model_copy(update={"max_file_bytes": limit})})


def test_oversized_corrupt_and_unreadably_named_files_are_refused_and_left_in_landing(spark_session, tmp_path):
    config = with_max_file_bytes(load_config("local", str(tmp_path / "lake")), 100)
    folder = landing(config)
    (folder / "big.jsonl").write_bytes(b'{"a":1}\n' * 20)
    (folder / "broken.jsonl.gz").write_bytes(gzip.compress(b'{"a":1}\n')[:-6])
    (folder / "events[1]:10:00.jsonl").write_bytes(b'{"a":1}\n')  # Spark cannot read this path
    (folder / "day.v2").mkdir()
    (folder / "day.v2" / "e.jsonl.ZST").write_bytes(b"\x28\xb5\x2f\xfd")  # zstd: not a landing format
    (folder / "ok.jsonl").write_bytes(b'{"a":1}\n')
    (folder / os.fsdecode(b"caf\xe9.jsonl")).write_bytes(b'{"a":1}\n')  # a Latin-1 name
    refused = ["big.jsonl", "broken.jsonl.gz", "caf\\xe9.jsonl", "day.v2/e.jsonl.ZST", "events[1]:10:00.jsonl"]

    with pytest.raises(IngestRefused) as failed:  # after ingesting the others: the command's default
        ingest_events.run(spark_session, config)
    with pytest.raises(IngestRefused) as still_there:  # the job's task, from the record
        check_landing.run(None, config, "events")
    message = str(still_there.value)
    assert message == str(failed.value)
    assert message.startswith("5 landing files refused by the ingest, left in landing")
    assert f"{config.storage_root}/landing/events/big.jsonl: 160 bytes; the limit is 100" in message
    assert "broken.jsonl.gz: truncated gzip stream" in message
    assert "events[1]:10:00.jsonl: its path holds both ':' and one of" in message
    assert "day.v2/e.jsonl.ZST: compressed with zstd (by its name); landing files are plain or gzipped" in message
    assert "caf\\xe9.jsonl: its path is not valid UTF-8 (shown with \\x escapes)" in message
    assert [r[0] for r in bronze_rows(spark_session, config)] == ["ok.jsonl"]
    assert files_recorded(spark_session, config) == {"ok.jsonl": 1}
    assert sorted(os.listdir(os.fsencode(folder))) == [b"big.jsonl", b"broken.jsonl.gz", b"caf\xe9.jsonl", b"day.v2",
                                                       b"events[1]:10:00.jsonl", b"ok.jsonl"]  # all left in landing

    # Removed from landing, or taken in under a raised limit: no longer named. A refusal for the
    # reason recorded last is not recorded again; as in the job (`--on-refusal record`), the ingest
    # then succeeds.
    (folder / "broken.jsonl.gz").unlink()
    raised = with_max_file_bytes(config, 1000)
    refusal_record = Lake(config.storage_root).table("bronze.events_refusals")
    version = tables.current_version(refusal_record)
    assert ingest_events.run(spark_session, raised, on_refusal="record").refused == [
        "caf\\xe9.jsonl", "day.v2/e.jsonl.ZST", "events[1]:10:00.jsonl"]
    assert tables.current_version(refusal_record) == version
    assert files_recorded(spark_session, config) == {"ok.jsonl": 1, "big.jsonl": 20}
    with pytest.raises(IngestRefused) as still_there:
        check_landing.run(None, config, "events")
    assert str(still_there.value).startswith("3 landing files refused")
    assert "big.jsonl" not in str(still_there.value)
    assert "broken" not in str(still_there.value)
    assert sorted(r["source_file"] for r in tables.read_small(refusal_record, ["source_file"])) == sorted(refused)


FRAGMENTS = [b"\n", b"\r", b"\r\n", UTF8_BOM, b" ", b"\t", "\u3000".encode(), "\x85".encode(), b"\x1c", b"\x0b",
             b'{"a":1}', b"x", "\u00e9".encode(), "\U0001f600".encode(), "\u2028".encode(), b"\xff",
             b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x80", b"\xf5\x80\x80\x80", b"\x00"]


def as_lines(rows) -> dict[str, list[Line]]:
    out: dict[str, list[Line]] = {}
    for r in sorted(rows, key=lambda r: (r["source_file"], r["line_number"])):
        out.setdefault(r["source_file"], []).append(Line(r["line_number"], bytes(r["raw"]), r["text"]))
    return out


def split_whole_in_spark(spark, contents: dict[str, bytes]) -> dict[str, list[Line]]:
    files = spark.createDataFrame([(name, dt.datetime(2026, 11, 26, tzinfo=dt.UTC), bytearray(content))
                                   for name, content in contents.items()],
                                  "source_file string, modificationTime timestamp, content binary")
    lines = ingest_events.whole_file_lines(files)
    return as_lines(ingest_events.bronze_lines(lines, "b1", dt.datetime(2026, 11, 27, tzinfo=dt.UTC)).collect())


def split_streamed_in_spark(spark, contents: dict[str, bytes], folder) -> dict[str, list[Line]]:
    """The same contents as files in `folder`, each also as a .gz (named <name>.gz), streamed."""
    folder.mkdir()
    for name, content in contents.items():
        (folder / name).write_bytes(content)
        (folder / f"{name}.gz").write_bytes(gzip.compress(content, mtime=0))
    listed = list_files(str(folder))
    refusals = spark.sparkContext.accumulator([], ingest_events._ListParam())
    lines = ingest_events.streamed_lines(spark, str(folder), listed, 1 << 20, refusals, piece_bytes=5)
    rows = ingest_events.bronze_lines(lines, "b1", dt.datetime(2026, 11, 27, tzinfo=dt.UTC)).collect()
    assert refusals.value == []
    assert {r["source_modified_at"] for r in rows} <= {f.modified_at.replace(tzinfo=None) for f in listed}
    return as_lines(rows)


def test_the_spark_split_follows_the_line_rules(spark_session, tmp_path):
    """Every file the conformance file holds, the rule examples, and random mixes of the fragments that
    matter (line ends, BOM, Unicode white space, every kind of invalid UTF-8) split exactly as the
    plain-Python rules split them: read whole and split in Spark, and streamed in pieces (plain and
    gzipped; pieces of 5 bytes, so that pieces end inside BOMs, line ends and characters)."""
    rng = random.Random(5)
    contents = {
        "rules": b'\xef\xbb\xbf{"a":1}\r\n\n   \r\n{"b":\xe2\x80\xa8}\rx\n\xff\n{"c":3}',
        "inner_bom": b"a\n\xef\xbb\xbfb",
        "unicode_blank": "\u3000\u2003\t\n".encode(),
        "empty_lines": b"\n\n\r\n",
        **{f"random-{i}": b"".join(rng.choices(FRAGMENTS, k=rng.randint(0, 60))) for i in range(300)},
        **{f"conformance-{case['case']}": file_bytes(case) for case in load_cases()
           if "file_base64" in case},
    }
    expected = {name: list(oracle_split(content)) for name, content in contents.items()}
    assert expected["rules"] == [
        Line(1, b'{"a":1}', '{"a":1}'),
        Line(4, b'{"b":\xe2\x80\xa8}\rx', '{"b":\u2028}\rx'),
        Line(5, b"\xff", None),
        Line(6, b'{"c":3}', '{"c":3}'),
    ]
    assert [line.text for line in expected["inner_bom"]] == ["a", "\ufeffb"]
    assert expected["unicode_blank"] == []
    non_blank = {name: lines for name, lines in expected.items() if lines}
    assert split_whole_in_spark(spark_session, contents) == non_blank
    streamed = split_streamed_in_spark(spark_session, contents, tmp_path / "landing")
    assert streamed == non_blank | {f"{name}.gz": lines for name, lines in non_blank.items()}


def test_a_file_over_the_whole_read_size_is_streamed_like_one_read_whole(spark_session, tmp_path):
    """The same landing files into two lakes: read whole, and (all but the .gz, which is always
    streamed) streamed; bronze and the file record hold the same lines."""
    content = b"\xef\xbb\xbf" + b"".join(b'{"n":%d}\r\n \n' % i for i in range(5000)) + b"\xff\xfe\nlast"
    results = []
    for whole_max in (1 << 30, 1000):
        config = load_config("local", str(tmp_path / f"lake-{whole_max}"))
        config = config.model_copy(update={"ingest": config.ingest.model_copy(
            update={"whole_file_max_bytes": whole_max})})
        folder = landing(config)
        (folder / "big.jsonl").write_bytes(content)
        (folder / "small.jsonl").write_bytes(b'{"a":1}\n')
        (folder / "c.jsonl.gz").write_bytes(gzip.compress(content, mtime=0))
        result = ingest_events.run(spark_session, config)
        results.append((result.lines, bronze_rows(spark_session, config), files_recorded(spark_session, config)))
    assert results[0] == results[1]
    assert results[0][0] == 2 * 5002 + 1
    assert results[0][2] == {"big.jsonl": 5002, "small.jsonl": 1, "c.jsonl.gz": 5002}
