import pytest
import yaml

from pipelines.workflows import BundleError, job_tasks, load_bundle, resolve_variables, run_job
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def local_bundle():
    return resolve_variables(load_bundle(), "local")


def test_daily_ingestion_runs_its_tasks_in_dependency_order(local_bundle):
    tasks = job_tasks(local_bundle, "daily_ingestion", {})
    assert [t.key for t in tasks] == ["ingest_events", "clean_events", "aggregate_events"]
    assert [t.entry_point for t in tasks] == ["ingest_events", "clean_events", "aggregate_events"]
    assert tasks[0].parameters == ["--env", "local", "--root", ""]


def test_job_parameters_are_overridable(local_bundle):
    tasks = job_tasks(local_bundle, "daily_ingestion", {"root": "/tmp/x", "env": "dev"})
    assert tasks[1].parameters == ["--env", "dev", "--root", "/tmp/x"]


def test_the_standard_schedule_and_targets():
    bundle = load_bundle()
    job = bundle["resources"]["jobs"]["daily_ingestion"]
    assert bundle["bundle"]["name"] == "data-pipelines"
    assert job["schedule"] == {"quartz_cron_expression": "0 0 6 * * ?", "timezone_id": "UTC"}
    prod = resolve_variables(bundle, "prod")["resources"]["jobs"]["daily_ingestion"]
    assert prod["parameters"][0]["default"] == "prod"


@pytest.mark.parametrize(("job", "overrides", "message"), [
    ("nightly", {}, "no job 'nightly'"),
    ("daily_ingestion", {"colour": "x"}, r"no parameter\(s\) colour"),
])
def test_bad_requests_are_named(local_bundle, job, overrides, message):
    with pytest.raises(BundleError, match=message):
        job_tasks(local_bundle, job, overrides)


def task(key: str, *after: str, run_if: str | None = None, fails: bool = False,
         parameters: tuple[str, ...] = ("schemas", "list")) -> dict:
    """A bundle task: `pipelines schemas list` (succeeds), or with `fails`, ingest_events with an
    unknown environment (exits 1)."""
    wheel = {"package_name": "pipelines", "entry_point": "ingest_events" if fails else "pipelines",
             "parameters": ["--env", "nope"] if fails else list(parameters)}
    spec = {"task_key": key, "python_wheel_task": wheel}
    if after:
        spec["depends_on"] = [{"task_key": a} for a in after]
    if run_if:
        spec["run_if"] = run_if
    return spec


def write_bundle(tmp_path, *tasks: dict):
    bundle = {"bundle": {"name": "t"}, "targets": {"local": {}}, "resources": {"jobs": {"j": {"tasks": list(tasks)}}}}
    (tmp_path / "databricks.yml").write_text(yaml.safe_dump(bundle))
    return tmp_path / "databricks.yml"


def test_cycle_is_refused(tmp_path):
    path = write_bundle(tmp_path, task("a", "b", parameters=()), task("b", "a", parameters=()))
    with pytest.raises(BundleError, match="dependency cycle among: a, b"):
        run_job("j", {}, bundle_path=path)


def test_failed_task_stops_its_dependants_but_not_the_others(tmp_path):
    path = write_bundle(tmp_path, task("broken", fails=True), task("after_broken", "broken"), task("independent"))
    outcomes = {o.key: o.status for o in run_job("j", {}, bundle_path=path)}
    assert outcomes == {"broken": "failed", "after_broken": "skipped", "independent": "succeeded"}
    result = run_cli("run", "j", "--bundle", str(path), check=False)
    assert result.returncode == 1
    assert "job j failed: task broken failed; skipped after_broken" in result.stderr


def test_a_task_that_runs_if_all_done_runs_after_a_failed_dependency(tmp_path):
    path = write_bundle(tmp_path, task("broken", fails=True), task("cleanup", "broken", run_if="ALL_DONE"),
                        task("after_cleanup", "cleanup"))
    outcomes = {o.key: o.status for o in run_job("j", {}, bundle_path=path)}
    assert outcomes == {"broken": "failed", "cleanup": "succeeded", "after_cleanup": "succeeded"}
    result = run_cli("run", "j", "--bundle", str(path), check=False)
    assert result.returncode == 1  # the job still failed
    assert "job j failed: task broken failed" in result.stderr
    assert "cleanup runs although upstream broken did not succeed (run_if: ALL_DONE)" in result.stderr


def test_each_task_is_logged_with_its_parameters_as_a_shell_would_read_them(tmp_path):
    # An empty job parameter (root, by default) is shown as '', not as a dangling option.
    path = write_bundle(tmp_path, task("a", parameters=("schemas", "list", "--root", "")))
    result = run_cli("run", "j", "--bundle", str(path))
    assert "[1/1] a: schemas list --root ''" in result.stderr


def test_an_unsupported_run_if_is_named(tmp_path):
    path = write_bundle(tmp_path, task("a"), task("b", "a", run_if="AT_LEAST_ONE_FAILED"))
    with pytest.raises(BundleError, match="task 'b' of job 'j': run_if 'AT_LEAST_ONE_FAILED' is not supported"):
        run_job("j", {}, bundle_path=path)


def test_a_refused_landing_file_does_not_hold_back_the_cleaning_of_the_others(local_bundle):
    ingest, clean, aggregate = job_tasks(local_bundle, "daily_ingestion", {})
    assert (clean.run_if, aggregate.run_if) == ("ALL_DONE", "ALL_SUCCESS")
    job = local_bundle["resources"]["jobs"]["daily_ingestion"]
    task = job["tasks"][0]
    assert task["task_key"] == ingest.key
    # the run then "succeeds with failures" on Databricks, which sends no job-level failure notice
    for notifications in ("email_notifications", "webhook_notifications"):
        assert task[notifications]["on_failure"] == job[notifications]["on_failure"]


def test_gold_build_takes_a_dataset_parameter(local_bundle):
    (task,) = job_tasks(local_bundle, "gold_build", {})
    assert task.entry_point == "build_training_data"
    assert task.parameters == ["--env", "local", "--root", "", "--dataset", ""]  # empty: every daily spec
    (task,) = job_tasks(local_bundle, "gold_build", {"dataset": "chat_sft"})
    assert task.parameters[-2:] == ["--dataset", "chat_sft"]


def test_every_task_entry_point_is_installed(local_bundle):
    import tomllib

    from palindrom.config import REPO_ROOT

    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for job in local_bundle["resources"]["jobs"]:
        for task in job_tasks(local_bundle, job, {}):
            assert task.entry_point in scripts, f"{job}.{task.key}"
