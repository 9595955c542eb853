"""`pipelines run JOB`: the local twin of Databricks Workflows.

Reads databricks.yml as the Asset Bundle CLI would (its `include` globs, `${var.*}` variables with
the `local` target's overrides, `{{job.parameters.*}}` references), orders the job's tasks by
`depends_on`, and runs each task's `python_wheel_task` entry point in a fresh process. A task runs
when its dependencies have all succeeded (`run_if: ALL_SUCCESS`, the default) or, with `run_if:
ALL_DONE`, once they have finished whatever their outcome; otherwise it is skipped. The other
`run_if` conditions of Databricks are refused. A failed task is run again up to its `max_retries`
times, each retry starting no sooner than `min_retry_interval_millis` after the failed attempt started,
as Databricks retries it; its dependants wait for the outcome of the last attempt.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from palindrom.config import REPO_ROOT
from palindrom.logging import logger

BUNDLE_FILE = REPO_ROOT / "databricks.yml"
_VAR = re.compile(r"\$\{var\.([A-Za-z0-9_]+)\}")
_BUNDLE_REF = re.compile(r"\$\{bundle\.(target|name)\}")
_JOB_PARAM = re.compile(r"\{\{\s*job\.parameters\.([A-Za-z0-9_]+)\s*\}\}")


ALL_SUCCESS, ALL_DONE = "ALL_SUCCESS", "ALL_DONE"  # the `run_if` conditions this runner knows


class BundleError(ValueError):
    """databricks.yml (or an included file) does not describe a runnable job."""


@dataclass(frozen=True)
class Task:
    key: str
    entry_point: str
    parameters: list[str]
    depends_on: list[str] = field(default_factory=list)
    run_if: str = ALL_SUCCESS
    max_retries: int = 0
    retry_interval_s: float = 0.0  # from the start of a failed attempt to the start of its retry


@dataclass(frozen=True)
class TaskOutcome:
    key: str
    status: str  # "succeeded", "failed" or "skipped"
    seconds: float = 0.0  # all attempts, and the waits between them
    detail: str = ""
    attempts: int = 0


def _merge(into: dict[str, Any], other: Mapping[str, Any]) -> None:
    for key, value in other.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def load_bundle(path: Path = BUNDLE_FILE) -> dict[str, Any]:
    """databricks.yml with its `include` files merged in, as one mapping."""
    bundle = yaml.safe_load(path.read_text()) or {}
    for pattern in bundle.get("include", []):
        matches = sorted(path.parent.glob(pattern))
        if not matches:
            raise BundleError(f"{path}: include {pattern!r} matches no file")
        for included in matches:
            _merge(bundle, yaml.safe_load(included.read_text()) or {})
    return bundle


def _substitute(value: Any, replace: Callable[[str], Any]) -> Any:
    if isinstance(value, str):
        return replace(value)
    if isinstance(value, list):
        return [_substitute(v, replace) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, replace) for k, v in value.items()}
    return value


def resolve_variables(bundle: Mapping[str, Any], target: str) -> dict[str, Any]:
    """Replace ${var.NAME} (target overrides first, then defaults) and ${bundle.target|name}. A value
    that is one reference and nothing else takes the variable's own type (`max_retries: ${var.n}` is
    a number), as the bundle CLI resolves it."""
    targets = bundle.get("targets", {})
    if target not in targets:
        raise BundleError(f"databricks.yml has no target {target!r} (targets: {', '.join(targets)})")
    values = {name: spec.get("default") for name, spec in bundle.get("variables", {}).items()}
    values.update((targets[target] or {}).get("variables", {}) or {})
    names = {"target": target, "name": bundle.get("bundle", {}).get("name", "")}

    def value(m: re.Match[str]) -> Any:
        if values.get(m.group(1)) is None:
            raise BundleError(f"variable {m.group(1)!r} has no value for target {target!r}")
        return values[m.group(1)]

    def replace(text: str) -> Any:
        whole = _VAR.fullmatch(text)
        if whole:
            return value(whole)
        return _BUNDLE_REF.sub(lambda m: names[m.group(1)], _VAR.sub(lambda m: str(value(m)), text))

    return _substitute(dict(bundle), replace)


def job_tasks(bundle: Mapping[str, Any], job: str, overrides: Mapping[str, str]) -> list[Task]:
    """The job's tasks in an order that respects depends_on (declaration order among equals)."""
    jobs = bundle.get("resources", {}).get("jobs", {})
    if job not in jobs:
        raise BundleError(f"no job {job!r} in databricks.yml (jobs: {', '.join(sorted(jobs)) or 'none'})")
    spec = jobs[job]
    params = {p["name"]: str(p.get("default", "")) for p in spec.get("parameters", [])}
    unknown = set(overrides) - set(params)
    if unknown:
        raise BundleError(f"job {job!r} has no parameter(s) {', '.join(sorted(unknown))}")
    params.update(overrides)

    def job_param(m: re.Match[str]) -> str:
        if m.group(1) not in params:
            raise BundleError(f"job {job!r} refers to undefined parameter {m.group(1)!r}")
        return params[m.group(1)]

    tasks = []
    for raw in spec.get("tasks", []):
        wheel = raw.get("python_wheel_task")
        if not wheel:
            raise BundleError(f"task {raw.get('task_key')!r} of job {job!r} is not a python_wheel_task")
        arguments = list(wheel.get("parameters", []))
        for name, value in (wheel.get("named_parameters") or {}).items():
            arguments += [f"--{name}", str(value)]
        run_if = raw.get("run_if", ALL_SUCCESS)
        if run_if not in (ALL_SUCCESS, ALL_DONE):
            raise BundleError(f"task {raw['task_key']!r} of job {job!r}: run_if {run_if!r} is not supported "
                              f"by the local runner (supported: {ALL_SUCCESS}, {ALL_DONE})")
        retries, interval_ms = (_count(raw, name, job) for name in ("max_retries", "min_retry_interval_millis"))
        tasks.append(Task(
            key=raw["task_key"], entry_point=wheel["entry_point"],
            parameters=[_JOB_PARAM.sub(job_param, str(a)) for a in arguments],
            depends_on=[d["task_key"] for d in raw.get("depends_on", [])],
            run_if=run_if, max_retries=retries, retry_interval_s=interval_ms / 1000,
        ))
    return _topological(tasks, job)


