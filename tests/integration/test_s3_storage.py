"""The events path on an s3a:// storage root, against a real S3 API server (s3proxy).

The daily_ingestion job's tasks run twice (the rerun must commit nothing) in a fresh process started
the way a task starts (`get_spark` with the s3a:// root: S3A on the classpath, configured from the
AWS environment variables), all in that one process (`pipelines run` would start three JVMs: over a
minute more; it is tested on local roots). The tables are then read back through delta-rs and
pyarrow, as the Spark-free commands and training boxes read them.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pyarrow.compute as pc
import pyarrow.fs as pafs
import pytest
from deltalake import DeltaTable

from palindrom.config import REPO_ROOT
from palindrom.lake import objects
from palindrom.lake.native import read_table
from palindrom.lake.paths import Lake, native_uri
from pipelines.sample_data import write_sample_data

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAILY_INGESTION_TWICE_IN_ONE_PROCESS = """
import sys
from palindrom.config import load_config
from palindrom.spark import get_spark
from tests.conftest import run_job_here
config = load_config("local", sys.argv[1])
spark = get_spark(config.spark, "s3-test", storage_root=config.storage_root)
for _ in range(2):  # the rerun finds every file in the file record and every batch cleaned
    run_job_here(spark, "daily_ingestion", config)
"""


def upload(local_folder, uri: str) -> None:
    """Copy a local folder to S3 as an upstream writer would (each object appears whole)."""
    s3, prefix = pafs.FileSystem.from_uri(native_uri(uri))
    pafs.copy_files(str(local_folder), prefix, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=s3)


def use_server(server, monkeypatch) -> None:
    """This process reaches the server as the jobs do: through the AWS variables (pyarrow, delta-rs)."""
    for name, value in server.env.items():
        monkeypatch.setenv(name, value)


def test_daily_ingestion_on_an_s3_root_accounts_for_every_line(s3_server, tmp_path, monkeypatch):
    use_server(s3_server, monkeypatch)
    sample = write_sample_data(tmp_path / "events", dt.date(2026, 11, 26), users=150)
    lake = Lake(f"s3a://{s3_server.new_bucket()}/lake")
    upload(tmp_path / "events", lake.landing("events"))

    job = subprocess.run([sys.executable, "-c", DAILY_INGESTION_TWICE_IN_ONE_PROCESS, lake.root], cwd=REPO_ROOT,
                         capture_output=True, text=True)
    assert job.returncode == 0, job.stderr[-4000:]

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
    assert {name: DeltaTable(native_uri(lake.table(name).uri)).version()
            for name in ("bronze.events", "bronze.events_files", "silver.events_batches")} == {
        "bronze.events": 1, "bronze.events_files": 1, "silver.events_batches": 1}


def test_small_files_round_trip_through_s3(s3_server, monkeypatch):
    use_server(s3_server, monkeypatch)
    folder = f"s3a://{s3_server.new_bucket()}/gold/training_datasets/_files/chat/1"
    objects.write_bytes(f"{folder}/card.md", b"# Dataset card\n")
    assert objects.read_bytes(f"{folder}/card.md") == b"# Dataset card\n"
    objects.delete_folder(folder)
    with pytest.raises(FileNotFoundError, match=r"card\.md: no such file"):
        objects.read_bytes(f"{folder}/card.md")
