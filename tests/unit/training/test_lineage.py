import multiprocessing

import mlflow
from mlflow.tracking import MlflowClient

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
