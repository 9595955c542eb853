"""The `pipelines` command: run jobs locally, make sample data, inspect tables, schemas, quarantine."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import itertools
import json
import sys
from pathlib import Path

from palindrom.config import ConfigError, PipelineConfig, configs_dir, load_config
from palindrom.events.compat import backward_incompatibilities
from palindrom.events.registry import FileSchemaRegistry, IncompatibleSchema, RegistryError, schema_problems
from palindrom.logging import logger
from palindrom.training import BuildError
from pipelines import dataset_cli
from pipelines.tasks import add_env_arguments, schema_registry, unknown_reasons
from pipelines.workflows import BUNDLE_FILE

EXAMPLES = """\
examples:
  pipelines sample-data                      write a day of raw events and media into ./lake/landing
  pipelines run daily_ingestion              run the job's tasks locally, in dependency order
  pipelines run media_processing             ingest media, extract features and embeddings
  pipelines tables                           list the lake's tables with versions and row counts
  pipelines schemas check                    validate every schema and its backward compatibility
  pipelines schemas register --env dev       register the repo's schemas in dev's Apicurio Registry
  pipelines quarantine list --reason invalid_json
  pipelines quarantine replay --reason unknown_event_type
  pipelines quarantine list --media          media files that could not be decoded, and why
  pipelines quarantine replay --media --reason decoder_error   inspect them again (after a decoder upgrade)
  pipelines run daily_ingestion --root /tmp/lake
  pipelines dataset build chat_sft           build a training-dataset release (see `pipelines dataset --help`)
  pipelines dataset export chat_sft@latest --format hf --out /tmp/chat_sft
