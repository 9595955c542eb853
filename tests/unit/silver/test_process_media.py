import json

import deltalake
import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from palindrom import quality
from palindrom.config import ModelConfig
from palindrom.lake import tables
from palindrom.lake.paths import Lake, native_uri
from palindrom.media import embedders
from pipelines.bronze import ingest_events, ingest_media
from pipelines.sample_media import audio_bytes, image_bytes
from pipelines.silver import clean_events, process_media
from tests.conftest import compact_and_vacuum, lake_path, remove_data_files, spark_jobs
from tests.unit.bronze.test_ingest_media import write


def table(spark, config, name):
    return tables.read(spark, Lake(config.storage_root).table(name))


def embed_media(spark, config, lake) -> process_media.ProcessResult:
    result = process_media.ProcessResult()
    process_media.embed_media(spark, config, lake, result)
    return result


def test_merged_paths_adds_only_new_paths(spark_session):
    known = spark_session.createDataFrame([("image", "s1", ["a.png"]), ("image", "s2", ["b.png"])],
                                          "media_type string, sha256 string, paths array<string>")
    new = spark_session.createDataFrame([("image", "s1", "0.png"), ("image", "s2", "b.png"), ("image", "s3", "c.png"),
                                         ("audio", "s2", "b.wav")], "media_type string, sha256 string, path string")
    rows = process_media.merged_paths(new, known).collect()
    assert [(r["sha256"], r["path"], r["paths"]) for r in rows] == [("s1", "0.png", ["0.png", "a.png"])]


def test_unaccounted_rows_fail_the_conservation_check(spark_session):
    new = spark_session.createDataFrame([("image", "a.png", "s1"), ("image", "b.png", "s2"), ("image", "c.png", "s3"),
                                         ("audio", "a.png", "s1")], "media_type string, path string, sha256 string")
    metadata = spark_session.createDataFrame([("image", "s1", ["a.png"])],
                                             "media_type string, sha256 string, paths array<string>")
    quarantine = spark_session.createDataFrame([("image", "b.png", "s2")],
                                               "media_type string, path string, sha256 string")
    lost = process_media.unaccounted(new, metadata, quarantine)
    result = quality.media_conserved(lost)
    assert not result.passed
    assert "image:c.png" in result.detail
    assert "audio:a.png" in result.detail  # the same path and bytes under another media type is another row
    with pytest.raises(quality.DataQualityError, match="2 bronze rows unaccounted"):
        quality.enforce([result])


def test_process_media_incrementally(spark_session, lake_config, tiny_clip):
    sunset = image_bytes(seed=1)
    write(lake_config, "images", {"sunset.png": sunset, "broken.jpg": b"\xff\xd8\xff\xe0 truncated"})
    write(lake_config, "audio", {"tone.wav": audio_bytes(1.0)})
    assert process_media.up_to_date(lake_config)  # no bronze, no metadata, no silver events: nothing
    ingest_media.run(spark_session, lake_config)
    assert process_media.up_to_date(lake_config) is None  # new bronze batches
    first = process_media.run(spark_session, lake_config)
    assert process_media.up_to_date(lake_config)
    assert first.to_metadata == {"image": 1, "audio": 1}
    assert first.to_quarantine == {"image": 1, "audio": 0}
    assert first.embedded == {"image": 1, "audio": 1, "video": 0}

    quarantine = table(spark_session, lake_config, "silver.quarantine.media").collect()
    assert [(r["path"], r["reason"]) for r in quarantine] == [("broken.jpg", "corrupt")]

    # A second batch: the same bytes under a new path, and a new image.
    write(lake_config, "images", {"again/sunset.png": sunset, "new.png": image_bytes(seed=2)})
    ingest_media.run(spark_session, lake_config)
    second = process_media.run(spark_session, lake_config)
    assert second.to_metadata == {"image": 2}
    assert second.embedded["image"] == 1
    images = {r["path"]: r for r in table(spark_session, lake_config, "silver.media_metadata")
              .filter(F.col("media_type") == "image").collect()}
    assert images["again/sunset.png"]["paths"] == ["again/sunset.png", "sunset.png"]
    assert set(images) == {"again/sunset.png", "new.png"}

    # Nothing new: every media type is skipped from its progress record, without a Spark query.
    # (That a rerun moves no table is checked end to end in tests/integration.)
    lake = Lake(lake_config.storage_root)
    skipped, ran_a_job = spark_jobs(lambda: embed_media(spark_session, lake_config, lake))
    assert (skipped.embedded, ran_a_job) == ({"image": 0, "audio": 0, "video": 0}, False)
    progress = table(spark_session, lake_config, "silver.media_embeddings_progress")
    assert sorted((r["media_type"], r["metadata_version"], r["embedded"]) for r in progress.collect()) == [
        ("audio", 1, 1), ("audio", 3, 0), ("image", 1, 1), ("image", 3, 1), ("video", 1, 0), ("video", 3, 0)]

    # A new image model adds rows beside the old ones, which stay; the other types are still skipped.
    clip = lake_config.embeddings.model_copy(update={"image": ModelConfig(kind="clip", model=str(tiny_clip))})
    with_clip = lake_config.model_copy(update={"embeddings": clip})
    assert process_media.up_to_date(with_clip) is None
    third = embed_media(spark_session, with_clip, lake)
    assert process_media.up_to_date(with_clip)
    assert third.embedded == {"image": 2, "audio": 0, "video": 0}
    by_model = {(r["model_name"], r["model_revision"]): r["count"] for r in
                table(spark_session, lake_config, "silver.media_embeddings").filter("modality = 'image'")
                .groupBy("model_name", "model_revision").count().collect()}
    signal = embedders.SignalImageEmbedder
    assert by_model == {(signal.model_name, signal.model_revision): 2,
                        embedders.identity("image", embedders.ModelSpec("clip", str(tiny_clip))): 2}


