import contextlib
import subprocess
import time

import pytest
import yaml

from palindrom.config import load_config
from pipelines import workflows
from pipelines.tasks import one_run_at_a_time
from pipelines.workflows import BundleError, job_tasks, load_bundle, resolve_variables, run_job
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def local_bundle():
    return resolve_variables(load_bundle(), "local")


def test_daily_ingestion_runs_its_tasks_in_dependency_order(local_bundle):
    tasks = job_tasks(local_bundle, "daily_ingestion", {})
    assert [t.key for t in tasks] == ["ingest_events", "check_landing", "clean_events", "aggregate_events"]
    assert [t.entry_point for t in tasks] == ["ingest_events", "check_landing", "clean_events", "aggregate_events"]
    assert tasks[0].parameters == ["--env", "local", "--root", "", "--on-refusal", "record"]


def test_job_parameters_are_overridable(local_bundle):
    tasks = job_tasks(local_bundle, "daily_ingestion", {"root": "/tmp/x", "env": "dev"})
    assert tasks[2].parameters == ["--env", "dev", "--root", "/tmp/x"]


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
         parameters: tuple[str, ...] = ("schemas", "list"), entry_point: str = "pipelines", **settings) -> dict:
    """A bundle task: `pipelines schemas list` (succeeds), or with `fails`, ingest_events with an
    unknown environment (argparse exits 2); `settings`: more of the task's fields (max_retries, …)."""
    wheel = {"package_name": "pipelines", "entry_point": "ingest_events" if fails else entry_point,
             "parameters": ["--env", "nope"] if fails else list(parameters)}
    spec = {"task_key": key, "python_wheel_task": wheel, **settings}
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


def test_a_failed_task_is_retried_before_its_dependants_are_skipped(tmp_path):
    path = write_bundle(tmp_path, task("broken", fails=True, max_retries=1), task("after_broken", "broken"))
    broken, after = run_job("j", {}, bundle_path=path)
    assert (broken.status, broken.attempts, broken.detail) == ("failed", 2, "exit code 2, 2 attempts")
    assert (after.status, after.attempts) == ("skipped", 0)


def test_a_task_that_met_another_run_of_itself_goes_through_on_its_retry(tmp_path, monkeypatch):
    """The first attempt finds the lake's lock for ingest_events held (another run of the task) and
    fails; the other run then ends, and the retry, no sooner than the interval after the failed
    attempt started, succeeds; the task after it runs."""
    root = str(tmp_path / "lake")
    path = write_bundle(tmp_path, task("ingest", entry_point="ingest_events", parameters=("--root", root),
                                       max_retries=2, min_retry_interval_millis=6000),
                        task("after", "ingest"))
    run, starts, other_run = subprocess.run, [], contextlib.ExitStack()

    def attempt(command, **kwargs):
        starts.append(time.monotonic())
        result = run(command, **kwargs)
        other_run.close()  # after the first attempt: the other run has finished
        return result

    other_run.enter_context(one_run_at_a_time("ingest_events", load_config("local", root).storage_root))
    monkeypatch.setattr(workflows.subprocess, "run", attempt)
    ingest, after = run_job("j", {}, bundle_path=path)
    assert (ingest.status, ingest.attempts, ingest.detail) == ("succeeded", 2, "2 attempts")
    assert starts[1] - starts[0] >= 6.0  # an attempt that meets the lock takes 1 to 3 s
    assert after.status == "succeeded"


@pytest.mark.parametrize("value", [-1, "2", True])
def test_a_retry_count_the_local_runner_cannot_honour_is_named(tmp_path, value):
    path = write_bundle(tmp_path, task("a", max_retries=value))
    with pytest.raises(BundleError, match=f"task 'a' of job 'j': max_retries {value!r} is not supported"):
        run_job("j", {}, bundle_path=path)


def test_every_shipped_task_is_retried_after_five_minutes_on_databricks_and_ten_seconds_here(local_bundle):
    deployed = resolve_variables(load_bundle(), "prod")
    for bundle, interval_s in ((deployed, 300), (local_bundle, 10)):  # max_retries a number: not "2"
        for job in bundle["resources"]["jobs"]:
            for t in job_tasks(bundle, job, {}):
                if t.entry_point != "check_landing":  # it fails the same on every attempt: see below
                    assert (t.max_retries, t.retry_interval_s) == (2, interval_s), (job, t.key)


def test_each_task_is_logged_with_its_parameters_as_a_shell_would_read_them(tmp_path):
    # An empty job parameter (root, by default) is shown as '', not as a dangling option.
    path = write_bundle(tmp_path, task("a", parameters=("schemas", "list", "--root", "")))
    result = run_cli("run", "j", "--bundle", str(path))
    assert "[1/1] a: schemas list --root ''" in result.stderr


def test_an_unsupported_run_if_is_named(tmp_path):
    path = write_bundle(tmp_path, task("a"), task("b", "a", run_if="AT_LEAST_ONE_FAILED"))
    with pytest.raises(BundleError, match="task 'b' of job 'j': run_if 'AT_LEAST_ONE_FAILED' is not supported"):
        run_job("j", {}, bundle_path=path)


@pytest.mark.parametrize(("job", "ingest"), [("daily_ingestion", "events"), ("media_processing", "media")])
def test_a_refused_landing_file_fails_a_task_that_is_not_retried_and_holds_nothing_back(local_bundle, job, ingest):
    tasks = {t.key: t for t in job_tasks(local_bundle, job, {})}
    check = tasks["check_landing"]
    assert check.depends_on == [f"ingest_{ingest}"]
    assert check.parameters[-2:] == ["--ingest", ingest]
    assert check.max_retries == 0 < tasks[f"ingest_{ingest}"].max_retries
    assert tasks[f"ingest_{ingest}"].parameters[-2:] == ["--on-refusal", "record"]  # it records and succeeds
    # A leaf: its failure fails the run, which sends the job's failure notifications.
    assert not [t.key for t in tasks.values() if "check_landing" in t.depends_on]


def test_a_failed_ingest_does_not_hold_back_the_cleaning_of_what_it_committed(local_bundle):
    tasks = {t.key: t for t in job_tasks(local_bundle, "daily_ingestion", {})}
    assert (tasks["clean_events"].run_if, tasks["aggregate_events"].run_if) == ("ALL_DONE", "ALL_SUCCESS")
    job = local_bundle["resources"]["jobs"]["daily_ingestion"]
    (task,) = [t for t in job["tasks"] if t["task_key"] == "ingest_events"]
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