"""


def _spark(config: PipelineConfig):
    from palindrom.spark import get_spark

    return get_spark(config.spark, app_name="pipelines-cli", storage_root=config.storage_root)


def cmd_run(args: argparse.Namespace) -> int:
    from pipelines.workflows import run_job

    overrides = {name: value for name, value in (("env", args.env), ("root", args.root)) if value}
    for item in args.param or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--param {item!r}: expected NAME=VALUE")
        overrides[name] = value
    outcomes = run_job(args.job, overrides, bundle_path=Path(args.bundle))
    failed = [o for o in outcomes if o.status == "failed"]
    skipped = [o for o in outcomes if o.status == "skipped"]
    for o in outcomes:
        print(f"  {o.key:<24} {o.status:<10} {o.seconds:6.1f}s {o.detail}")
    if failed:
        print(f"job {args.job} failed: task {', '.join(o.key for o in failed)} failed"
              + (f"; skipped {', '.join(o.key for o in skipped)}" if skipped else ""), file=sys.stderr)
        return 1
    if args.summary:
        return cmd_tables(argparse.Namespace(env=args.env or "local", root=args.root, json=False))
    return 0


def cmd_sample_data(args: argparse.Namespace) -> int:
    from pipelines.sample_data import write_sample_data
    from pipelines.sample_media import LANDING_FOLDERS, write_sample_media

    config = load_config(args.env, args.root)
    if config.local_root is None:
        print(f"sample-data writes to a local storage root only (got {config.storage_root})", file=sys.stderr)
        return 2
    landing = config.local_root / "landing"
    day = dt.date.fromisoformat(args.date) if args.date else dt.date.today() - dt.timedelta(days=1)
    summary = write_sample_data(landing / "events", day, users=args.users, seed=args.seed)
    for name in summary.files:
        print(f"  {landing / 'events' / name}" + (" (already there, the same bytes)" * (name in summary.already_there)))
    print(f"{summary.lines} non-blank lines ({summary.valid_events} valid events) for {day} in {landing / 'events'}")
    media = write_sample_media(landing)
    for media_type, folder in LANDING_FOLDERS.items():
        files = [m for m in media if m.media_type == media_type]
        broken = sum(1 for m in files if m.reason)
        print(f"{len(files)} {media_type} files ({broken} deliberately broken) in {landing / folder}")
    return 0


def cmd_tables(args: argparse.Namespace) -> int:
    from palindrom.lake import native, tables
    from palindrom.lake.paths import Lake

    config = load_config(args.env, args.root)
    lake = Lake(config.storage_root)
    # The datasets with a committed release, from the release table's `dataset` column alone.
    datasets = sorted(tables.distinct_values(lake.table("gold.training_releases"), "dataset"))
    spark = None  # started only for a table whose Delta log does not state its row count
    rows = []
    for ref in [*lake.tables(), *map(lake.training_dataset, datasets)]:
        version = tables.current_version(ref)
        if version is None:  # no such table (yet)
            continue
        count = native.logged_row_count(ref.uri)
        if count is None:
            spark = spark or _spark(config)
            count = tables.read(spark, ref).count()
        rows.append({"table": ref.name, "version": version, "rows": count, "location": ref.uri})
    if getattr(args, "json", False):
        print(json.dumps(rows, indent=2))
        return 0
    print(f"tables under {config.storage_root}:")
    width = max((len(r["table"]) for r in rows), default=0)
    for r in rows:
        print(f"  {r['table']:<{width}}  v{r['version']:<4} {r['rows']:>9,} rows  {r['location']}")
    if not rows:
        print("  (none yet: run `pipelines sample-data`, then `pipelines run daily_ingestion` and "
              "`pipelines run media_processing`)")
        return 0
    print("next: `.venv/bin/pipelines quarantine list [--media]` (what was rejected and why), "
          "`.venv/bin/pipelines dataset list` (training-dataset releases), notebooks/, `.venv/bin/pipelines --help`")
    return 0


def cmd_schemas(args: argparse.Namespace) -> int:
    config = load_config(args.env, args.root)
    repo = FileSchemaRegistry(configs_dir() / "schemas" / "events")
    if args.action == "list":
        registry = schema_registry(config)
        for event_type in registry.event_types():
            versions = ", ".join(f"v{v}" for v in registry.versions(event_type))
            print(f"  {event_type:<24} {versions}")
        return 0
    if args.action == "check":
        problems = []
        for event_type in repo.event_types():
            versions = repo.versions(event_type)
            for v in versions:
                problems += [f"{event_type} v{v}: {p}" for p in schema_problems(event_type, repo.schema(event_type, v))]
            for old, new in itertools.pairwise(versions):
                problems += [f"{event_type} v{new} vs v{old}: {p}" for p in
                             backward_incompatibilities(repo.schema(event_type, old), repo.schema(event_type, new))]
            print(f"  {event_type:<24} {len(versions)} version(s)")
        for p in problems:
            print(f"error: {p}", file=sys.stderr)
        print("all schemas valid and backward compatible" if not problems else f"{len(problems)} problem(s)")
        return 1 if problems else 0
    # register: bring the configured registry up to the repo's schema files, version by version.
    registry = schema_registry(config)
    for event_type in repo.event_types():
        have = registry.versions(event_type)
        for v in repo.versions(event_type):
            schema = repo.schema(event_type, v)
            if v in have:
                if registry.schema(event_type, v) != schema:
                    print(f"error: {event_type} v{v} in the registry differs from the repository's", file=sys.stderr)
                    return 1
                continue
            if v != (have[-1] if have else 0) + 1:
                print(f"error: {event_type}: registry has {have}, cannot add v{v} out of order", file=sys.stderr)
                return 1
            try:
                registered = registry.register(event_type, schema)
            except IncompatibleSchema as e:
                print(f"error: {e}", file=sys.stderr)
                return 1
            have.append(registered)
            print(f"  registered {event_type} v{registered}")
    print("registry up to date")
    return 0


def cmd_quarantine(args: argparse.Namespace) -> int:
    config = load_config(args.env, args.root)
    if refused := unknown_reasons(args.reason or (), _reason_codes(args.media), "media" if args.media else "event"):
        print(refused, file=sys.stderr)
        return 2
    return _replay_quarantine(config, args) if args.action == "replay" else _list_quarantine(config, args)


def _replay_quarantine(config: PipelineConfig, args: argparse.Namespace) -> int:
    if args.media:
        from pipelines.silver import replay_media_quarantine

        result = replay_media_quarantine.run(_spark(config), config, args.reason or None)
        summary = (f"{result.replayed} media files inspected again, {result.moved_to_metadata} moved to metadata "
                   f"(the next process_media run embeds them), {result.still_quarantined} still quarantined "
                   f"({result.reason_or_detail_changed} with a new reason or detail)")
    else:
        from pipelines.silver import replay_quarantine

        result = replay_quarantine.run(_spark(config), config, args.reason or None)
        summary = (f"{result.replayed} lines re-validated, {result.moved_to_silver} moved to silver, "
                   f"{result.identical_duplicates} identical duplicates, {result.still_quarantined} still quarantined "
                   f"({result.reason_or_detail_changed} with a new reason or detail)")
    print(json.dumps(result.__dict__) if args.json else f"replay {result.replay_id}: {summary}")
    return 0


def _reason_codes(media: bool) -> tuple[str, ...]:
    if media:
        from palindrom.media.decoding import REASONS  # imports the media libraries: only when asked

        return REASONS
    from palindrom.events.contract import REASON_CODES

    return REASON_CODES


def _list_quarantine(config: PipelineConfig, args: argparse.Namespace) -> int:
    """Counts by reason and the first rows, read without Spark (delta-rs + pyarrow): answers in a second."""
    import pyarrow.compute as pc

    from palindrom.lake.native import read_table
    from palindrom.lake.paths import Lake

    if args.media:
        ref, order = Lake(config.storage_root).table("silver.quarantine.media"), ["media_type", "path"]
        shown = ["media_type", "path", "sha256", "reason", "detail"]
    else:
        ref, order = Lake(config.storage_root).table("silver.quarantine.events"), \
            ["bronze_batch_id", "source_file", "line_number"]
        shown = ["source_file", "line_number", "reason", "detail", "schema_ref", "raw_text"]
    rows = read_table(ref.uri, columns=list(dict.fromkeys(order + shown)),
                      row_filter=pc.field("reason").isin(args.reason) if args.reason else None)
    if rows is None:
        print("quarantine is empty (the table does not exist yet)")
        return 0
    counts = rows.group_by("reason").aggregate([("reason", "count")]).to_pylist()
    by_reason = sorted(((r["reason"], r["reason_count"]) for r in counts), key=lambda rc: (-rc[1], rc[0]))
    sample = rows.sort_by([(c, "ascending") for c in order]).slice(0, args.limit).select(shown).to_pylist()
    if args.json:
        print(json.dumps({"by_reason": dict(by_reason), "rows": sample}, indent=2))
        return 0
    if not by_reason:
        print(f"no quarantined {'media files' if args.media else 'lines'}"
              + (f" with reason {', '.join(args.reason)}" if args.reason else ""))
    else:
        kind = "media files" if args.media else "lines"
        print(f"{rows.num_rows:,} quarantined {kind} in {ref.name} ({ref.uri}), by reason:")
    for reason, n in by_reason:
        print(f"  {reason:<24} {n:>7}")
    if sample:
        print(f"the first {len(sample)} of them:" if len(sample) < rows.num_rows else "all of them:")
    for r in sample:
        if args.media:
            print(f"{r['media_type']}: {r['path']}  {r['reason']}: {r['detail']}")
        else:
            text = (r["raw_text"] or "<not UTF-8>")[:80]
            print(f"{r['source_file']}:{r['line_number']}  {r['reason']}: {r['detail']}\n    {text}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipelines", description=__doc__, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {importlib.metadata.version('pipelines')}",
                        help="print the installed package's version and exit")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run a job of databricks.yml locally (tasks in fresh processes, retried as "
                                   "its max_retries says)",
                       epilog="examples:\n  pipelines run daily_ingestion --root /tmp/lake\n"
                              "  pipelines run gold_build --param dataset=chat_sft",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("job", help="job name under resources.jobs, e.g. daily_ingestion")
    p.add_argument("--summary", action="store_true", help="print the lake's tables afterwards")
    p.add_argument("--bundle", default=str(BUNDLE_FILE), help="the bundle file (default: databricks.yml)")
    p.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="a job parameter (repeatable), e.g. --param dataset=chat_sft")
    add_env_arguments(p, default_env=None)  # unset: the `local` target's value
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("sample-data", help="write a realistic day of raw events and media into landing/",
                       epilog="example: pipelines sample-data --date 2026-11-26 --users 5000")
    add_env_arguments(p)
    p.add_argument("--date", help="the UTC day to generate (default: yesterday)")
    p.add_argument("--users", type=int, default=3000, help="number of users (default 3000)")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.set_defaults(func=cmd_sample_data)

    p = sub.add_parser("tables", help="list the lake's tables with versions and row counts",
                       epilog="example: pipelines tables --json")
    add_env_arguments(p)
    p.add_argument("--json", action="store_true", help="print the tables as JSON (table, version, rows, location)")
    p.set_defaults(func=cmd_tables)

    p = sub.add_parser("schemas", help="list, check or register the event schemas",
                       epilog="examples:\n  pipelines schemas check\n  pipelines schemas register --env dev",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=["list", "check", "register"],
                   help="list: types and versions; check: every schema valid and backward compatible with the "
                        "version before; register: into the environment's Apicurio Registry")
    add_env_arguments(p)
    p.set_defaults(func=cmd_schemas)

    p = sub.add_parser("quarantine", help="list quarantined lines by reason, or replay them",
                       epilog="examples:\n  pipelines quarantine list --reason wrong_type --limit 5\n"
                              "  pipelines quarantine replay --reason unknown_event_type\n"
                              "  pipelines quarantine list --media --reason corrupt\n"
                              "  pipelines quarantine replay --media --reason too_large   (after a limit was raised)",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=["list", "replay"],
                   help="list: counts by reason and a sample of rows; replay: re-validate against the current "
                        "schemas and move what now passes into silver (with --media: inspect the files again "
                        "with the present decoders and limits, and move what now decodes into metadata)")
    p.add_argument("--media", action="store_true", help="media files (silver/quarantine/media) instead of events")
    p.add_argument("--reason", action="append", help="only this reason code (repeatable)")
    p.add_argument("--limit", type=int, default=20, help="rows to show with list (default 20)")
    p.add_argument("--json", action="store_true", help="print the counts and rows (list) or the replay's result as "
                                                        "JSON")
    add_env_arguments(p)
    p.set_defaults(func=cmd_quarantine)

    dataset_cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, RegistryError, BuildError, ValueError, LookupError, OSError) as e:
        logger.error("%s", e)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
