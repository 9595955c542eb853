import multiprocessing
import socket

import mlflow
from mlflow.tracking import MlflowClient

from palindrom.logging import logger
from palindrom.training import lineage

DIGEST = "0123456789abcdef" * 4


def _log_together(uri: str, experiment: str, barrier, results) -> None:
    mlflow.set_tracking_uri(uri)
    try:
        with mlflow.start_run(experiment_id=experiment) as run:
            barrier.wait(timeout=60)
            lineage.log_input(lineage.delta_dataset("/lake/silver/events", 0, "silver.events@v0", DIGEST),
                              context="source")
        results.put(("ok", run.info.run_id))
    except Exception as error:  # reported to the test, which shows it
        results.put(("failed", f"{type(error).__name__}: {error}"))


def test_runs_logging_the_same_dataset_at_once_both_record_it(tmp_path):
    """MLflow inserts a dataset it has not seen in a check-then-insert transaction; two runs doing it at
    the same moment collide on the store's unique key. Both runs must end up with the input."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("together")
    context = multiprocessing.get_context("spawn")  # not fork: the test process may hold a JVM gateway
    barrier, results = context.Barrier(2), context.Queue()
    workers = [context.Process(target=_log_together, args=(uri, experiment, barrier, results)) for _ in range(2)]
    for w in workers:
        w.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    assert [status for status, _ in outcomes] == ["ok", "ok"], outcomes  # without the retry, one fails
    client = MlflowClient(uri)
    for _, run_id in outcomes:
        (logged,) = client.get_run(run_id).inputs.dataset_inputs
        assert (logged.dataset.name, logged.dataset.digest) == ("silver.events@v0", DIGEST[:lineage.DIGEST_CHARS])
        assert logged.tags[0].value == "source"


def test_a_version_0_source_keeps_its_version():
    dataset = lineage.delta_dataset("/lake/silver/events", 0, "silver.events@v0", DIGEST)
    assert '"delta_table_version": 0' in dataset.source.to_json()
    assert dataset.digest == DIGEST[:32]


def test_runs_left_open_by_builds_that_can_no_longer_commit_are_ended(tmp_path):
    """A killed build's run stays RUNNING with palindrom.status "building". Once another build commits
    its release number, the run is ended KILLED as abandoned; a run for a number not committed yet (a
    build that may still commit) and the committing build's own run are left as they are."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("training_datasets/chat_sft")

    def open_run(build_id: str, release: int, status: str = lineage.BUILDING) -> str:
        tags = {"palindrom.build_id": build_id, "palindrom.release": str(release), "palindrom.status": status}
        return client.create_run(experiment, tags=tags).info.run_id

    killed_for_1, killed_for_2 = open_run("b-dead-1", 1), open_run("b-dead-2", 2)
    in_flight, committer = open_run("b-next", 3), open_run("b-won", 2)
    ended = open_run("b-failed", 1, "failed")
    client.set_terminated(ended, "FAILED")

    abandoned = lineage.close_abandoned_builds(uri, experiment, {1: "b-first", 2: "b-won"})
    assert sorted(abandoned) == ["b-dead-1", "b-dead-2"]
    runs = {run_id: client.get_run(run_id) for run_id in (killed_for_1, killed_for_2, in_flight, committer, ended)}
    assert {run_id: (r.info.status, r.data.tags["palindrom.status"]) for run_id, r in runs.items()} == {
        killed_for_1: ("KILLED", "abandoned"), killed_for_2: ("KILLED", "abandoned"),
        in_flight: ("RUNNING", lineage.BUILDING), committer: ("RUNNING", lineage.BUILDING), ended: ("FAILED", "failed")}
    assert runs[killed_for_2].data.tags["palindrom.error"].endswith("release 2 was committed by build b-won")
    assert lineage.close_abandoned_builds(uri, experiment, {1: "b-first", 2: "b-won"}) == []  # nothing left open


def test_a_tracking_server_that_fails_when_runs_are_ended_is_a_warning(monkeypatch, caplog):
    """Ending abandoned runs comes after a build's commit: an unreachable server must not fail the build."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    monkeypatch.setattr(logger, "propagate", True)  # to caplog
    uri = f"http://127.0.0.1:{port}"
    assert lineage.close_abandoned_builds(uri, "1", {1: "b-first"}) == []
    assert f"could not end the MLflow runs that killed builds left open in experiment 1 at {uri}" in caplog.text
