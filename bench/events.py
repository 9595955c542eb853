"""Events-path benchmark: our jobs vs the bare Spark doing the same work, in one run.

    .venv/bin/python bench/events.py                 # 1,000,000 events (the issue's size)
    .venv/bin/python bench/events.py --events 200000 --runs 3
    .venv/bin/python bench/events.py --events 200000 --only ingest
    .venv/bin/python bench/events.py --only clean --dirt 0.01   # 1% of the lines dirty or duplicated

For each stage: one warm-up run of each variant, then `--runs` timed runs of each, the two variants
interleaved (in alternating order); the median is reported.
Ratio = bare median / ours median (1.0 = as fast as bare Spark; the goals: ingest >= 0.8, clean >= 0.5).
- ingest: `ingest_events.run` vs whole-file text read -> split on newlines -> Delta append, twice:
  into a fresh lake (both create their tables), and into tables that already hold an earlier file
  (the daily run's case: ours also looks up which files it has taken).
- clean:  `clean_events.run` vs `from_json` with the envelope schema -> Delta append, same bronze rows.
Peak memory is the driver JVM's high-water RSS (VmHWM) and the Python driver's max RSS.
Where clean's time goes: the seconds between its successive progress messages (median per step).
Writes bench/results/events.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import logging
import os
import random
import re
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pyspark.sql import functions as F

from palindrom.config import REPO_ROOT, load_config
from palindrom.spark import get_spark
from pipelines.bronze import ingest_events
from pipelines.sample_data import dirty_lines, generate_events
from pipelines.silver import clean_events

ENVELOPE_SCHEMA = ("event_id string, event_type string, schema_version long, occurred_at string, "
                   "user_id string, session_id string, source string, payload string")


def generate(folder: Path, n_events: int, files: int, dirt: float = 0.0) -> int:
    """n_events lines (the sample generator's events) split over `files` files; returns bytes.
    With `dirt` > 0, that share of the lines is the sample data's dirt (`dirty_lines`: invalid lines,
    identical and conflicting duplicates of recent events), twelve lines at a time."""
    folder.mkdir(parents=True)
    rng = random.Random(11)
    handles = [(folder / f"events-{i:04d}.jsonl").open("wb") for i in range(files)]
    written, day, recent = 0, dt.date(2026, 11, 26), []
    dirt_every = round(12 / dirt) - 12 if dirt else 0  # valid events between two sets of twelve dirty lines

    def write(line: bytes) -> None:
        nonlocal written
        handles[written % files].write(line + b"\n")
        written += 1

    while written < n_events:
        for event in generate_events(rng, day, 2000):
            event["event_id"] = f"{event['event_id']}-{written}"
            write(json.dumps(event).encode())
            if dirt_every:
                recent.append(event)
                if len(recent) == dirt_every:
                    for line in dirty_lines(rng, recent)[:n_events - written]:
                        write(line)
                    recent = []
            if written >= n_events:
                break
        day += dt.timedelta(days=1)
    for h in handles:
        h.close()
    return sum(p.stat().st_size for p in folder.iterdir())


def link_tree(source: Path, target: Path) -> None:
    shutil.copytree(source, target, copy_function=os.link)


Variant = tuple[Callable[[int], object], Callable[[object], object]]  # (prepare run i, the timed work)


def timed_pair(stage: str, ours: Variant, bare: Variant, runs: int) -> tuple[list[float], list[float]]:
    """Both variants' runs interleaved round by round, each round in the other order than the one
    before (ours-bare, bare-ours, ...), so that this shared host's changes of speed during a run weigh
    on both alike rather than on whichever ran later. Round 0 is each variant's warm-up."""
    variants, times = {"ours": ours, "bare": bare}, {"ours": [], "bare": []}
    for i in range(runs + 1):
        for name in ("ours", "bare") if i % 2 == 0 else ("bare", "ours"):
            prepare, work = variants[name]
            state = prepare(i)
            started = time.perf_counter()
            work(state)
            elapsed = time.perf_counter() - started
            print(f"  {f'{stage} {name}':<30} {'warm-up' if i == 0 else f'run {i}':<8} {elapsed:7.2f}s", flush=True)
            if i:
                times[name].append(elapsed)
    return times["ours"], times["bare"]


