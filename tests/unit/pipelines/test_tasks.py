import re
import subprocess
import sys
from pathlib import Path

import pytest

from palindrom.lake.paths import Lake, native_uri
from pipelines.tasks import TaskAlreadyRunning, one_run_at_a_time
from tests.conftest import BIN

HOLD = """
import sys, time
from filelock import FileLock
lock = FileLock(sys.argv[1])  # kept: a collected FileLock releases itself
lock.acquire()
print("held", flush=True)
time.sleep(120)
"""


@pytest.fixture
def held_lock(tmp_path):
    """The lock of ingest_events on a lake under tmp_path, held by another process."""
    root = f"file:{tmp_path / 'lake'}"
    path = Path(native_uri(Lake(root).task_lock("ingest_events")))
    path.parent.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        yield root, path
    finally:
        holder.kill()
        holder.wait()


def test_a_second_run_of_a_task_on_a_local_lake_fails_at_once(held_lock):
    root, path = held_lock
    expected = f"ingest_events is already running on {root} (another process holds {path})"
    with pytest.raises(TaskAlreadyRunning, match=re.escape(expected)), one_run_at_a_time("ingest_events", root):
        pytest.fail("ran while another run held the lock")
    with one_run_at_a_time("clean_events", root):  # another task's lock is its own
        pass


def test_the_entry_point_refuses_to_overlap_before_starting_spark(held_lock):
    root, _ = held_lock
    result = subprocess.run([str(BIN / "ingest_events"), "--root", native_uri(root)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1
    assert "TaskAlreadyRunning: ingest_events is already running" in result.stderr
    assert "SparkContext" not in result.stderr


def test_the_lock_goes_with_the_run(tmp_path):
    root = f"file:{tmp_path / 'lake'}"
    path = Path(native_uri(Lake(root).task_lock("ingest_events")))
    ran = []
    with one_run_at_a_time("ingest_events", root):
        ran.append("first")
    assert path.exists()  # the file stays; the lock on it does not
    with one_run_at_a_time("ingest_events", root):
        ran.append("second")
    with one_run_at_a_time("ingest_events", "s3a://bucket/lake"):  # Workflows' max_concurrent_runs there
        ran.append("s3a")
    assert ran == ["first", "second", "s3a"]
