"""MLflow lineage: a build is a run in the dataset's experiment; its inputs are the silver tables at
their pinned Delta versions, its output the release; a training run logs the release it loads.

Spark-free (the loader runs on training boxes without Spark). Two MLflow behaviours are worked
around on purpose: `DeltaDatasetSource` drops a version of 0 from its JSON (`PinnedDeltaSource`
keeps it), and dataset digests are given explicitly (MLflow's default hashes a query plan, not the
data; its store keeps 36 characters, so a digest is cut to its first 32 hex digits).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from palindrom.config import PipelineConfig
from palindrom.logging import logger

DIGEST_CHARS = 32
LOG_INPUT_TRIES = 4
BUILDING = "building"  # a build's palindrom.status until it ends (committed, lost_race, failed, abandoned)


def tracking_uri(config: PipelineConfig) -> str:
    if config.mlflow.tracking_uri:
        return config.mlflow.tracking_uri
    if config.local_root is None:
        raise ValueError(f"mlflow.tracking_uri must be set in configs/{config.env}.yaml when the storage root is "
                         f"remote ({config.storage_root}); the local SQLite store needs a local root")
    folder = config.local_root / "_mlflow"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}"


def experiment_id(config: PipelineConfig, dataset: str) -> str:
    """The dataset's experiment, created on first use (locally with its artifacts under the root).

    Locally, the first use also creates the SQLite store (MLflow runs its schema migrations then):
    builds starting together take turns through a file lock, so that happens once."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri(config))
    name = f"{config.mlflow.experiment_prefix}{dataset}"
    if config.local_root is None:
        return _get_or_create(mlflow, name, None, dataset)
    from filelock import FileLock

    with FileLock(str(config.local_root / "_mlflow" / "store.lock")):
        return _get_or_create(mlflow, name, (config.local_root / "_mlflow" / "artifacts").as_uri(), dataset)


def _get_or_create(mlflow, name: str, artifacts: str | None, dataset: str) -> str:
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return mlflow.create_experiment(name, artifact_location=artifacts, tags={"palindrom.dataset": dataset})
    except mlflow.exceptions.MlflowException:  # created meanwhile by a concurrent build elsewhere
        return mlflow.get_experiment_by_name(name).experiment_id


def _source(uri: str, version: int):
    from mlflow.data.delta_dataset_source import DeltaDatasetSource

    class PinnedDeltaSource(DeltaDatasetSource):
        def to_dict(self) -> dict[Any, Any]:
            return {**super().to_dict(), "delta_table_version": self.delta_table_version}

    return PinnedDeltaSource(path=uri, delta_table_version=version)


def delta_dataset(uri: str, version: int, name: str, digest: str):
    """An MLflow dataset for a Delta table at a version, with the given content digest."""
    from mlflow.data.meta_dataset import MetaDataset

    return MetaDataset(_source(uri, version), name=name, digest=digest[:DIGEST_CHARS])


def log_input(dataset, context: str, tags: Mapping[str, str] | None = None) -> None:
    """`mlflow.log_input` to the active run, safe against runs logging the same dataset at once.

    MLflow's store looks a dataset up by (experiment, name, digest) and inserts it when it is not
    there, in one transaction: two runs doing that together both miss it and one insert fails on the
    unique key (a sqlite3 / database IntegrityError). Nothing of the failed call is kept, and the next
    try finds the row the other run inserted."""
    import mlflow

    for attempt in range(1, LOG_INPUT_TRIES + 1):
        try:
            mlflow.log_input(dataset, context=context, tags=dict(tags) if tags else None)
            return
        except mlflow.exceptions.MlflowException:
            if attempt == LOG_INPUT_TRIES:
                raise
            time.sleep(0.2 * attempt)


def close_abandoned_builds(tracking_uri: str, experiment: str, committed: Mapping[int, str]) -> list[str]:
    """End the runs that builds left open and that can no longer commit; returns their build ids.

    A build's process that is killed (a lost node, a cancelled job) never ends its run: it stays
    RUNNING with palindrom.status "building" for ever. Once its release number is `committed`
    (release → the build that committed it) by another build, it cannot commit (the release MERGE
    refuses it), so its run is ended KILLED with palindrom.status "abandoned". A build still running
    for a number already taken fails with LostRace and sets its own status when it ends.

    Called after a build's commit: where the tracking server fails, that is a warning (the release is
    committed; the next build tries again), not the build's failure."""
    import mlflow
    from mlflow.entities import RunTag

    client = mlflow.MlflowClient(tracking_uri)
    query = f"attributes.status = 'RUNNING' AND tags.`palindrom.status` = '{BUILDING}'"
    abandoned: list[str] = []
    page = None
    try:
        while True:
            runs = client.search_runs([experiment], query, page_token=page)
            for run in runs:
                tags = run.data.tags
                build_id, release = tags.get("palindrom.build_id"), tags.get("palindrom.release", "")
                winner = committed.get(int(release)) if release.isdigit() else None
                if winner is None or winner == build_id:  # its number still free, or its own run
                    continue
                client.log_batch(run.info.run_id, tags=[
                    RunTag("palindrom.status", "abandoned"),
                    RunTag("palindrom.error", f"the build ended without ending its run (its process was killed); "
                                              f"release {release} was committed by build {winner}")])
                client.set_terminated(run.info.run_id, "KILLED")
                abandoned.append(build_id)
            page = runs.token
            if not page:
                return abandoned
    except mlflow.exceptions.MlflowException as error:
        logger.warning("could not end the MLflow runs that killed builds left open in experiment %s at %s (the "
                       "next build tries again): %s", experiment, tracking_uri, error)
        return abandoned


def flat_params(value: Any, prefix: str = "") -> dict[str, str]:
    """A nested mapping as MLflow params: dotted keys, scalar values (lists as JSON)."""
    if isinstance(value, Mapping):
        out: dict[str, str] = {}
        for key, item in value.items():
            out.update(flat_params(item, f"{prefix}{key}."))
        return out
    text = json.dumps(value) if isinstance(value, list | tuple) else str(value)
    return {prefix.rstrip("."): text[:6000]}


def log_training_input(name: str, release: int, uri: str, table_version: int, content_digest: str,
                       split: str) -> bool:
    """Log the release as an input of the active MLflow run (if any): how a training run names its data."""
    import mlflow

    if mlflow.active_run() is None:
        return False
    dataset = delta_dataset(uri, table_version, f"{name}@{release}", content_digest)
    log_input(dataset, context="training", tags={"split": split, "release": str(release)})
    mlflow.set_tags({f"palindrom.dataset.{name}.release": str(release),
                     f"palindrom.dataset.{name}.content_digest": content_digest})
    return True
