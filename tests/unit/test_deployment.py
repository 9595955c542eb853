"""The GitHub Actions deployment (.github/workflows): the bundle reaches a workspace only after the
README's test command passed, through dev and staging before prod, each with its own environment.
GitHub and the workspaces cannot be reached from here: this checks the wiring, not a deployment."""

from __future__ import annotations

import re

import pytest
import yaml

from palindrom.config import REPO_ROOT
from pipelines.workflows import load_bundle

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
