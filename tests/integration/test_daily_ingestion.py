"""daily_ingestion end to end: sample data through the job's tasks in the order databricks.yml gives
(the sample_lake fixture)."""

import collections
import datetime as dt
import json
import random
import re

import deltalake
import pytest
from pyspark.sql import functions as F

from palindrom.lake import tables
from palindrom.lake.paths import Lake
from pipelines.bronze import ingest_events
from pipelines.gold import aggregate_events
from pipelines.sample_data import generate_events, write_sample_data
from pipelines.silver import clean_events
from tests.conftest import lake_path, run_cli

pytestmark = pytest.mark.integration
DAY, USERS = dt.date(2026, 11, 26), 600  # as the sample_lake fixture makes it


@pytest.fixture(scope="module")
def expected_events():
    """The generator's good events, recomputed here without the pipeline's validator."""
    return list(generate_events(random.Random(7), DAY, USERS))


def read(spark, config, name):
    return tables.read(spark, Lake(config.storage_root).table(name))


def test_every_line_is_accounted_for(spark_session, sample_lake, tmp_path, expected_events):
    summary = write_sample_data(tmp_path / "landing", DAY, USERS)  # same seed: the same lines
    assert read(spark_session, sample_lake, "bronze.events").count() == summary.lines
    silver = read(spark_session, sample_lake, "silver.events")
    assert silver.count() == len(expected_events)
    assert {r["event_id"] for r in silver.select("event_id").collect()} == {e["event_id"] for e in expected_events}
    quarantine = read(spark_session, sample_lake, "silver.quarantine.events")
    reasons = collections.Counter(r["reason"] for r in quarantine.collect())
    assert reasons == {"conflicting_duplicate": 1, "invalid_json": 2, "wrong_type": 1, "unknown_event_type": 1,
                       "missing_field": 1, "invalid_timestamp": 1, "duplicate_key": 1, "invalid_utf8": 1,
                       "not_an_object": 1}
    batches = read(spark_session, sample_lake, "silver.events_batches").collect()
    assert sum(b["identical_duplicates"] for b in batches) == 3
    assert sum(b["lines"] for b in batches) == summary.lines


def test_daily_counts_are_exact(spark_session, sample_lake, expected_events):
    expected = collections.Counter(
        (e["user_id"], dt.datetime.fromisoformat(e["occurred_at"]).astimezone(dt.UTC).date(), e["event_type"])
        for e in expected_events
    )
    daily = read(spark_session, sample_lake, "gold.events_daily").collect()
    assert {(r["user_id"], r["event_date"], r["event_type"]): r["event_count"] for r in daily} == dict(expected)


def test_silver_payload_columns_are_queryable(spark_session, sample_lake, expected_events):
    silver = read(spark_session, sample_lake, "silver.events")
    v2_languages = {r[0] for r in silver.filter("schema_version = 2 AND event_type = 'conversation.message'")
                    .select("conversation_message.language").distinct().collect()}
    assert v2_languages == {"en", "de", "fr", "es", "ja", "uk"}
    first = expected_events[0]
    row = silver.filter(F.col("event_id") == first["event_id"]).first()
    assert row["conversation_message"]["text"] == first["payload"]["text"]
    assert row["occurred_at"] == dt.datetime.fromisoformat(first["occurred_at"]).astimezone(dt.UTC).replace(
        tzinfo=None)


def test_a_rerun_commits_nothing(spark_session, sample_lake):
    lake = Lake(sample_lake.storage_root)
    before = {ref.name: tables.current_version(ref) for ref in lake.tables()}
    ingest_events.run(spark_session, sample_lake)
    clean_events.run(spark_session, sample_lake)
    aggregate_events.run(spark_session, sample_lake)
    assert {ref.name: tables.current_version(ref) for ref in lake.tables()} == before


def test_a_rerun_of_the_job_decides_without_starting_spark(sample_lake):
    landing = Lake(sample_lake.storage_root).landing("events")
    assert ingest_events.up_to_date(sample_lake) == f"no new files in {landing}"
    assert clean_events.up_to_date(sample_lake) == "no bronze batches to clean"
    assert aggregate_events.up_to_date(sample_lake).startswith("up to date with silver.events version ")
    rerun = run_cli("run", "daily_ingestion", "--root", sample_lake.storage_root)
    for task in ("ingest_events", "clean_events", "aggregate_events"):
        assert re.search(rf"{task}: [^\n]+; nothing to do, Spark not started", rerun.stderr), rerun.stderr
    assert "check_landing: no file that ingest_events refused waits in landing" in rerun.stderr
    assert "SparkContext" not in rerun.stderr
    assert "log4j" not in rerun.stderr


