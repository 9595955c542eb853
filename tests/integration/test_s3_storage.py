"""The events, media and training paths on an s3a:// storage root, against a real S3 API server
(s3proxy) and a real MLflow tracking server.

The daily_ingestion and media_processing jobs' tasks run twice each (the reruns must commit nothing),
then a build of chat_sft, in one fresh process started the way a task starts (`get_spark` with the
s3a:// root: S3A on the classpath, configured from the AWS environment variables; `pipelines run`
would start a JVM per task: minutes more; it is tested on local roots). The tables, the release and
its files are then read back through delta-rs and pyarrow, as the Spark-free commands and training
boxes read them, and the build's lineage from the tracking server.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import subprocess
import sys
from collections import Counter

import mlflow
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pytest
from deltalake import DeltaTable
from huggingface_hub import DatasetCard
from mlflow import MlflowClient

from palindrom.config import REPO_ROOT, load_config
from palindrom.data import releases
from palindrom.lake import objects
from palindrom.lake.files import list_files
from palindrom.lake.native import read_table
from palindrom.lake.paths import Lake, native_uri
from pipelines.sample_data import SampleSummary, write_sample_data
from pipelines.sample_media import LANDING_FOLDERS, SampleMedia, write_sample_media
from tests.conftest import LAKE_FOLDER

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.xdist_group("s3")]  # one run of the jobs

INLINE_MAX_BYTES = 20_000  # lowered so that some sample media are copied to bronze/blobs on S3

BUILD_DATE = dt.date(2026, 11, 27)  # the day after the sample's

JOBS_AND_A_BUILD_IN_ONE_PROCESS = f"""
import datetime as dt, sys
from palindrom.config import load_config
from palindrom.spark import get_spark
from palindrom.training.spec import load_spec
from pipelines.gold.build_training_data import build
from tests.conftest import run_job_here
config = load_config("local", sys.argv[1])
media = config.media.model_copy(update={{"inline_max_bytes": {INLINE_MAX_BYTES}}})
mlflow = config.mlflow.model_copy(update={{"tracking_uri": sys.argv[2]}})
config = config.model_copy(update={{"media": media, "mlflow": mlflow}})
spark = get_spark(config.spark, "s3-test", storage_root=config.storage_root)
for job in ("daily_ingestion", "daily_ingestion", "media_processing", "media_processing"):
    run_job_here(spark, job, config)  # each rerun finds every file recorded and every batch processed
