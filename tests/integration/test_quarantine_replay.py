"""`pipelines quarantine replay`: lines that pass the current schemas leave quarantine, by the
same dedup rules, and every line stays accounted for."""

import json
import shutil

import deltalake
import pytest

from palindrom import quality
from palindrom.events.registry import FileSchemaRegistry
from palindrom.lake import tables
from palindrom.lake.paths import Lake, native_uri
from pipelines import cli
from pipelines.bronze import ingest_events
from pipelines.gold import aggregate_events
from pipelines.silver import clean_events, replay_quarantine
from tests.conftest import lake_path

pytestmark = pytest.mark.integration

PAYMENT_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "additionalProperties": False,
    "required": ["event_id", "event_type", "schema_version", "occurred_at", "user_id", "payload"],
    "properties": {
        "event_id": {"type": "string", "minLength": 1, "maxLength": 128},
        "event_type": {"type": "string", "enum": ["payment.completed"]},
        "schema_version": {"type": "integer", "minimum": 1},
        "occurred_at": {"type": "string", "format": "date-time"},
        "user_id": {"type": "string", "minLength": 1},
        "session_id": {"type": "string"},
        "source": {"type": "string", "enum": ["web", "ios", "android", "api"]},
        "payload": {"type": "object", "additionalProperties": False, "required": ["amount_cents"],
                    "properties": {"amount_cents": {"type": "integer", "minimum": 0}}},
    },
}


def line(event_id, event_type, payload, at="2026-11-20T10:00:00Z"):
    return json.dumps({"event_id": event_id, "event_type": event_type, "schema_version": 1, "occurred_at": at,
                       "user_id": "u", "payload": payload})


def test_replay_moves_what_now_passes_and_keeps_the_rest(spark_session, lake_config, tmp_path, repo_registry,
                                                         monkeypatch, capsys):
    landing = lake_path(lake_config) / "landing" / "events"
    landing.mkdir(parents=True)
    (landing / "day.jsonl").write_text("\n".join([
        line("e1", "user.action", {"action": "view", "target": "t"}),
        line("p1", "payment.completed", {"amount_cents": 100}),
        line("p1", "payment.completed", {"amount_cents": 100}),  # identical copy
        line("p2", "payment.completed", {"amount_cents": -5}),   # fails the new schema too
        "{not json",
        line("e1", "payment.completed", {"amount_cents": 7}),  # passes the new schema, but e1 is in silver
        line("p3", "payment.completed", {"amount_cents": 1}).replace('"schema_version": 1', '"schema_version": 3'),
    ]) + "\n")
    ingest_events.run(spark_session, lake_config)
    clean_events.run(spark_session, lake_config, registry=repo_registry)
    aggregate_events.run(spark_session, lake_config)

    schemas = tmp_path / "schemas"
    shutil.copytree(repo_registry.directory, schemas)
    newer = FileSchemaRegistry(schemas)
    assert newer.register("payment.completed", PAYMENT_SCHEMA) == 1

    result = replay_quarantine.run(spark_session, lake_config, registry=newer)
    outcome = (result.replayed, result.moved_to_silver, result.identical_duplicates, result.still_quarantined,
               result.reason_or_detail_changed)
    assert outcome == (6, 1, 1, 4, 3)

    lake = Lake(lake_config.storage_root)
    silver = tables.read(spark_session, lake.table("silver.events"))
    assert silver.filter("event_id = 'p1'").select("payment_completed.amount_cents").first()[0] == 100
    quarantine = tables.read(spark_session, lake.table("silver.quarantine.events"))
    assert sorted((r["line_number"], r["reason"], r["schema_ref"]) for r in quarantine.collect()) == [
        (4, "invalid_value", "payment.completed/v1"), (5, "invalid_json", None),
        (6, "conflicting_duplicate", "payment.completed/v1"), (7, "unknown_schema_version", "envelope"),
    ]  # reasons brought up to date
    replays = tables.read(spark_session, lake.table("silver.quarantine.events_replays"))
    assert sorted((r["line_number"], r["outcome"]) for r in replays.collect()) == [
        (2, "moved_to_silver"), (3, "identical_duplicate")]
    replays_uri = native_uri(lake.table("silver.quarantine.events_replays").uri)
    assert deltalake.DeltaTable(replays_uri).to_pyarrow_table().num_rows == 2  # readable by delta-rs

    # The line the replay dropped as an identical duplicate is counted by its record alone.
    conserved = quality.events_conserved_in_lake(
        tables.read(spark_session, lake.table("bronze.events")), silver, quarantine,
        tables.read(spark_session, lake.table("silver.events_batches")), replays)
    assert conserved.passed, conserved.detail

    assert [str(d) for d in aggregate_events.run(spark_session, lake_config)] == ["2026-11-20"]
    daily = tables.read(spark_session, lake.table("gold.events_daily"))
    assert sorted((r["event_type"], r["event_count"]) for r in daily.collect()) == [
        ("payment.completed", 1), ("user.action", 1)]

    again = replay_quarantine.run(spark_session, lake_config, reasons=["invalid_json"], registry=newer)
    assert (again.replayed, again.moved_to_silver, again.still_quarantined, again.reason_or_detail_changed) == \
        (1, 0, 1, 0)

    # A version registered since: the same reason, its detail brought up to date.
    newest = FileSchemaRegistry(schemas)
    assert newest.register("payment.completed", PAYMENT_SCHEMA) == 2
    later = replay_quarantine.run(spark_session, lake_config, reasons=["unknown_schema_version"], registry=newest)
    assert (later.replayed, later.still_quarantined, later.reason_or_detail_changed) == (1, 1, 1)
    [(reason, detail)] = [(r["reason"], r["detail"]) for r in tables.read(
        spark_session, lake.table("silver.quarantine.events")).filter("line_number = 7").collect()]
    assert (reason, detail) == ("unknown_schema_version", "schema_version: 3 is not a registered version of "
                                                          "payment.completed (registered: 1, 2)")

    # The command (the repository's schemas): the same line re-validated, still refused; nothing committed.
    monkeypatch.setattr(cli, "_spark", lambda _: spark_session)
    names = ("silver.events", "silver.quarantine.events", "silver.quarantine.events_replays")
    versions = [tables.current_version(lake.table(name)) for name in names]
    assert cli.main(["quarantine", "replay", "--reason", "invalid_json", "--root", lake_config.storage_root]) == 0
    assert ": 1 lines re-validated, 0 moved to silver, 0 identical duplicates, 1 still quarantined " \
           "(0 with a new reason or detail)" in capsys.readouterr().out
    assert [tables.current_version(lake.table(name)) for name in names] == versions


