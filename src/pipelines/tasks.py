"""What every task entry point shares: arguments, typed config, session, alerting.

A task module's `main()` is one call to `task_main` with its `run(spark, config)`; this is the
`python_wheel_task` contract on Databricks and what `pipelines run` starts locally.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from palindrom.config import ENVIRONMENTS, PipelineConfig, configs_dir, load_config
from palindrom.events.registry import SchemaRegistry, registry_from_config
from palindrom.lake.paths import Lake, native_uri
from palindrom.logging import capture_error, logger

RunFunction = Callable[[Any, PipelineConfig], Any]
ON_REFUSAL = ("fail", "record")  # what an ingest does once it has recorded the files it refused
# A task's look, without Spark, at whether it has anything to do: a line saying why not, or None
# where it has (or cannot tell without Spark). Called as `run` is (with `args` where the task adds
# arguments); `run` decides again, in full.
UpToDateFunction = Callable[..., str | None]


def add_env_arguments(parser: argparse.ArgumentParser, default_env: str | None = "local") -> None:
    parser.add_argument("--env", default=default_env, choices=ENVIRONMENTS,
                        help=f"environment whose configs/<env>.yaml to load (default: {default_env or 'the target'})")
    parser.add_argument("--root", default=None,
                        help="storage root overriding the config's: a local path, a file: URI or an s3a:// URI")


def unknown_reasons(chosen: Sequence[str], codes: Sequence[str], kind: str) -> str | None:
    """Why `chosen` reason codes of `kind` (event, media) are refused, naming the known ones (rather
    than matching nothing), or None."""
    if unknown := sorted(set(chosen) - set(codes)):
        return f"no such {kind} reason code: {', '.join(unknown)} (the codes: {', '.join(codes)})"
    return None


def add_reasons_argument(parser: argparse.ArgumentParser, codes: Sequence[str], kind: str) -> None:
    """`--reasons`: reason codes separated by commas, as a job parameter gives them (one string)."""
    def reasons(text: str) -> list[str]:
        chosen = [code.strip() for code in text.split(",") if code.strip()]
        if refused := unknown_reasons(chosen, codes, kind):
            raise argparse.ArgumentTypeError(refused)
        return chosen

    parser.add_argument("--reasons", type=reasons, default=[],
                        help="only the quarantined rows with these reason codes, comma-separated (default: all)")


def replay_task_main(task: str, run: Callable[..., Any], description: str, codes: Sequence[str], kind: str,
                     quarantine: str, argv: list[str] | None) -> int:
    """A quarantine replay as a task (a job's wheel task): `run(spark, config, reasons)`, `--reasons`;
    Spark is not started where the `quarantine` table's Delta log shows nothing to replay."""
    return task_main(task, "silver", lambda spark, config, args: run(spark, config, args.reasons or None),
                     description, argv, lambda parser: add_reasons_argument(parser, codes, kind),
                     examples=(f"{task} --reasons {','.join(codes[-2:])}",),
                     up_to_date=functools.partial(_nothing_quarantined, quarantine))


def _nothing_quarantined(quarantine: str, config: PipelineConfig, args: argparse.Namespace) -> str | None:
    from palindrom.lake import native, tables  # Delta's Python side: only once a task runs

    ref = Lake(config.storage_root).table(quarantine)
    if native.logged_row_count(ref.uri) == 0 or not tables.exists(ref):  # one read of the log, mostly
        return f"{quarantine} holds no rows"
    if args.reasons and tables.logged_rows_per_value(ref, "reason", args.reasons) == {}:
        return f"{quarantine} holds no rows with the reasons {', '.join(args.reasons)}"
    return None


def ingest_task_main(task: str, run: Callable[..., Any], description: str,
                     up_to_date: Callable[[PipelineConfig], str | None], argv: list[str] | None) -> int:
    """An ingest as a task: `run(spark, config, on_refusal)`, `--on-refusal` (see palindrom.lake.refusals)."""
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--on-refusal", choices=ON_REFUSAL, default="fail", help=(
            "a landing file it refuses is left in landing and recorded, the others ingested; then fail naming it "
            "(fail, the default), or succeed and leave that to the job's check_landing task, which is not "
            "retried (record)"))

    return task_main(task, "bronze", lambda spark, config, args: run(spark, config, args.on_refusal), description,
                     argv, add_arguments, examples=(f"{task} --on-refusal record",),
                     up_to_date=lambda config, args: up_to_date(config))


def schema_registry(config: PipelineConfig) -> SchemaRegistry:
    return registry_from_config(config.registry.kind, config.registry.url, config.registry.group,
                                configs_dir() / "schemas" / "events")


class TaskAlreadyRunning(RuntimeError):
    """Another run of the same task holds the local lake's lock for it."""


@contextmanager
def one_run_at_a_time(task: str, storage_root: str) -> Iterator[None]:
    """Locally, what `max_concurrent_runs: 1` is on Databricks, which the tasks' exactly-once
    bookkeeping assumes (two ingest runs at once would both take the same new files): a second run of
    a task on the same local lake fails at once, naming the lock. The operating system releases it
    when the run's process ends, however it ends. No lock on an s3a:// root: Workflows enforces it."""
    if not storage_root.startswith("file:"):
        yield
        return
    path = Path(native_uri(Lake(storage_root).task_lock(task)))
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise TaskAlreadyRunning(f"{task} is already running on {storage_root} (another process holds {path}); "
                                 "runs of one task on a lake must not overlap") from None
    try:
        yield
    finally:
        lock.release()


def task_main(task: str, layer: str, run: RunFunction, description: str, argv: list[str] | None = None,
              add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
              examples: tuple[str, ...] = (), up_to_date: UpToDateFunction | None = None,
              needs_spark: bool = True) -> int:
    """Parse the task's arguments, load config, start Spark and call `run(spark, config)`, or
    `run(spark, config, args)` for a task that adds arguments of its own. Where `up_to_date` says there
    is nothing to do, Spark is not started: a fresh process spends 3 to 4 s starting it, most of a
    run with nothing new. A task that reads only Delta logs and small tables (`needs_spark=False`) is
    called with None for the session."""
    lines = "\n  ".join((task, f"{task} --env dev", f"{task} --root /tmp/lake", *examples))
    parser = argparse.ArgumentParser(
        prog=task, description=description, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"examples:\n  {lines}",
    )
    add_env_arguments(parser)
    if add_arguments:
        add_arguments(parser)
    args = parser.parse_args(argv)
    from palindrom.spark import get_spark  # Spark is needed only once arguments are valid

    try:
        config = load_config(args.env, args.root or None)  # an empty --root (job parameter) = default
        logger.info("%s: env=%s root=%s", task, config.env, config.storage_root)
        with one_run_at_a_time(task, config.storage_root):
            nothing_new = up_to_date and (up_to_date(config, args) if add_arguments else up_to_date(config))
            if nothing_new:
                logger.info("%s: %s; nothing to do, Spark not started", task, nothing_new)
                return 0
            spark = get_spark(config.spark, app_name=task, storage_root=config.storage_root) if needs_spark else None
            run(spark, config, args) if add_arguments else run(spark, config)
    except Exception as error:
        capture_error(error, context={"job": task, "layer": layer, "env": args.env})
        raise
    return 0
