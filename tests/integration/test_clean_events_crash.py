"""clean_events killed for real between its commits, then run again, ends exactly where an
uninterrupted run ends."""

import datetime as dt
import os
import shutil
import signal
import subprocess
import time

import pytest

from palindrom.config import load_config
from palindrom.lake import tables
from palindrom.lake.paths import Lake
from pipelines.bronze import ingest_events
from pipelines.sample_data import write_sample_data
from pipelines.silver import clean_events
from tests.conftest import BIN, lake_path

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("crash")]  # one shared baseline


def snapshot_of(spark, config):
    """Table contents minus the commit-time stamps (which differ between two runs by design)."""
    lake = Lake(config.storage_root)
    out = {}
    for name, drop in [("silver.events", []), ("silver.quarantine.events", ["quarantined_at"]),
                       ("silver.events_batches", ["cleaned_at"])]:
        rows = tables.read(spark, lake.table(name)).drop(*drop).collect()
        out[name] = sorted(tuple(r) for r in rows)
    return out


def kill_at_failpoint(root: str, failpoint: str, spark_local_dir: str) -> None:
    """Run clean_events until it reaches `failpoint`, then SIGKILL it. A killed JVM cannot delete its
    folders (Spark's work folder with the jars it copies, 13 MB, and its own temporary folder), so
    both are kept under `spark_local_dir`, not in /tmp."""
    process = subprocess.Popen(
        [str(BIN / "clean_events"), "--root", root], stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PIPELINES_FAILPOINTS": failpoint, "SPARK_LOCAL_DIRS": spark_local_dir,
             "JAVA_TOOL_OPTIONS": f"-Djava.io.tmpdir={spark_local_dir}"},
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    try:
        for line in process.stderr:
            if f"FAILPOINT {failpoint} reached" in line:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"clean_events did not reach {failpoint}")
        else:
            pytest.fail(f"clean_events exited ({process.wait()}) before reaching {failpoint}")
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the task and its JVM, as a node loss would
        process.wait()
    assert process.returncode == -signal.SIGKILL


@pytest.fixture(scope="module")
def ingested_and_uninterrupted(spark_session, tmp_path_factory):
    """A lake with one ingested bronze batch (kept as it is) and the result of cleaning a copy of it
    without interruption, shared by the crash cases."""
    base = tmp_path_factory.mktemp("crash")
    ingested = load_config("local", str(base / "ingested"))
    write_sample_data(lake_path(ingested) / "landing" / "events", dt.date(2026, 11, 26), users=150, seed=3)
    ingest_events.run(spark_session, ingested)
    clean = load_config("local", str(base / "clean"))
    shutil.copytree(lake_path(ingested), lake_path(clean))
    return ingested, clean_events.run(spark_session, clean), snapshot_of(spark_session, clean)


@pytest.mark.parametrize("failpoint", ["clean_events.after_quarantine_commit", "clean_events.after_silver_commit"])
def test_killed_between_commits_then_rerun_matches_an_uninterrupted_run(spark_session, tmp_path, failpoint,
                                                                         ingested_and_uninterrupted):
    ingested, uninterrupted, clean_snapshot = ingested_and_uninterrupted
    crashed = load_config("local", str(tmp_path / "crashed"))
    shutil.copytree(lake_path(ingested), lake_path(crashed))  # the same bronze batch

    kill_at_failpoint(str(lake_path(crashed)), failpoint, str(tmp_path))
    lake = Lake(crashed.storage_root)
    assert tables.read(spark_session, lake.table("silver.quarantine.events")).count() > 0
    assert not tables.exists(lake.table("silver.events_batches"))
    silver_written = tables.exists(lake.table("silver.events"))
    assert silver_written == (failpoint == "clean_events.after_silver_commit")
    versions = {ref.name: tables.current_version(ref) for ref in lake.tables()}

    retried = clean_events.run(spark_session, crashed)
    assert retried == uninterrupted
    assert snapshot_of(spark_session, crashed) == clean_snapshot
    # The retry rewrote nothing it had already committed.
    assert tables.current_version(lake.table("silver.quarantine.events")) == \
        versions["silver.quarantine.events"]
