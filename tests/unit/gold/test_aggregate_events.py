import datetime as dt
import json

from pyspark.testing import assertDataFrameEqual

from palindrom.lake import tables
from palindrom.lake.paths import Lake
from pipelines.bronze import ingest_events
from pipelines.gold import aggregate_events
from pipelines.gold.aggregate_events import EVENTS_DAILY_SCHEMA, aggregate_daily
from pipelines.silver import clean_events
from tests.conftest import compact_and_vacuum, lake_path


def test_aggregate_daily_counts_per_user_date_and_type(spark_session):
    d1, d2 = dt.date(2026, 11, 25), dt.date(2026, 11, 26)
    events = spark_session.createDataFrame(
        [("e1", "u1", d1, "user.action"), ("e2", "u1", d1, "user.action"), ("e3", "u1", d2, "user.action"),
         ("e4", "u2", d1, "feedback.rating")],
        "event_id string, user_id string, event_date date, event_type string",
    )
    expected = spark_session.createDataFrame(
        [("u1", d1, "user.action", 2), ("u1", d2, "user.action", 1), ("u2", d1, "feedback.rating", 1)],
        EVENTS_DAILY_SCHEMA,
    )
    assertDataFrameEqual(aggregate_daily(events), expected)


def test_a_vacuumed_change_feed_recomputes_every_date(spark_session, lake_config, repo_registry):
    landing = lake_path(lake_config) / "landing" / "events"
    landing.mkdir(parents=True)

    def day(name, *dates):
        (landing / name).write_text("".join(
            json.dumps({"event_id": f"{name}-{i}", "event_type": "user.action", "schema_version": 1,
                        "occurred_at": f"{d}T10:00:00Z", "user_id": "u", "payload": {"action": "view", "target": "t"}})
            + "\n" for i, d in enumerate(dates)))
        ingest_events.run(spark_session, lake_config)
        assert clean_events.up_to_date(lake_config) is None  # a bronze batch to clean
        clean_events.run(spark_session, lake_config, registry=repo_registry)
        assert clean_events.up_to_date(lake_config) == "no bronze batches to clean"
        assert aggregate_events.up_to_date(lake_config) is None  # silver has a new version

    assert aggregate_events.up_to_date(lake_config) == "silver.events does not exist yet; nothing to aggregate"
    day("one.jsonl", "2026-11-20", "2026-11-21")
    assert [str(d) for d in aggregate_events.run(spark_session, lake_config)] == ["2026-11-20", "2026-11-21"]
    assert aggregate_events.up_to_date(lake_config) == "up to date with silver.events version 1"
    day("two.jsonl", "2026-11-22")
    silver = Lake(lake_config.storage_root).table("silver.events")
    compact_and_vacuum(spark_session, silver.uri)  # the files both runs added are gone

    assert [str(d) for d in aggregate_events.run(spark_session, lake_config)] == [
        "2026-11-20", "2026-11-21", "2026-11-22"]
    daily = tables.read(spark_session, Lake(lake_config.storage_root).table("gold.events_daily"))
    assert sorted((str(r["event_date"]), r["event_count"]) for r in daily.collect()) == [
        ("2026-11-20", 1), ("2026-11-21", 1), ("2026-11-22", 1)]
