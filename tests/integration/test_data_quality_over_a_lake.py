"""`pytest tests/data_quality --lake-root=URI`: the data-quality tests over a lake they did not build,
as the standard's data-quality tests read the production tables; they only read it."""

import re
import shutil
import subprocess

import pytest

from palindrom.config import REPO_ROOT, load_config
from palindrom.lake import tables
from palindrom.lake.paths import Lake
from tests.conftest import BIN, lake_path

pytestmark = pytest.mark.integration


def test_data_quality_tests_read_the_lake_named_and_name_what_fails(spark_session, sample_lake, tmp_path):
    root = tmp_path / "lake"
    shutil.copytree(lake_path(sample_lake), root)
    lake = Lake(load_config("local", str(root)).storage_root)
    silver = lake.table("silver.events")
    first = tables.read(spark_session, silver).limit(1)
    (event_id,) = [r["event_id"] for r in first.collect()]
    tables.append(spark_session.createDataFrame(first.collect(), first.schema), silver)  # one event twice
    versions = {ref.name: tables.current_version(ref) for ref in lake.tables()}

    run = subprocess.run([str(BIN / "pytest"), "tests/data_quality", f"--lake-root={root}", "-n", "0", "-q", "-rfs",
                          "-p", "no:cacheprovider"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert run.returncode == 1, run.stdout[-4000:] + run.stderr[-2000:]
    assert sorted(re.findall(r"^FAILED (\S+)", run.stdout, re.M)) == [
        "tests/data_quality/test_tables.py::test_conservation_over_all_batches",
        "tests/data_quality/test_tables.py::test_silver_event_ids_unique_and_users_present"]
    assert f"e.g. '{event_id}'" in run.stdout
    # The copy holds no releases (the sample lake has none built): the release checks are skipped, naming it.
    assert run.stdout.count(f"no training-dataset releases under file:{root}") == 3
    assert {ref.name: tables.current_version(ref) for ref in lake.tables()} == versions  # nothing written
