"""The lake the data-quality tests read: the sample lake they build, or the one --lake-root names."""

from collections.abc import Callable

import pytest
from pyspark.sql import DataFrame

from palindrom.config import PipelineConfig
from palindrom.data import releases
from palindrom.lake import tables
from palindrom.lake.paths import Lake


@pytest.fixture
def lake_table(spark_session, sample_lake: PipelineConfig, pytestconfig: pytest.Config) \
        -> Callable[..., DataFrame | None]:
    """A table of the lake under check by name. A table that the lake named by --lake-root does not
    hold (a layer not run there yet) skips the test; `optional=True`: None instead."""
    lake = Lake(sample_lake.storage_root)

    def read(name: str, optional: bool = False) -> DataFrame | None:
        try:
            return tables.read(spark_session, lake.table(name))
        except tables.TableNotFound:
            if optional:
                return None
            if pytestconfig.getoption("lake_root"):
                pytest.skip(f"{name}: no such table under {lake.root}")
            raise

    return read


@pytest.fixture
def committed_releases(training_lake, pytestconfig: pytest.Config) -> tuple[PipelineConfig, list[releases.Release]]:
    """The lake under check and its committed releases (a lake named by --lake-root with none skips the test)."""
    config, _ = training_lake
    found = releases.list_releases(config)
    if not found:
        if pytestconfig.getoption("lake_root"):
            pytest.skip(f"no training-dataset releases under {config.storage_root}")
        pytest.fail(f"the training lake holds no releases ({config.storage_root})")
    return config, found
