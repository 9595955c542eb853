"""media_processing end to end on the sample data (the sample lake, built once per session by the
jobs' tasks in the order databricks.yml gives): every good file described, every broken one quarantined with
its reason, embeddings for every object and text, and a rerun that changes nothing."""

import shutil

import deltalake
import pytest
from pyspark.sql import functions as F

from palindrom.config import load_config
from palindrom.events.columns import payload_column
from palindrom.lake import tables
from palindrom.lake.paths import Lake
from pipelines.bronze import ingest_media
from pipelines.sample_media import SAMPLE_MEDIA
from pipelines.silver import process_media
from tests.conftest import lake_path, run_cli

pytestmark = pytest.mark.integration
MEDIA_TABLES = ("bronze.images", "bronze.audio", "bronze.video", "silver.media_metadata", "silver.quarantine.media",
                "silver.media_embeddings", "silver.media_batches", "silver.media_embeddings_progress",
                "silver.text_embeddings_progress")


def read(spark, config, name):
    return tables.read(spark, Lake(config.storage_root).table(name))


def test_every_sample_file_is_described_or_quarantined(spark_session, sample_lake):
    metadata = read(spark_session, sample_lake, "silver.media_metadata")
    described = {(r["media_type"], p) for r in metadata.collect() for p in r["paths"]}
    quarantined = {(r["media_type"], r["path"]): r["reason"]
                   for r in read(spark_session, sample_lake, "silver.quarantine.media").collect()}
    for item in SAMPLE_MEDIA:
        key = (item.media_type, item.path)
        if item.reason is None:
            assert key in described, key
        else:
            assert quarantined.get(key) == item.reason, key
    assert len(described) + len(quarantined) == len(SAMPLE_MEDIA)  # nothing lost, nothing counted twice


def test_facts_from_the_bytes(spark_session, sample_lake):
    rows = {r["path"]: r for r in read(spark_session, sample_lake, "silver.media_metadata").collect()}
    assert (rows["photos/rotated.jpg"]["width"], rows["photos/rotated.jpg"]["height"]) == (200, 300)
    lying = rows["photos/lying-extension.jpg"]
    assert (lying["mime_type"], lying["extension_mismatch"], lying["format"]) == ("image/png", True, "PNG")
    copy = rows["photos/sunset-copy.png"]
    assert copy["paths"] == ["photos/sunset-copy.png", "photos/sunset.png"]  # one object, two paths
    flac = rows["music/chord-44k.flac"]
    assert (flac["codec"], flac["sample_rate"], flac["channels"], flac["duration_s"]) == ("flac", 44_100, 2, 2.0)
    clip = rows["clips/bounce.mp4"]
    assert (clip["frame_count"], clip["fps"], clip["codec"], len(clip["key_frames"])) == (48, 24.0, "h264", 4)


def test_every_object_and_text_is_embedded(spark_session, sample_lake):
    metadata = read(spark_session, sample_lake, "silver.media_metadata")
    embeddings = read(spark_session, sample_lake, "silver.media_embeddings")
    for media_type in ("image", "audio", "video"):
        objects = {r[0] for r in metadata.filter(F.col("media_type") == media_type).select("sha256").collect()}
        vectors = {r[0] for r in embeddings.filter(F.col("modality") == media_type).select("sha256").collect()}
        assert objects, media_type
        assert objects == vectors, media_type
    events = read(spark_session, sample_lake, "silver.events")
    messages = events.filter("event_type = 'conversation.message'").select(
        F.sha2(f"{payload_column('conversation.message')}.text", 256).alias("sha256")).distinct()
    text_rows = embeddings.filter("modality = 'text'")
    assert messages.join(text_rows, "sha256", "left_anti").count() == 0
    assert text_rows.groupBy("sha256").count().filter("count > 1").count() == 0  # each text once
    assert {r["dim"] for r in text_rows.select("dim").distinct().collect()} == {384}


def test_delta_rs_reads_the_media_tables(sample_lake):
    lake = Lake(sample_lake.storage_root)
    for name in MEDIA_TABLES:
        table = deltalake.DeltaTable(lake.table(name).uri.removeprefix("file:")).to_pyarrow_table()
        assert table.num_rows > 0, name


def test_rerun_commits_nothing_and_quarantine_cli_lists_media(spark_session, sample_lake, tmp_path):
    root = tmp_path / "lake"
    shutil.copytree(lake_path(sample_lake), root)
    config = load_config("local", str(root))
    lake = Lake(config.storage_root)
    before = {ref.name: tables.current_version(ref) for ref in lake.tables()}
    ingest_media.run(spark_session, config)
    process_media.run(spark_session, config)
    assert {ref.name: tables.current_version(ref) for ref in lake.tables()} == before
    listing = run_cli("quarantine", "list", "--media", "--root", str(sample_lake.storage.root)).stdout
    assert "broken/bomb.png  too_large" in listing