def test_the_quarantine_is_read_only_for_the_batches_a_run_processes(spark_session, lake_config):
    """A path enters bronze once, so a run's quarantine append and checks skip the files of other batches
    by their statistics on bronze_batch_id. Shown by removing the first run's quarantine files before
    the second run: a look-up or check that read them would fail."""
    lake = Lake(lake_config.storage_root)
    quarantine = lake.table("silver.quarantine.media")
    for run in (1, 2):
        if run == 2:
            remove_data_files(quarantine.uri)
        write(lake_config, "images", {f"broken-{run}.jpg": b"\xff\xd8\xff\xe0 truncated " + bytes([run])})
        ingest_media.run(spark_session, lake_config)
        result = process_media.ProcessResult()
        process_media.process_features(spark_session, lake_config, lake, result)
        assert result.to_quarantine == {"image": 1}
    history = DeltaTable.forPath(spark_session, quarantine.uri).history().collect()
    assert [c["operationMetrics"]["numOutputRows"] for c in history if c["operation"] == "WRITE"] == ["1", "1"]


def test_a_rerun_after_a_crash_before_the_batch_record_writes_no_quarantine_row_again(spark_session, lake_config):
    """A run that dies after its quarantine commit, before its batch record, is run again (with a batch
    that arrived in between): quarantine gets the new batch's rows alone, and the record ends as it
    would have."""
    lake = Lake(lake_config.storage_root)
    quarantine, record = lake.table("silver.quarantine.media"), lake.table("silver.media_batches")

    def process() -> process_media.ProcessResult:
        result = process_media.ProcessResult()
        process_media.process_features(spark_session, lake_config, lake, result)
        return result

    write(lake_config, "images", {"broken.jpg": b"\xff\xd8\xff\xe0 truncated", "ok.png": image_bytes(seed=1)})
    write(lake_config, "audio", {"broken.wav": b"RIFF....WAVE"})
    ingest_media.run(spark_session, lake_config)
    first = process()
    assert first.to_quarantine == {"image": 1, "audio": 1}
    rows_before = sorted(r["path"] for r in tables.read_small(quarantine, ["path"]))
    deltalake.DeltaTable(native_uri(record.uri)).delete()  # as if the run had died before its record
    version = tables.current_version(quarantine)

    write(lake_config, "images", {"broken-2.jpg": b"\xff\xd8\xff\xe0 truncated 2"})
    ingest_media.run(spark_session, lake_config)
    rerun = process()
    assert tables.current_version(quarantine) == version + 1
    assert sorted(r["path"] for r in tables.read_small(quarantine, ["path"])) == sorted([*rows_before, "broken-2.jpg"])
    assert rerun.to_quarantine == {"image": 2, "audio": 1}
    assert rerun.to_metadata == {"image": 1, "audio": 0}
    assert sorted((r["media_type"], r["rows"], r["to_quarantine"]) for r in tables.read_small(
        record, ["media_type", "rows", "to_quarantine"])) == [("audio", 1, 1), ("image", 1, 1), ("image", 2, 1)]