def test_a_refused_file_fails_the_job_through_check_landing_once_and_holds_nothing_back(lake_config, monkeypatch):
    monkeypatch.delenv("SPARK_LOCAL_IP", raising=False)  # as a user's shell has it (this process's Spark set it)
    landing = lake_path(lake_config) / "landing" / "events"
    landing.mkdir(parents=True)
    (landing / "day.jsonl.bz2").write_bytes(b"BZh9")
    run = run_cli("run", "daily_ingestion", "--root", lake_config.storage_root, check=False)
    assert run.returncode == 1
    assert "job daily_ingestion failed: task check_landing failed" in run.stderr
    outcomes = {key: (status, detail.strip()) for key, status, detail in
                re.findall(r"^  (\w+) +(\w+) +[\d.]+s(.*)$", run.stdout, re.M)}
    assert outcomes == {  # one attempt each (a retry shows as "2 attempts"); the others were not held back
        "ingest_events": ("succeeded", ""), "check_landing": ("failed", "exit code 1"),
        "clean_events": ("succeeded", ""), "aggregate_events": ("succeeded", "")}
    assert f"{lake_config.storage_root}/landing/events/day.jsonl.bz2: compressed with bzip2" in run.stderr
    assert "resolves to a loopback address" not in run.stderr  # local Spark binds to loopback, not the host name


def test_every_table_is_readable_by_delta_rs(spark_session, sample_lake):
    lake = Lake(sample_lake.storage_root)
    for ref in lake.tables():
        if ref.name in ("silver.quarantine.events_replays", "silver.quarantine.media_replays",
                        "gold.training_releases", "bronze.events_refusals", "bronze.media_refusals"):
            continue  # written only by the quarantine replays, the gold build, a refusing ingest (tests read them so)
        delta_rs = deltalake.DeltaTable(ref.uri.removeprefix("file:"))
        assert delta_rs.to_pyarrow_table().num_rows == tables.read(spark_session, ref).count(), ref.name


def test_the_tables_command_states_each_tables_version_and_row_count(spark_session, sample_lake):
    listed = json.loads(run_cli("tables", "--json", "--root", sample_lake.storage_root).stdout)
    existing = [ref for ref in Lake(sample_lake.storage_root).tables() if tables.exists(ref)]
    assert [row["table"] for row in listed] == [ref.name for ref in existing]
    for row, ref in zip(listed, existing, strict=True):
        assert (row["version"], row["rows"]) == (tables.current_version(ref), tables.read(spark_session, ref).count())


def test_file_statistics_cover_the_columns_reads_select_by(spark_session, sample_lake):
    lake = Lake(sample_lake.storage_root)

    def columns_with_statistics(name: str) -> set[str]:
        """Columns with a minimum in the statistics of the files the table's commits added (read from
        its log: delta-rs 1.6.6 shows only some of the columns `delta.dataSkippingStatsColumns` names)."""
        log = spark_session.read.json(f"{lake.table(name).uri}/_delta_log/*.json").filter("add IS NOT NULL")
        found = set()
        for row in log.select("add.stats").collect():
            found |= set(json.loads(row["stats"])["minValues"])
        return found

    assert columns_with_statistics("bronze.events") == {"batch_id", "ingested_at", "source_file", "line_number"}
    assert columns_with_statistics("silver.events") == {
        "event_id", "event_type", "occurred_at", "event_date", "user_id", "bronze_batch_id", "ingested_at"}


def test_quarantine_list_shows_reasons_and_raw_lines(sample_lake):
    result = run_cli("quarantine", "list", "--root", sample_lake.storage.root, "--json")
    listing = json.loads(result.stdout)
    assert sum(listing["by_reason"].values()) == 10
    single_quoted = [r for r in listing["rows"] if r["raw_text"] == "{'event_id': 'single-quoted'}"]
    assert single_quoted[0]["reason"] == "invalid_json"
    assert single_quoted[0]["source_file"] == "2026-11-26/events-0004.jsonl"
    text = run_cli("quarantine", "list", "--root", sample_lake.storage.root, "--limit", "3").stdout
    assert text.startswith("10 quarantined lines in silver.quarantine.events (")
    assert "the first 3 of them:\n" in text
    none = run_cli("quarantine", "list", "--root", sample_lake.storage.root, "--reason", "line_too_long")
    assert none.stdout.strip() == "no quarantined lines with reason line_too_long"
