"""`pipelines dataset …`: build, list, show, print the card of, and export training-dataset releases.

Only `build` starts Spark, and only where a build could make a release (`unchanged_release` decides
that from the Delta logs first); the others read the releases through delta-rs, without a JVM.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from palindrom.config import load_config
from pipelines.tasks import add_env_arguments

EXAMPLES = """\
examples:
  pipelines dataset build chat_sft                    build a release (none if nothing changed)
  pipelines dataset build pretrain_text --force       build even if nothing changed
  pipelines dataset build configs/datasets/chat_sft.yaml --build-date 2026-11-27
  pipelines dataset list                              every committed release
  pipelines dataset show chat_sft@latest              a release's manifest in short (--json: all of it)
  pipelines dataset card chat_sft@2                   print its dataset card (README.md)
  pipelines dataset export chat_sft@latest --format hf --out /tmp/chat_sft
  pipelines dataset export pretrain_text@1 --format parquet --out /tmp/pretrain
"""


def cmd_build(args: argparse.Namespace) -> int:
    from palindrom.spark import get_spark
    from palindrom.training.spec import load_spec
    from pipelines.gold.build_training_data import (
        BuildResult,
        build,
        build_date_from,
        no_new_release,
        unchanged_release,
    )

    config = load_config(args.env, args.root)
    spec = load_spec(args.spec)
    build_date = build_date_from(args)
    latest = None if args.force else unchanged_release(config, spec, build_date)
    if latest is not None:  # decided without starting Spark
        result = BuildResult(spec.name, None, no_new_release(latest), latest)
    else:
        spark = get_spark(config.spark, app_name=f"dataset-build-{spec.name}", storage_root=config.storage_root)
        result = build(spark, config, spec, build_date, force=args.force)
    if args.json:
        print(json.dumps({"dataset": result.dataset, "release": result.release, "detail": result.detail,
                          "content_digest": result.manifest.content_digest if result.manifest else None}))
    else:
        print(f"{result.dataset}: {result.detail}")
        if result.release is not None:
            print(f"  card: {result.manifest.card_uri}\n  load: load_training_dataset({result.dataset!r}, "
                  f"release={result.release})")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from palindrom.data.releases import list_releases

    releases = list_releases(load_config(args.env, args.root), args.name)
    if args.json:
        print(json.dumps([{"dataset": r.dataset, "release": r.release, "created_at": r.manifest.created_at,
                           "rows": r.manifest.rows, "tokens": r.manifest.total_tokens,
                           "content_digest": r.manifest.content_digest} for r in releases], indent=2))
        return 0
    if not releases:
        print("no releases yet: build one with `pipelines dataset build <spec>`")
    for r in releases:
        m = r.manifest
        print(f"  {r.dataset + '@' + str(r.release):<28} {m.created_at[:19]}  {m.rows:>9,} rows  "
              f"{m.total_tokens:>12,} tokens  digest {m.content_digest[:16]}")
    return 0


def _resolve(args: argparse.Namespace):
    from palindrom.data.releases import parse_reference, resolve

    name, release = parse_reference(args.reference)
    return resolve(load_config(args.env, args.root), name, release)


def cmd_show(args: argparse.Namespace) -> int:
    release = _resolve(args)
    m = release.manifest
    if args.json:
        print(m.model_dump_json(indent=2))
        return 0
    print(f"{m.dataset}@{m.release}  build {m.build_id}  created {m.created_at}  ({m.kind}, {m.packing}, "
          f"sequence length {m.sequence_length})")
    print(f"  rows {m.rows:,}  tokens {m.total_tokens:,}  content digest {m.content_digest}")
    print("  inputs: " + ", ".join(f"{i.table}@v{i.version}" for i in m.inputs))
    print(f"  tokenizer: {m.tokenizer.origin} {m.tokenizer.reference} (vocabulary {m.tokenizer.vocab_size:,}, "
          f"sha256 {m.tokenizer.sha256[:16]})")
    for stage in m.stages:
        dropped = ", ".join(f"{reason} {n:,}" for reason, n in stage.dropped.items()) or "nothing dropped"
        print(f"  {stage.stage:<22} {stage.documents_in:>8,} → {stage.documents_out:>8,}  ({dropped})")
    for split, per_source in m.tokens.items():
        for source, t in per_source.items():
            print(f"  {split:<10} {source:<16} {t.rows:>8,} rows {t.tokens:>11,} tokens")
    print(f"  mlflow run {m.mlflow_run_id} ({m.mlflow_tracking_uri})\n  card {m.card_uri}")
    return 0


def cmd_card(args: argparse.Namespace) -> int:
    from palindrom.data.releases import read_file

    sys.stdout.write(read_file(_resolve(args), "README.md").decode())
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from palindrom.data.export import export_release

    release = _resolve(args)
    files = export_release(release, args.format, Path(args.out))
    loader = "datasets.load_from_disk" if args.format == "hf" else "datasets.load_dataset"
    if args.json:
        print(json.dumps({"dataset": release.dataset, "release": release.release, "format": args.format,
                          "out": str(args.out), "files": [str(f) for f in files], "load_with": loader}))
        return 0
    print(f"exported {release.dataset}@{release.release} ({args.format}, {len(files)} files) to {args.out}; "
          f"load it with {loader}({str(args.out)!r})")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dataset", help="build, list, show, print the card of, or export training-dataset releases",
                       description=__doc__, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="action", required=True)

    b = actions.add_parser("build", help="build a release of one spec (Spark)",
                           epilog="example: pipelines dataset build chat_sft --force")
    b.add_argument("spec", help="dataset name (configs/datasets/<name>.yaml) or a spec file")
    b.add_argument("--force", action="store_true", help="build even if inputs, spec and code are unchanged")
    b.add_argument("--build-date", default="", help="UTC date relative date ranges resolve against (default: today)")
    b.add_argument("--json", action="store_true", help="print the outcome as JSON")
    b.set_defaults(func=cmd_build)

    lst = actions.add_parser("list", help="committed releases", epilog="example: pipelines dataset list --json")
    lst.add_argument("name", nargs="?", help="only this dataset")
    lst.add_argument("--json", action="store_true", help="print the releases as JSON")
    lst.set_defaults(func=cmd_list)

    for action, func, help_text in (("show", cmd_show, "a release's manifest"),
                                    ("card", cmd_card, "print a release's dataset card")):
        a = actions.add_parser(action, help=help_text, epilog=f"example: pipelines dataset {action} chat_sft@latest")
        a.add_argument("reference", metavar="NAME[@RELEASE]", help="dataset and release number or 'latest' "
                                                                   "(default: latest)")
        if action == "show":
            a.add_argument("--json", action="store_true", help="the whole manifest")
        a.set_defaults(func=func)

    e = actions.add_parser("export", help="write a release as hf, parquet or jsonl, with card and tokenizer",
                           epilog="examples:\n"
                                  "  pipelines dataset export chat_sft@latest --format hf --out /tmp/chat_sft\n"
                                  "  pipelines dataset export chat_sft@2 --format jsonl --out /tmp/chat_sft_2",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("reference", metavar="NAME@RELEASE", help="dataset and release number or 'latest'")
    e.add_argument("--format", required=True, choices=["hf", "parquet", "jsonl"],
                   help="hf: for datasets.load_from_disk; parquet or jsonl: data/<split>-*.<ext>, for "
                        "datasets.load_dataset(OUT)")
    e.add_argument("--out", required=True, help="an empty or new folder")
    e.add_argument("--json", action="store_true", help="print the files written as JSON")
    e.set_defaults(func=cmd_export)

    for parser in (b, lst, e, *(actions.choices[a] for a in ("show", "card"))):
        add_env_arguments(parser)