build(spark, config, load_spec("chat_sft"), dt.date.fromisoformat("{BUILD_DATE}"))
"""


def upload(local_folder, uri: str) -> None:
    """Copy a local folder to S3 as an upstream writer would (each object appears whole)."""
    s3, prefix = objects.filesystem(uri)
    pafs.copy_files(str(local_folder), prefix, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=s3)


def use_server(server, monkeypatch) -> None:
    """This process reaches the server as the jobs do: through the AWS variables (pyarrow, delta-rs)."""
    for name, value in server.env.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def s3_lake(s3_server, mlflow_server, tmp_path_factory) -> tuple[Lake, SampleSummary, list[SampleMedia]]:
    """Sample events and media uploaded to a fresh bucket, both jobs run twice over them, then a build
    of chat_sft tracked by the MLflow server."""
    landing = tmp_path_factory.mktemp("s3-landing")
    events = write_sample_data(landing / "events", dt.date(2026, 11, 26), users=150)
    # One name with colons, as an upstream writer's timestamp gives: S3A must list and read it as itself.
    stamped = events.files[0].replace("/", "/T06:00:00Z-", 1)
    (landing / "events" / events.files[0]).rename(landing / "events" / stamped)
    events = dataclasses.replace(events, files=[stamped, *events.files[1:]])
    media = write_sample_media(landing)
    lake = Lake(f"s3a://{s3_server.new_bucket()}/{LAKE_FOLDER}")
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_server(s3_server, monkeypatch)
        upload(landing / "events", lake.landing("events"))
        for folder in LANDING_FOLDERS.values():
            upload(landing / folder, lake.landing(folder))
        job = subprocess.run([sys.executable, "-c", JOBS_AND_A_BUILD_IN_ONE_PROCESS, lake.root, mlflow_server],
                             cwd=REPO_ROOT, capture_output=True, text=True)
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
    # Bronze created, then appended; the records created by their first append (delta-rs): the rerun
    # committed nothing.
    assert versions(lake, "bronze.events", "bronze.events_files", "silver.events_batches") == {
        "bronze.events": 1, "bronze.events_files": 0, "silver.events_batches": 0}


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
    # Created, then one commit each (embeddings: media, then texts); the records created by their first
    # append (delta-rs): the rerun committed nothing.
    assert versions(lake, "bronze.images", "silver.media_batches", "silver.media_embeddings",
                    "silver.media_embeddings_progress", "silver.text_embeddings_progress") == {
        "bronze.images": 1, "silver.media_batches": 0, "silver.media_embeddings": 2,
        "silver.media_embeddings_progress": 0, "silver.text_embeddings_progress": 0}


def test_a_training_build_on_an_s3_root_is_tracked_by_the_mlflow_server(s3_lake, s3_server, mlflow_server,
                                                                       monkeypatch):
    lake, _, _ = s3_lake
    use_server(s3_server, monkeypatch)
    config = load_config("local", lake.root)
    release = releases.resolve(config, "chat_sft")
    assert release.release == 1
    assert release.manifest.stages[-1].documents_out > 0
    card = DatasetCard(releases.read_file(release, "README.md").decode())
    assert card.data.palindrom["content_digest"] == release.manifest.content_digest

    client = MlflowClient(mlflow_server)
    run = client.get_run(release.manifest.mlflow_run_id)
    assert run.info.status == "FINISHED"
    logged: dict[str, dict[str, int]] = {}  # context (source, release) → Delta table → version
    for dataset_input in run.inputs.dataset_inputs:
        context = next(t.value for t in dataset_input.tags if t.key == "mlflow.data.context")
        source = json.loads(dataset_input.dataset.source)
        logged.setdefault(context, {})[source["path"]] = source["delta_table_version"]
    assert logged == {"source": {i.uri: i.version for i in release.manifest.inputs},
                      "release": {release.table_uri: release.table_version}}
    assert {a.path for a in client.list_artifacts(run.info.run_id, "release")} >= {"release/README.md"}

    # Training code on another box: the release through delta-rs, logged as its run's input.
    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_experiment("trainer")
    with mlflow.start_run() as training:
        train = releases.load_training_dataset("chat_sft", split="train", root=lake.root)
    assert train.num_rows == release.manifest.tokens["train"]["conversations"].rows
    (used,) = client.get_run(training.info.run_id).inputs.dataset_inputs
    assert (used.dataset.name, used.dataset.digest) == ("chat_sft@1", release.manifest.content_digest[:32])


def test_small_files_round_trip_through_s3(s3_server, monkeypatch):
    use_server(s3_server, monkeypatch)
    folder = f"s3a://{s3_server.new_bucket()}/gold/training_datasets/_files/chat/1"
    objects.write_bytes(f"{folder}/card.md", b"# Dataset card\n")
    assert objects.read_bytes(f"{folder}/card.md") == b"# Dataset card\n"
    objects.delete_folder(folder)
    with pytest.raises(FileNotFoundError, match=r"card\.md: no such file"):
        objects.read_bytes(f"{folder}/card.md")


def test_landing_files_on_s3_are_listed_nested_and_zero_byte_ones_included(s3_server, monkeypatch):
    use_server(s3_server, monkeypatch)
    folder = f"s3a://{s3_server.new_bucket()}/lake/landing/events"
    assert list_files(folder) == []  # no such prefix yet
    for name, data in [("2026-11-27/a.jsonl", b"{}\n"), ("empty.jsonl", b""), ("_in_flight/b.jsonl", b"{}\n"),
                       (".c.jsonl", b"{}\n")]:
        objects.write_bytes(f"{folder}/{name}", data)
    assert sorted((f.name, f.uri, f.size) for f in list_files(folder)) == [
        ("2026-11-27/a.jsonl", f"{folder}/2026-11-27/a.jsonl", 3), ("empty.jsonl", f"{folder}/empty.jsonl", 0)]