class StepClock(logging.Handler):
    """Where a job's time goes: the seconds from each of its log messages to the next (the first from
    the run's start, the last to its end), by message template, per run of `timed(work)`."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.marks: list[tuple[float, str]] = []
        self.runs: list[dict[str, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.marks.append((record.created, str(record.msg)))

    def timed(self, work: Callable[[object], object]) -> Callable[[object], None]:
        def run(state: object) -> None:
            self.marks = [(time.time(), "start")]
            work(state)
            self.marks.append((time.time(), "end of run"))
            steps: dict[str, float] = {}
            for (before, _), (at, message) in itertools.pairwise(self.marks):
                step = "until " + re.sub(r"^\w+: |\s*\(.*?\)|\s*%\w", "", message)
                steps[step] = steps.get(step, 0.0) + at - before
            self.runs.append(steps)
        return run

    def medians(self, skip: int = 1) -> dict[str, float]:
        """Each step's median over the runs after the first `skip` (the warm-up)."""
        runs = self.runs[skip:]
        return {step: round(statistics.median(r.get(step, 0.0) for r in runs), 2) for step in runs[0]} if runs else {}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="events to generate (default 1,000,000)")
    parser.add_argument("--files", type=int, default=8, help="landing files they are split into (default 8)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each variant after the warm-up (default 3)")
    parser.add_argument("--only", choices=("ingest", "clean"), help="one stage (clean still ingests its input once)")
    parser.add_argument("--dirt", type=float, default=0.0,
                        help="share of the lines that are the sample data's dirt (e.g. 0.01); default: none")
    parser.add_argument("--out", default=str(REPO_ROOT / "bench" / "results" / "events.json"),
                        help="the JSON results file (default: bench/results/events.json)")
    args = parser.parse_args()
    if not 0 <= args.dirt <= 0.5:
        parser.error(f"--dirt {args.dirt}: a share of the lines between 0 and 0.5")

    work_dir = Path(tempfile.mkdtemp(prefix="bench-events-"))
    spark = get_spark(load_config("local").spark.model_copy(update={"ui_enabled": False}), "bench-events")
    cores = spark.sparkContext.defaultParallelism
    try:
        landing = work_dir / "landing-data"
        t = time.perf_counter()
        size = generate(landing, args.events, args.files, args.dirt)
        print(f"generated {args.events:,} lines, {args.dirt:.1%} dirt ({size / 1e6:.0f} MB, {args.files} files) in "
              f"{time.perf_counter() - t:.0f}s; Spark {spark.version}, {cores} cores", flush=True)

        def fresh_root(name: str) -> Path:
            root = work_dir / name
            shutil.rmtree(root, ignore_errors=True)
            return root

        def ours_ingest_prepare(i: int):
            root = fresh_root(f"ingest-ours-{i}")
            link_tree(landing, root / "landing" / "events")
            return load_config("local", str(root))

        seed = work_dir / "seed"
        generate(seed, 2000, 1)
        (seed / "events-0000.jsonl").rename(seed / "earlier.jsonl")

        def ours_ingest_existing_prepare(i: int):
            root = fresh_root(f"ingest-ours-existing-{i}")
            link_tree(seed, root / "landing" / "events")
            config = load_config("local", str(root))
            ingest_events.run(spark, config)
            for f in landing.iterdir():
                os.link(f, root / "landing" / "events" / f.name)
            return config

        def bare_ingest(i_root: Path, landed: Path | None = None) -> None:
            lines = (
                spark.read.text(str(landed or i_root / "landing" / "events"), wholetext=True)
                .select(F.input_file_name().alias("source_file"), F.posexplode(F.split("value", "\n")))
                .filter(F.length(F.trim("col")) > 0)
                .select("source_file", (F.col("pos") + 1).alias("line_number"),
                        F.encode("col", "UTF-8").alias("raw"), F.col("col").alias("text"))
            )
            lines.write.format("delta").mode("append").save(str(i_root / "bare-bronze"))

        def bare_ingest_prepare(i: int) -> Path:
            root = fresh_root(f"ingest-bare-{i}")
            link_tree(landing, root / "landing" / "events")
            return root

        def bare_ingest_existing_prepare(i: int) -> Path:
            root = fresh_root(f"ingest-bare-existing-{i}")
            bare_ingest(root, seed)
            return root

        times: dict[str, tuple[list[float], list[float]]] = {}
        if args.only in (None, "ingest"):
            times["ingest"] = timed_pair("ingest", (ours_ingest_prepare, lambda c: ingest_events.run(spark, c)),
                                         (bare_ingest_prepare, bare_ingest), args.runs)
            times["ingest_existing_tables"] = timed_pair(
                "ingest, existing tables", (ours_ingest_existing_prepare, lambda c: ingest_events.run(spark, c)),
                (bare_ingest_existing_prepare, lambda root: bare_ingest(root, landing)), args.runs)
            last_ingest = args.runs
        else:
            ingest_events.run(spark, ours_ingest_prepare(0))
            last_ingest = 0

        # Clean: both variants start from the same bronze rows (those of the last ingest).
        bronze_root = work_dir / f"ingest-ours-{last_ingest}"

        def ours_clean_prepare(i: int):
            root = fresh_root(f"clean-ours-{i}")
            shutil.copytree(bronze_root / "bronze", root / "bronze")
            return load_config("local", str(root))

        def bare_clean_prepare(i: int) -> Path:
            return fresh_root(f"clean-bare-{i}")

        def bare_clean(root: Path) -> None:
            bronze = spark.read.format("delta").load(str(bronze_root / "bronze" / "events"))
            parsed = bronze.select(F.from_json("text", ENVELOPE_SCHEMA).alias("e"), "batch_id", "source_file",
                                   "line_number")
            parsed.select("e.*", "batch_id", "source_file", "line_number") \
                .write.format("delta").mode("append").save(str(root / "silver"))

        clean_steps = StepClock()
        if args.only in (None, "clean"):
            job_log = logging.getLogger("palindrom")
            job_log.addHandler(clean_steps)
            try:
                times["clean"] = timed_pair(
                    "clean", (ours_clean_prepare, clean_steps.timed(lambda c: clean_events.run(spark, c))),
                    (bare_clean_prepare, bare_clean), args.runs)
            finally:
                job_log.removeHandler(clean_steps)

        jvm_pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
        with open(f"/proc/{jvm_pid}/status") as status:
            jvm_peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
        result = {
            "events": args.events, "dirt": args.dirt, "bytes": size, "files": args.files, "cores": cores,
            "spark": spark.version, "runs": args.runs,
            "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            **{stage: {"ours_s": statistics.median(ours), "bare_s": statistics.median(bare)}
               for stage, (ours, bare) in times.items()},
            **({"clean_steps_s": steps} if (steps := clean_steps.medians()) else {}),
            "peak_driver_jvm_rss_mb": round(jvm_peak_kb / 1024),
            "peak_driver_python_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }
        for stage, goal in (("ingest", 0.8), ("ingest_existing_tables", 0.8), ("clean", 0.5)):
            if stage not in result:
                continue
            r = result[stage]
            r["ratio"] = round(r["bare_s"] / r["ours_s"], 3)
            r["goal"] = goal
            r["events_per_s_ours"] = round(args.events / r["ours_s"])
            print(f"{stage:<22} ours {r['ours_s']:7.2f}s  bare {r['bare_s']:7.2f}s  ratio {r['ratio']:.2f} "
                  f"(goal >= {goal})  {r['events_per_s_ours']:,} events/s")
        for step, seconds in result.get("clean_steps_s", {}).items():
            print(f"  clean, {step:<60} {seconds:6.2f}s")
        print(f"peak driver memory: JVM {result['peak_driver_jvm_rss_mb']} MB, "
              f"Python {result['peak_driver_python_rss_mb']} MB")
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {out}")
    finally:
        spark.stop()
        shutil.rmtree(work_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
