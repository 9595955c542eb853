import contextlib
import hashlib
import json

import pytest
from delta.tables import DeltaTable
from pyspark.sql import Row
from pyspark.sql import functions as F

from palindrom.events.transforms import classify_duplicates, contested_event_ids, validate_events
from palindrom.lake import tables
from palindrom.lake.paths import Lake
from pipelines.bronze import ingest_events
from pipelines.silver import clean_events
from pipelines.silver.clean_events import deduplicate_events
from tests.conftest import lake_path, remove_data_files
from tests.unit.events.conformance import MAX_LINE_BYTES, line_bytes, load_cases

BATCH = "20261126T000000000000Z-aaaaaaaa"


def test_deduplicate_events(spark_session):
    # The data-engineering standard's example, as written there.
    input_df = spark_session.createDataFrame([
        {"id": 1, "value": "a"},
        {"id": 1, "value": "a"},  # duplicate
        {"id": 2, "value": "b"},
    ])

    result = deduplicate_events(input_df)

    assert result.count() == 2


def event(event_id: str, text: str = "hi", at: str = "2026-11-26T10:00:00Z", **extra) -> str:
    return json.dumps({"event_id": event_id, "event_type": "conversation.message", "schema_version": 1,
                       "occurred_at": at, "user_id": "u", **extra,
                       "payload": {"conversation_id": "c", "turn": 0, "role": "user", "text": text}})


def bronze_frame(spark, lines, batch=BATCH, source_file="f.jsonl"):
    rows = [(batch, source_file, i, line.encode(), line) for i, line in enumerate(lines, start=1)]
    schema = "batch_id string, source_file string, line_number long, raw binary, text string"
    return spark.createDataFrame(rows, schema).withColumn("ingested_at", F.current_timestamp())


@pytest.fixture(scope="module")
def snapshot(repo_registry):
    return repo_registry.snapshot()


def fates(frame):
    return {(r["line_number"], r["fate"], r["reason"]) for r in frame.collect()}


@contextlib.contextmanager
def only_hinted_broadcasts(spark):
    """Joins without a broadcast hint shuffle both sides, however small (as at production sizes)."""
    automatic = spark.conf.get("spark.sql.autoBroadcastJoinThreshold")
    spark.conf.set("spark.sql.autoBroadcastJoinThreshold", "-1")
    try:
        yield
    finally:
        spark.conf.set("spark.sql.autoBroadcastJoinThreshold", automatic)


@pytest.fixture(params=["every line ranked", "contested lines ranked", "contested lines ranked, run ids shuffled"])
def classify(request, spark_session):
    """classify_duplicates every way: the outcome must not depend on it."""
    shuffled = request.param.endswith("shuffled")
    lines = clean_events.BROADCAST_RUN_IDS_LIMIT + (1 if shuffled else 0)  # past the limit: no broadcast hint

    cached = []

    def run(validated, silver):
        if request.param == "every line ranked":
            return classify_duplicates(validated, silver)
        return clean_events.classify(validated, silver, lines, cached)

    with only_hinted_broadcasts(spark_session) if shuffled else contextlib.nullcontext():
        yield run
    for frame in cached:
        frame.unpersist()


def test_first_valid_occurrence_wins_identical_dropped_conflicting_quarantined(spark_session, snapshot, classify):
    lines = [
        "{broken",                                   # invalid: does not count as the first occurrence
        event("e1", text="  hello "),                # first valid e1
        event("e1", text="hello", at="2026-11-26T11:00:00+01:00", unknown="x"),  # same content
        event("e1", text="bye"),                     # conflicting
        event("e2"),
        json.dumps({"event_id": "e2"}),              # invalid: e2 stays uncontested
    ]
    validated = validate_events(bronze_frame(spark_session, lines), snapshot, MAX_LINE_BYTES)
    assert [r["event_id"] for r in contested_event_ids(validated, None).collect()] == ["e1"]
    assert fates(classify(validated, None)) == {
        (1, "quarantine", "invalid_json"),
        (2, "silver", None),
        (3, "identical_duplicate", None),
        (4, "quarantine", "conflicting_duplicate"),
        (5, "silver", None),
        (6, "quarantine", "missing_field"),
    }
    survivors = deduplicate_events(validated)
    assert sorted(r["event_id"] for r in survivors.collect()) == ["e1", "e2"]


def test_duplicates_across_runs_compare_with_silver(spark_session, snapshot, classify):
    first = classify_duplicates(
        validate_events(bronze_frame(spark_session, [event("e1"), event("e2")]), snapshot, MAX_LINE_BYTES), None)
    silver = first.filter("fate = 'silver'")
    later = validate_events(
        bronze_frame(spark_session, [event("e1"), event("e2", text="changed"), event("e3")], batch="b2"),
        snapshot, MAX_LINE_BYTES)
    for broadcast_run_ids in (True, False):
        contested = contested_event_ids(later, silver, broadcast_run_ids)
        assert sorted(r["event_id"] for r in contested.collect()) == ["e1", "e2"]
    assert fates(classify(later, silver)) == {
        (1, "identical_duplicate", None), (2, "quarantine", "conflicting_duplicate"), (3, "silver", None),
    }
    # The very lines that put e1 and e2 into silver (an interrupted run, retried) are recognised.
    retried = validate_events(bronze_frame(spark_session, [event("e1"), event("e2")]), snapshot, MAX_LINE_BYTES)
    assert fates(classify(retried, silver)) == {
        (1, "already_in_silver", None), (2, "already_in_silver", None)}


