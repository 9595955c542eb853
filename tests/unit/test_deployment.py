"""The GitHub Actions deployment (.github/workflows): the bundle reaches a workspace only after the
README's test command passed, through dev and staging before prod, each with its own environment.
GitHub and the workspaces cannot be reached from here: this checks the wiring, not a deployment."""

from __future__ import annotations

import copy
import re

import pytest
import yaml
from databricks.bundles.jobs import Job

from palindrom.config import REPO_ROOT
from pipelines.workflows import load_bundle, resolve_variables

WORKFLOWS = REPO_ROOT / ".github" / "workflows"


def workflow(name: str) -> dict:
    loaded = yaml.safe_load((WORKFLOWS / name).read_text())
    loaded["on"] = loaded.pop(True)  # YAML 1.1 reads the key `on` as true
    return loaded


@pytest.fixture(scope="module")
def deploy() -> dict:
    return workflow("deploy.yml")


def test_the_tests_run_the_readme_command_under_ci(deploy):
    (step,) = [s for s in deploy["jobs"]["test"]["steps"] if "run" in s]
    assert step["run"] == ".ci/run"
    assert step["env"]["CI"] == "true"
    assert "make test" in (REPO_ROOT / ".ci" / "run").read_text()


def test_each_target_is_deployed_after_the_tests_and_in_order(deploy):
    jobs = deploy["jobs"]
    targets = {name: job["with"]["target"] for name, job in jobs.items() if "uses" in job}
    assert targets == {"dev": "dev", "staging": "staging", "prod": "prod"}
    assert set(targets.values()) <= set(load_bundle()["targets"]) - {"local"}
    assert (jobs["dev"]["needs"], jobs["staging"]["needs"], jobs["prod"]["needs"]) == ("test", "dev", "test")
    assert jobs["dev"]["if"] == jobs["staging"]["if"] == "github.ref == 'refs/heads/main'"
    assert jobs["prod"]["if"] == "startsWith(github.ref, 'refs/tags/v')"  # a release tag, never a push
    assert set(deploy["on"]["push"]) == {"branches", "tags"}
    assert deploy["concurrency"]["cancel-in-progress"] is False


def test_a_deploy_validates_then_deploys_its_target_with_that_environments_credentials():
    called = workflow("bundle-deploy.yml")
    (job,) = called["jobs"].values()
    assert job["environment"] == "${{ inputs.target }}"
    assert set(job["env"]) == {"DATABRICKS_HOST", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET"}
    commands = [s["run"] for s in job["steps"] if "run" in s]
    target = '"${{ inputs.target }}"'
    assert commands == [f"databricks bundle validate --target {target}", f"databricks bundle deploy --target {target}"]


def test_every_action_is_pinned_to_a_release():
    for path in WORKFLOWS.glob("*.yml"):
        for job in workflow(path.name)["jobs"].values():
            for step in job.get("steps", []):
                if "uses" in step:
                    assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+(\.\d+){0,2}", step["uses"]), (path.name, step["uses"])


@pytest.mark.parametrize("target", ["dev", "staging", "prod"])
def test_every_job_is_a_valid_databricks_job_for_each_deployed_target(target):
    """Each job, its variables resolved for the target, loads into Databricks' own typed job model
    (databricks-bundles, the Python side of Asset Bundles): no unknown field at any level, enums (run_if,
    pause status, …) and types as the Jobs API defines them. `databricks bundle validate` needs a workspace."""
    jobs = resolve_variables(load_bundle(), target)["resources"]["jobs"]
    assert set(jobs) == {"daily_ingestion", "media_processing", "gold_build", "events_quarantine_replay",
                         "media_quarantine_replay"}
    for name, spec in jobs.items():
        job = Job.from_dict(copy.deepcopy(spec))
        assert [t.task_key for t in job.tasks] == [t["task_key"] for t in spec["tasks"]], name
        assert all(t.python_wheel_task.package_name == "pipelines" for t in job.tasks), name


@pytest.mark.parametrize(("path", "value", "refusal"), [
    (("tasks", 1, "run_if"), "ALL_DONEE", "'ALL_DONEE' is not a valid RunIf"),
    (("tasks", 0, "python_wheel_tsk"), {}, "Unexpected field 'python_wheel_tsk' for class Task"),
    (("schedule", "pause_status"), "SOMETIMES", "'SOMETIMES' is not a valid PauseStatus"),
])
def test_the_job_model_refuses_what_the_jobs_api_would(path, value, refusal):
    spec = copy.deepcopy(resolve_variables(load_bundle(), "dev")["resources"]["jobs"]["daily_ingestion"])
    *parents, key = path
    target = spec
    for part in parents:
        target = target[part]
    target[key] = value
    with pytest.raises(ValueError, match=re.escape(refusal)):
        Job.from_dict(spec)
