import gzip

import pytest

from palindrom.config import load_config
from palindrom.lake import tables
from palindrom.lake.paths import Lake
from pipelines.bronze import ingest_events
from tests.conftest import lake_path


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


def test_each_file_is_ingested_exactly_once_with_raw_bytes_and_line_numbers(spark_session, lake_config):
    folder = landing(lake_config)
    (folder / "a.jsonl").write_bytes(b'\xef\xbb\xbf{"x":1}\r\n\n\xff\xfe\n')
    (folder / "sub").mkdir()
    (folder / "sub" / "b.jsonl.gz").write_bytes(gzip.compress(b'{"y":2}\n  \n{"z":3}'))
    (folder / "blank.jsonl").write_bytes(b"\n \n")
    (folder / ".in-flight.tmp").write_bytes(b'{"not":"yet"}\n')

    result = ingest_events.run(spark_session, lake_config)
    assert (result.files, result.lines) == (3, 4)
    assert bronze_rows(spark_session, lake_config) == [
        ("a.jsonl", 1, b'{"x":1}', '{"x":1}'),
        ("a.jsonl", 3, b"\xff\xfe", None),
        ("sub/b.jsonl.gz", 1, b'{"y":2}', '{"y":2}'),
        ("sub/b.jsonl.gz", 3, b'{"z":3}', '{"z":3}'),
    ]
    bronze = Lake(lake_config.storage_root).table("bronze.events")
    version = tables.current_version(spark_session, bronze)

    again = ingest_events.run(spark_session, lake_config)  # nothing new: nothing committed
    assert (again.files, again.lines) == (0, 0)
    assert tables.current_version(spark_session, bronze) == version

    (folder / "c.jsonl").write_bytes(b'{"w":4}\n')
    later = ingest_events.run(spark_session, lake_config)
    assert (later.files, later.lines) == (1, 1)
    assert later.batch_id > result.batch_id  # batches sort in the order they ran


def test_oversized_and_corrupt_files_are_refused_and_left_in_landing(spark_session, tmp_path):
    config = load_config("local", str(tmp_path / "lake")).model_copy(
        update={"ingest": load_config("local").ingest.model_copy(update={"max_file_bytes": 100})}
    )
    folder = landing(config)
    (folder / "big.jsonl").write_bytes(b'{"a":1}\n' * 20)
    (folder / "broken.jsonl.gz").write_bytes(gzip.compress(b'{"a":1}\n')[:-6])
    (folder / "ok.jsonl").write_bytes(b'{"a":1}\n')

    with pytest.raises(ingest_events.IngestRefused) as refused:
        ingest_events.run(spark_session, config)
    message = str(refused.value)
    assert "big.jsonl: 160 bytes; the limit is 100" in message
    assert "broken.jsonl.gz: truncated gzip stream" in message
    assert [r[0] for r in bronze_rows(spark_session, config)] == ["ok.jsonl"]
    assert (folder / "big.jsonl").exists()
    assert (folder / "broken.jsonl.gz").exists()