def test_past_the_limit_of_contested_ids_every_line_is_ranked(spark_session, snapshot, monkeypatch):
    validated = validate_events(bronze_frame(spark_session, [event("e1"), event("e1"), event("e2"), event("e2"),
                                                             event("e3")]), snapshot, MAX_LINE_BYTES)
    assert sorted(clean_events.contested_ids(validated, None, 5)) == ["e1", "e2"]
    monkeypatch.setattr(clean_events, "CONTESTED_IDS_LIMIT", 1)
    assert clean_events.contested_ids(validated, None, 5) is None


def test_with_nothing_contested_a_lines_fate_is_its_validity_with_no_join(spark_session, snapshot):
    silver = spark_session.createDataFrame([("e9",)], "event_id string")
    validated = validate_events(bronze_frame(spark_session, [event("e1"), "not json", event("e2")]), snapshot,
                                MAX_LINE_BYTES)
    cached = []
    classified = clean_events.classify(validated, silver, 3, cached)
    assert "Join" not in classified._jdf.queryExecution().optimizedPlan().toString()
    assert cached == []
    assert fates(classified) == {(1, "silver", None), (2, "quarantine", "invalid_json"), (3, "silver", None)}


def test_the_contested_lines_are_ranked_once_and_kept(spark_session, snapshot):
    validated = validate_events(bronze_frame(spark_session, [event("e1"), event("e1", text="other"), event("e2")]),
                                snapshot, MAX_LINE_BYTES)
    cached = []
    classified = clean_events.classify(validated, None, 3, cached)
    assert fates(classified) == {(1, "silver", None), (2, "quarantine", "conflicting_duplicate"), (3, "silver", None)}
    [ranked] = cached
    assert ranked.is_cached
    assert sorted(r["line_number"] for r in ranked.collect()) == [1, 2]
    ranked.unpersist()


def test_silver_is_scanned_against_the_broadcast_run_ids_not_shuffled(spark_session, snapshot):
    silver = spark_session.createDataFrame([("e1",), ("e9",)], "event_id string")
    validated = validate_events(bronze_frame(spark_session, [event("e1"), event("e2")]), snapshot, MAX_LINE_BYTES)

    def joins(broadcast_run_ids):
        plan = contested_event_ids(validated, silver, broadcast_run_ids)._jdf.queryExecution().executedPlan()
        return [j for j in ("BroadcastHashJoin", "SortMergeJoin") if j in plan.toString()]

    with only_hinted_broadcasts(spark_session):
        assert (joins(True), joins(False)) == (["BroadcastHashJoin"], ["SortMergeJoin"])


def test_conflict_detail_names_where_the_event_was_first_seen(spark_session, snapshot):
    validated = validate_events(bronze_frame(spark_session, [event("e9"), event("e9", text="x")]),
                                snapshot, MAX_LINE_BYTES)
    row = classify_duplicates(validated, None).filter("fate = 'quarantine'").first()
    assert row["detail"] == (f"event_id e9 was first seen at {BATCH}:f.jsonl:1 (batch:file:line) "
                             "with different content")


def test_spark_validation_agrees_with_the_conformance_file(spark_session, snapshot):
    """The same cases through the Spark path the job runs (Arrow batches, typed columns)."""
    cases = [c for c in load_cases() if "line" in c or "line_base64" in c]
    rows = []
    for i, case in enumerate(cases, start=1):
        raw = line_bytes(case)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        rows.append((BATCH, "conformance.jsonl", i, raw, text))
    bronze = spark_session.createDataFrame(
        rows, "batch_id string, source_file string, line_number long, raw binary, text string"
    ).withColumn("ingested_at", F.current_timestamp())
    validated = validate_events(bronze, snapshot, MAX_LINE_BYTES).select("line_number", "is_valid", "reason")
    got = {r["line_number"]: ("valid" if r["is_valid"] else r["reason"]) for r in validated.collect()}
    expected = {i: case["expect"] for i, case in enumerate(cases, start=1)}
    assert got == expected


def test_typed_columns_hold_normalised_utc_values(spark_session, snapshot):
    line = event("e5", text=" cafe\u0301 ", at="2026-11-26T01:30:00.1234567+09:00", source="ios")
    row = validate_events(bronze_frame(spark_session, [line]), snapshot, MAX_LINE_BYTES).first()
    assert row["occurred_at"].isoformat() == "2026-11-25T16:30:00.123456"  # session time zone is UTC
    assert str(row["event_date"]) == "2026-11-25"
    assert row["conversation_message"]["text"] == "café"
    assert row["source"] == "ios"
    assert row["user_action"] is None


