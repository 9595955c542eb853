"""check_landing (bronze): fails, naming each file and why, while landing holds files that an ingest
refused and that are still there, not taken in since (the record: bronze/_refusals, see
`palindrom.lake.refusals`). A task of its own, not retried, after the ingest that records them
(run with `--on-refusal record`): a refusal is the same on every attempt. Reads the record and the
landing listing, without Spark.
"""

from __future__ import annotations

import argparse

from palindrom.config import PipelineConfig
from palindrom.lake import refusals, tables
from palindrom.lake.paths import Lake
from palindrom.logging import logger
from pipelines.bronze.ingest_events import recorded_files
from pipelines.tasks import task_main

INGESTS = ("events", "media")


def still_refused(lake: Lake, ingest: str) -> dict[str, str]:
    """Landing URI → why, for the files that ingest_events (`events`) or ingest_media (`media`) refused
    and that still wait in landing."""
    if ingest == "events":
        return refusals.still_refused(lake, lake.table("bronze.events_refusals"), lambda _: recorded_files(lake)[0])
    return refusals.still_refused(lake, lake.table("bronze.media_refusals"),
                                  lambda folder: tables.distinct_values(lake.table(f"bronze.{folder}"), "path"))


def run(_spark: object, config: PipelineConfig, ingest: str = "events") -> None:
    """Fail naming what still waits (`_spark`: unused, None from the entry point; in-process callers pass theirs)."""
    if found := still_refused(Lake(config.storage_root), ingest):
        raise refusals.IngestRefused(found)
    logger.info("check_landing: no file that ingest_%s refused waits in landing", ingest)


def main(argv: list[str] | None = None) -> int:
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--ingest", choices=INGESTS, default="events",
                            help="whose refusals: ingest_events' (events, the default) or ingest_media's (media)")

    return task_main("check_landing", "bronze", lambda spark, config, args: run(spark, config, args.ingest), __doc__,
                     argv, add_arguments,
                     examples=("check_landing --ingest media",), needs_spark=False)


if __name__ == "__main__":
    raise SystemExit(main())
