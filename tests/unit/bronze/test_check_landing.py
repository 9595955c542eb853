"""check_landing as the job runs it: its own process, without Spark."""

import datetime as dt
import subprocess

from palindrom.lake import refusals
from palindrom.lake.paths import Lake
from tests.conftest import BIN, lake_path


def test_it_fails_naming_what_waits_and_passes_once_it_is_gone_without_starting_spark(lake_config):
    lake = Lake(lake_config.storage_root)
    landing = lake_path(lake_config) / "landing" / "events"
    landing.mkdir(parents=True)
    (landing / "day.jsonl.bz2").write_bytes(b"BZh9")
    refusals.record(lake.table("bronze.events_refusals"), "run1", dt.datetime.now(dt.UTC),
                    {("events", "day.jsonl.bz2"): "compressed with bzip2 (by its name)"})
    command = [str(BIN / "check_landing"), "--root", lake_config.storage_root]

    def run_command(args):
        return subprocess.run(args, capture_output=True, text=True, check=False)

    failed = run_command(command)
    assert failed.returncode == 1
    assert "IngestRefused: 1 landing file refused by the ingest, left in landing" in failed.stderr
    assert f"{lake.landing('events')}/day.jsonl.bz2: compressed with bzip2 (by its name)" in failed.stderr
    media = run_command([*command, "--ingest", "media"])  # ingest_media refused nothing
    (landing / "day.jsonl.bz2").unlink()
    passed = run_command(command)
    for run in (media, passed):
        assert run.returncode == 0, run.stderr
        assert "refused waits in landing" in run.stderr
    for run in (failed, media, passed):
        assert "SparkContext" not in run.stderr