def _count(raw: Mapping[str, Any], name: str, job: str) -> int:
    """A task's whole-number setting (absent: 0). Databricks reads `max_retries: -1` as "retry for ever",
    which a local run must not do: refused."""
    value = raw.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BundleError(f"task {raw['task_key']!r} of job {job!r}: {name} {value!r} is not supported by the "
                          "local runner (a whole number, 0 or more)")
    return value


def _topological(tasks: list[Task], job: str) -> list[Task]:
    by_key = {t.key: t for t in tasks}
    for t in tasks:
        missing = [d for d in t.depends_on if d not in by_key]
        if missing:
            raise BundleError(f"task {t.key!r} of job {job!r} depends on unknown task(s) {', '.join(missing)}")
    ordered: list[Task] = []
    placed: set[str] = set()
    while len(ordered) < len(tasks):
        ready = [t for t in tasks if t.key not in placed and all(d in placed for d in t.depends_on)]
        if not ready:
            cycle = ", ".join(t.key for t in tasks if t.key not in placed)
            raise BundleError(f"job {job!r} has a dependency cycle among: {cycle}")
        ordered.append(ready[0])
        placed.add(ready[0].key)
    return ordered


def _entry_point_command(entry_point: str) -> list[str]:
    script = Path(sys.executable).parent / entry_point
    if not script.exists():
        raise BundleError(f"entry point {entry_point!r} is not installed next to {sys.executable}")
    return [str(script)]


def run_job(job: str, overrides: Mapping[str, str], target: str = "local",
            bundle_path: Path = BUNDLE_FILE) -> list[TaskOutcome]:
    tasks = job_tasks(resolve_variables(load_bundle(bundle_path), target), job, overrides)
    outcomes: dict[str, TaskOutcome] = {}
    for i, task in enumerate(tasks, start=1):
        blocked = [d for d in task.depends_on if outcomes[d].status != "succeeded"]
        if blocked and task.run_if == ALL_SUCCESS:
            why = f"upstream {', '.join(blocked)} did not succeed"
            outcomes[task.key] = TaskOutcome(task.key, "skipped", detail=why)
            logger.error("[%d/%d] %s skipped: %s", i, len(tasks), task.key, why)
            continue
        if blocked:
            logger.warning("[%d/%d] %s runs although upstream %s did not succeed (run_if: %s)",
                           i, len(tasks), task.key, ", ".join(blocked), task.run_if)
        command = _entry_point_command(task.entry_point) + task.parameters
        logger.info("[%d/%d] %s: %s", i, len(tasks), task.key, shlex.join(command[1:]) or "(no parameters)")
        started = time.monotonic()
        code, attempts = _attempt(command, task, f"[{i}/{len(tasks)}] {task.key}")
        seconds = time.monotonic() - started
        status = "succeeded" if code == 0 else "failed"
        notes = [f"exit code {code}"] if code else []
        if attempts > 1:
            notes.append(f"{attempts} attempts")
        detail = ", ".join(notes)
        outcomes[task.key] = TaskOutcome(task.key, status, seconds, detail, attempts)
        log = logger.info if code == 0 else logger.error
        log("[%d/%d] %s %s in %.1fs%s", i, len(tasks), task.key, status, seconds, f" ({detail})" if detail else "")
    return [outcomes[t.key] for t in tasks]


def _attempt(command: list[str], task: Task, label: str) -> tuple[int, int]:
    """Run the task's process, and again after a failure while it has retries left: its last exit
    code and the number of attempts."""
    attempt = 1
    while True:
        started = time.monotonic()
        code = subprocess.run(command, check=False).returncode
        if code == 0 or attempt > task.max_retries:
            return code, attempt
        wait = max(0.0, task.retry_interval_s - (time.monotonic() - started))
        logger.warning("%s failed (exit code %d); retry %d of %d%s", label, code, attempt, task.max_retries,
                       f" in {wait:.0f}s" if wait else "")
        time.sleep(wait)
        attempt += 1