def test_clean_and_replay_never_add_an_event_twice(spark_session, lake_config, tmp_path, repo_registry, monkeypatch):
    """Replay moves p1 into silver while clean_events, holding a later copy of p1, is between classifying
    and writing: clean_events writes nothing to silver and fails; run again, it finds the copy an
    identical duplicate of what replay moved."""
    landing = lake_path(lake_config) / "landing" / "events"
    landing.mkdir(parents=True)
    (landing / "day1.jsonl").write_text("\n".join([
        line("e1", "user.action", {"action": "view", "target": "t"}),
        line("p1", "payment.completed", {"amount_cents": 100}),  # not a registered type yet
    ]) + "\n")
    ingest_events.run(spark_session, lake_config)
    clean_events.run(spark_session, lake_config, registry=repo_registry)
    schemas = tmp_path / "schemas"
    shutil.copytree(repo_registry.directory, schemas)
    newer = FileSchemaRegistry(schemas)
    newer.register("payment.completed", PAYMENT_SCHEMA)
    (landing / "day2.jsonl").write_text("\n".join([
        line("p1", "payment.completed", {"amount_cents": 100}),
        line("e2", "user.action", {"action": "view", "target": "t"}),
    ]) + "\n")
    ingest_events.run(spark_session, lake_config)

    write_new_events = clean_events.append_new_events

    def replay_comes_first(*args, **kwargs):
        assert replay_quarantine.run(spark_session, lake_config, registry=newer).moved_to_silver == 1
        write_new_events(*args, **kwargs)

    monkeypatch.setattr(clean_events, "append_new_events", replay_comes_first)
    with pytest.raises(clean_events.SilverChanged, match="another writer added events"):
        clean_events.run(spark_session, lake_config, registry=newer)
    monkeypatch.undo()

    result = clean_events.run(spark_session, lake_config, registry=newer)
    assert (result.lines, result.to_silver, result.identical_duplicates) == (2, 1, 1)
    lake = Lake(lake_config.storage_root)
    silver = tables.read(spark_session, lake.table("silver.events"))
    assert sorted(r["event_id"] for r in silver.collect()) == ["e1", "e2", "p1"]
    conserved = quality.events_conserved_in_lake(
        *(tables.read(spark_session, lake.table(name)) for name in
          ("bronze.events", "silver.events", "silver.quarantine.events", "silver.events_batches",
           "silver.quarantine.events_replays")))
    assert conserved.passed, conserved.detail
