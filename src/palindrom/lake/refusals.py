"""The record of the landing files an ingest refused (too large, a corrupt .gz, a name Spark cannot
read, ...): a row each time a file is refused for a reason other than the one recorded for it last
(so a rerun that refuses the same file for the same reason commits nothing), with why.

An ingest records its refusals, then fails naming them (`--on-refusal fail`, the default) or, in
the jobs (`--on-refusal record`), succeeds: there `check_landing`, a task of its own that is not
retried, fails naming the files. A refusal is the same on every attempt, so as the ingest's own
failure it was retried in vain and held the job's later tasks back by the retry intervals (5
minutes each).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping

from pyspark.sql.types import StringType, StructField, StructType, TimestampType

from palindrom.lake import tables
from palindrom.lake.files import list_files, not_taken
from palindrom.lake.paths import Lake, TableRef
from palindrom.logging import logger

REFUSALS_SCHEMA = StructType([
    StructField("landing", StringType(), False),  # the landing source: events, images, audio, video
    StructField("source_file", StringType(), False),  # relative to that landing folder
    StructField("batch_id", StringType(), False),  # the run that refused it
    StructField("refused_at", TimestampType(), False),
    StructField("reason", StringType(), False),
])


class IngestRefused(RuntimeError):
    """Landing files that an ingest refused are still in landing (raised by the ingest or check_landing)."""

    def __init__(self, refused: dict[str, str]):  # landing URI → why
        files = f"{len(refused)} landing file{'s' * (len(refused) != 1)}"
        super().__init__(f"{files} refused by the ingest, left in landing (remove, rename or "
                         "rewrite each; a file over the size limit is taken once the limit is raised): "
                         + "; ".join(map(": ".join, sorted(refused.items()))))


def record(ref: TableRef, batch_id: str, refused_at: dt.datetime, refused: Mapping[tuple[str, str], str]) -> None:
    """Append a run's refusals, (landing source, file name) → why, less those the record already
    holds as that file's latest reason."""
    latest = _latest_reasons(ref) if refused else {}
    if new := [(landing, name, batch_id, refused_at, why) for (landing, name), why in sorted(refused.items())
               if latest.get((landing, name)) != why]:
        tables.append_small(ref, new, REFUSALS_SCHEMA)


def report(refused: dict[str, str], task: str, on_refusal: str) -> None:
    """After `record`: with `on_refusal` "fail", fail naming the files (landing URI → why); else log them."""
    refusal = IngestRefused(refused)
    if on_refusal == "fail":
        raise refusal
    logger.warning("%s: %s (check_landing fails naming them)", task, refusal)


def still_refused(lake: Lake, ref: TableRef, taken: Callable[[str], Collection[str]]) -> dict[str, str]:
    """The refused files still in landing and not taken in since (`taken(source)`: the names its
    ingest has taken; a raised limit lets a refused file in), as landing URI → the latest reason.
    Read without Spark: the record by delta-rs, a listing and `taken` only for a source with refusals."""
    latest = _latest_reasons(ref)
    found = {}
    for landing in sorted({source for source, _ in latest}):
        folder = lake.landing(landing)
        waiting = {f.name for f in not_taken(list_files(folder), taken(landing))}
        found |= {f"{folder}/{name}": why for (source, name), why in latest.items()
                  if source == landing and name in waiting}
    return dict(sorted(found.items()))


def _latest_reasons(ref: TableRef) -> dict[tuple[str, str], str]:
    """(landing source, file name) → the reason of its latest refusal in the record (by delta-rs)."""
    latest: dict[tuple[str, str], tuple[dt.datetime, str]] = {}
    for row in tables.read_small(ref, ["landing", "source_file", "refused_at", "reason"]):
        key = (row["landing"], row["source_file"])
        if key not in latest or row["refused_at"] >= latest[key][0]:
            latest[key] = (row["refused_at"], row["reason"])
    return {key: why for key, (_, why) in latest.items()}