def test_blobs_are_looked_for_only_where_bronzes_log_shows_any(spark_session, lake_config):
    """Objects over the inline limit are read from their blobs; `blob_uri` is dropped before the
    processors (which would otherwise run a Spark job to find the blobs) only where the log shows it
    null in every row that may be read."""
    config = lake_config.model_copy(update={"media": lake_config.media.model_copy(update={"inline_max_bytes": 5000})})
    write(config, "images", {"big.png": image_bytes((400, 400), seed=3)})
    ingest_media.run(spark_session, config)
    write(config, "images", {"small.png": image_bytes(seed=1)})
    ingest_media.run(spark_session, config)
    ref = Lake(config.storage_root).table("bronze.images")
    with_blob, without = sorted(tables.batch_ids(spark_session, ref))
    bronze = tables.read(spark_session, ref)
    assert "blob_uri" in process_media.without_absent_blobs(bronze, ref).columns
    assert "blob_uri" in process_media.without_absent_blobs(bronze, ref, ("batch_id", [with_blob])).columns
    assert "blob_uri" not in process_media.without_absent_blobs(bronze, ref, ("batch_id", [without])).columns

    result = process_media.run(spark_session, config)
    assert (result.to_metadata, result.to_quarantine, result.embedded["image"]) == ({"image": 2}, {"image": 0}, 2)
    sizes = {r["path"]: (r["width"], r["height"]) for r in table(spark_session, config, "silver.media_metadata")
             .collect()}
    assert sizes["big.png"] == (400, 400)  # decoded from its blob


def message(event_id: str, text: str) -> str:
    return json.dumps({"event_id": event_id, "event_type": "conversation.message", "schema_version": 1,
                       "occurred_at": "2026-11-26T10:00:00Z", "user_id": "u",
                       "payload": {"conversation_id": "c", "turn": 0, "role": "user", "text": text}})


def test_texts_are_looked_for_only_in_events_new_since_the_last_run(spark_session, lake_config, repo_registry):
    landing, lake = lake_path(lake_config) / "landing" / "events", Lake(lake_config.storage_root)
    landing.mkdir(parents=True)

    def embed_texts() -> process_media.ProcessResult:
        result = process_media.ProcessResult()
        process_media.embed_texts(spark_session, lake_config, lake, result)
        return result

    def clean_a_day(name: str, *lines: str) -> None:
        (landing / name).write_text("\n".join(lines) + "\n")
        ingest_events.run(spark_session, lake_config)
        clean_events.run(spark_session, lake_config, registry=repo_registry)

    clean_a_day("d1.jsonl", message("a", "hello"), message("b", "world"))
    assert process_media.up_to_date(lake_config) is None  # texts to embed
    first = embed_texts()
    assert (first.texts_read, first.embedded["text"]) == (2, 2)
    assert process_media.up_to_date(lake_config)
    clean_a_day("d2.jsonl", message("c", " hello"), message("d", "new"))  # " hello": "hello" once stripped
    assert process_media.up_to_date(lake_config) is None
    second = embed_texts()
    assert (second.texts_read, second.embedded["text"]) == (2, 1)  # day 2's events only
    again = embed_texts()  # silver unchanged: nothing read, nothing committed
    assert (again.texts_read, again.embedded["text"]) == (0, 0)
    # Silver's change feed since then gone (its files compacted, then vacuumed): every event is read,
    # and only the new text embedded.
    clean_a_day("d3.jsonl", message("e", "world"), message("f", "third"))
    compact_and_vacuum(spark_session, lake.table("silver.events").uri)
    third = embed_texts()
    assert (third.texts_read, third.embedded["text"]) == (4, 1)  # hello, world, new, third
    assert table(spark_session, lake_config, "silver.media_embeddings").count() == 4
    progress = table(spark_session, lake_config, "silver.text_embeddings_progress").orderBy("silver_version")
    assert [(r["texts_read"], r["embedded"]) for r in progress.collect()] == [(2, 2), (2, 1), (4, 1)]
