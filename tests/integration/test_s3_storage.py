"""The events and media paths on an s3a:// storage root, against a real S3 API server (s3proxy).

The daily_ingestion and media_processing jobs' tasks run twice each (the reruns must commit nothing)
in one fresh process started the way a task starts (`get_spark` with the s3a:// root: S3A on the
classpath, configured from the AWS environment variables), all in that one process (`pipelines run`
would start a JVM per task: minutes more; it is tested on local roots). The tables are then read back
through delta-rs and pyarrow, as the Spark-free commands and training boxes read them.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections import Counter

import pyarrow.compute as pc
import pyarrow.fs as pafs
import pytest
from deltalake import DeltaTable

from palindrom.config import REPO_ROOT
from palindrom.lake import objects
from palindrom.lake.native import read_table
from palindrom.lake.paths import Lake, native_uri
from pipelines.sample_data import SampleSummary, write_sample_data
from pipelines.sample_media import LANDING_FOLDERS, SampleMedia, write_sample_media

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.xdist_group("s3")]  # one run of the jobs

INLINE_MAX_BYTES = 20_000  # lowered so that some sample media are copied to bronze/blobs on S3

BOTH_JOBS_TWICE_IN_ONE_PROCESS = f"""
import sys
from palindrom.config import load_config
from palindrom.spark import get_spark
from tests.conftest import run_job_here
config = load_config("local", sys.argv[1])
media = config.media.model_copy(update={{"inline_max_bytes": {INLINE_MAX_BYTES}}})
config = config.model_copy(update={{"media": media}})
spark = get_spark(config.spark, "s3-test", storage_root=config.storage_root)
for job in ("daily_ingestion", "daily_ingestion", "media_processing", "media_processing"):
    run_job_here(spark, job, config)  # each rerun finds every file recorded and every batch processed
"""


def upload(local_folder, uri: str) -> None:
    """Copy a local folder to S3 as an upstream writer would (each object appears whole)."""
    s3, prefix = pafs.FileSystem.from_uri(native_uri(uri))
    pafs.copy_files(str(local_folder), prefix, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=s3)


def use_server(server, monkeypatch) -> None:
    """This process reaches the server as the jobs do: through the AWS variables (pyarrow, delta-rs)."""
    for name, value in server.env.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def s3_lake(s3_server, tmp_path_factory) -> tuple[Lake, SampleSummary, list[SampleMedia]]:
    """Sample events and media uploaded to a fresh bucket, both jobs run twice over them."""
    landing = tmp_path_factory.mktemp("s3-landing")
    events = write_sample_data(landing / "events", dt.date(2026, 11, 26), users=150)
    media = write_sample_media(landing)
    lake = Lake(f"s3a://{s3_server.new_bucket()}/lake")
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_server(s3_server, monkeypatch)
        upload(landing / "events", lake.landing("events"))
        for folder in LANDING_FOLDERS.values():
            upload(landing / folder, lake.landing(folder))
        job = subprocess.run([sys.executable, "-c", BOTH_JOBS_TWICE_IN_ONE_PROCESS, lake.root], cwd=REPO_ROOT,
                             capture_output=True, text=True)
    assert job.returncode == 0, job.stderr[-4000:]
    return lake, events, media


def versions(lake: Lake, *names: str) -> dict[str, int]:
    return {name: DeltaTable(native_uri(lake.table(name).uri)).version() for name in names}


def test_daily_ingestion_on_an_s3_root_accounts_for_every_line(s3_lake, s3_server, monkeypatch):
    lake, sample, _ = s3_lake
    use_server(s3_server, monkeypatch)
    bronze, silver, quarantine, batches, daily = (
        read_table(lake.table(name).uri) for name in
        ("bronze.events", "silver.events", "silver.quarantine.events", "silver.events_batches", "gold.events_daily"))
    assert bronze.num_rows == sample.lines
    identical = pc.sum(batches["identical_duplicates"]).as_py()
    assert silver.num_rows + quarantine.num_rows + identical == sample.lines
    assert 0 < quarantine.num_rows < sample.lines  # the sample's dirt went both ways
    assert identical > 0
    assert pc.sum(daily["event_count"]).as_py() == silver.num_rows
    assert set(pc.unique(bronze["source_file"]).to_pylist()) == set(sample.files)
    # Created, then one commit each: the rerun committed nothing.
    assert versions(lake, "bronze.events", "bronze.events_files", "silver.events_batches") == {
        "bronze.events": 1, "bronze.events_files": 1, "silver.events_batches": 1}


def test_media_processing_on_an_s3_root_accounts_for_every_file(s3_lake, s3_server, monkeypatch):
    lake, _, media = s3_lake
    use_server(s3_server, monkeypatch)
    bronze = {t: read_table(lake.table(f"bronze.{folder}").uri) for t, folder in LANDING_FOLDERS.items()}
    assert {t: table.num_rows for t, table in bronze.items()} == Counter(m.media_type for m in media)
    # The objects over the inline limit were copied to bronze/blobs/<sha256>, whole.
    for table in bronze.values():
        for row in table.filter(pc.is_valid(table["blob_uri"])).to_pylist():
            assert row["size_bytes"] > INLINE_MAX_BYTES
            assert row["content"] is None
            assert len(objects.read_bytes(row["blob_uri"])) == row["size_bytes"]
    assert any(pc.any(pc.is_valid(t["blob_uri"])).as_py() for t in bronze.values())

    metadata = read_table(lake.table("silver.media_metadata").uri).to_pylist()
    quarantine = read_table(lake.table("silver.quarantine.media").uri).to_pylist()
    placed = [(m["media_type"], path, None) for m in metadata for path in m["paths"]]
    placed += [(q["media_type"], q["path"], q["reason"]) for q in quarantine]
    assert sorted(placed) == sorted((m.media_type, m.path, m.reason) for m in media)

    embeddings = read_table(lake.table("silver.media_embeddings").uri)
    by_modality = Counter(embeddings["modality"].to_pylist())
    assert {t: by_modality[t] for t in bronze} == Counter(m["media_type"] for m in metadata)
    assert by_modality["text"] > 0  # the texts of the events cleaned just before
    # Created, then one commit each (embeddings: media, then texts): the rerun committed nothing.
    assert versions(lake, "bronze.images", "silver.media_batches", "silver.media_embeddings") == {
        "bronze.images": 1, "silver.media_batches": 1, "silver.media_embeddings": 2}


def test_small_files_round_trip_through_s3(s3_server, monkeypatch):
    use_server(s3_server, monkeypatch)
    folder = f"s3a://{s3_server.new_bucket()}/gold/training_datasets/_files/chat/1"
    objects.write_bytes(f"{folder}/card.md", b"# Dataset card\n")
    assert objects.read_bytes(f"{folder}/card.md") == b"# Dataset card\n"
    objects.delete_folder(folder)
    with pytest.raises(FileNotFoundError, match=r"card\.md: no such file"):
        objects.read_bytes(f"{folder}/card.md")