def test_equal_content_builds_identical_rows(spark_session, snapshot):
    """Unknown fields, number formats elsewhere, offsets and NFC/strip do not change an event's row."""
    properties = {"b": [1, {"z": None, "a": "x"}], "a": "é"}
    fast = json.dumps({"event_id": "a1", "event_type": "user.action", "schema_version": 1,
                       "occurred_at": "2026-11-26T10:00:00.5+01:00", "user_id": "u",
                       "payload": {"action": "view", "target": "t", "properties": properties}})
    slow = fast.replace('"target": "t"', '"target": "t", "x": 1.5')  # an unknown field
    plain = event("m1", text="café")
    needs_nfc = event("m1", text=" cafe\u0301")
    rows = validate_events(bronze_frame(spark_session, [fast, slow, plain, needs_nfc]), snapshot,
                           MAX_LINE_BYTES).orderBy("line_number").collect()
    assert all(r["is_valid"] for r in rows)
    for a, b in (rows[0], rows[1]), (rows[2], rows[3]):
        assert a.asDict() | {"line_number": 0} == b.asDict() | {"line_number": 0}
    assert rows[0]["user_action"]["properties"] == '{"a":"é","b":[1,{"a":"x","z":null}]}'


def test_the_content_hash_is_of_the_typed_columns_as_json(spark_session, snapshot):
    """Silver keeps each event's hash and a later copy is compared with it: the hashed text must stay
    as it is (another would make a re-sent event a conflicting duplicate of its own first copy)."""
    line = event("m1", text=" cafe\u0301", at="2026-11-26T11:00:00.5+01:00")
    row = validate_events(bronze_frame(spark_session, [line]), snapshot, MAX_LINE_BYTES).first()
    hashed = ('{"event_id":"m1","event_type":"conversation.message","schema_version":1,'
              '"occurred_at":"2026-11-26T10:00:00.500000Z","user_id":"u","event_date":"2026-11-26",'
              '"conversation_message":{"conversation_id":"c","turn":0,"role":"user","text":"caf\u00e9"}}')
    assert row["content_hash"] == hashlib.sha256(hashed.encode()).hexdigest()


def test_a_read_of_one_date_skips_the_files_of_runs_without_it(spark_session, lake_config, repo_registry):
    """silver.events is not partitioned: gold's read of the dates a run touched is served by the file
    statistics on event_date."""
    landing = lake_path(lake_config) / "landing" / "events"
    landing.mkdir(parents=True)
    for day in ("2026-11-25", "2026-11-26"):
        lines = [event(f"{day}-{i}", at=f"{day}T{i:02d}:00:00Z") for i in range(3)]
        (landing / f"{day}.jsonl").write_text("\n".join(lines) + "\n")
        ingest_events.run(spark_session, lake_config)
        clean_events.run(spark_session, lake_config, registry=repo_registry)
    silver = tables.read(spark_session, Lake(lake_config.storage_root).table("silver.events"))
    one_day = silver.filter(F.col("event_date") == "2026-11-26")
    assert one_day.count() == 3
    assert 0 < len(one_day.inputFiles()) < len(silver.inputFiles())


def test_the_quarantine_append_reads_none_of_quarantines_rows(spark_session, lake_config, repo_registry):
    """A run appends the rejected lines of the batches quarantine holds none of, and learns which those
    are from the Delta log: no run reads quarantine's rows, however large it grows. Shown by removing
    the first run's quarantine files before the second run: a write that read them would fail."""
    landing = lake_path(lake_config) / "landing" / "events"
    landing.mkdir(parents=True)
    quarantine = Lake(lake_config.storage_root).table("silver.quarantine.events")
    for day in ("2026-11-25", "2026-11-26"):
        if day == "2026-11-26":
            remove_data_files(quarantine.uri)
        (landing / f"{day}.jsonl").write_text(f"{event(day)}\nnot json {day}\n")
        ingest_events.run(spark_session, lake_config)
        clean_events.run(spark_session, lake_config, registry=repo_registry)
    history = DeltaTable.forPath(spark_session, quarantine.uri).history().collect()
    writes = [c["operationMetrics"]["numOutputRows"] for c in history if c["operation"] == "WRITE"]
    assert writes == ["1", "1"]


def test_a_batch_with_rows_in_quarantine_is_not_written_again(spark_session, lake_config, repo_registry):
    """What the rerun of a run that died between its quarantine commit and its batch record finds: that
    batch's rejected lines are in, so only the other batches with rejected lines are written."""
    landing = lake_path(lake_config) / "landing" / "events"
    landing.mkdir(parents=True)
    (landing / "a.jsonl").write_text(f"{event('a')}\nnot json\n")
    first = ingest_events.run(spark_session, lake_config).batch_id
    clean_events.run(spark_session, lake_config, registry=repo_registry)
    quarantine = Lake(lake_config.storage_root).table("silver.quarantine.events")
    later, clean = "20991231T000000000000Z-bbbbbbbb", "20991231T000000000000Z-cccccccc"
    counts = {first: Row(to_quarantine=1), later: Row(to_quarantine=2), clean: Row(to_quarantine=0)}

    assert clean_events.quarantine_to_write(spark_session, quarantine, counts) == [later]
