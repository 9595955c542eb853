import datetime as dt

from pyspark.testing import assertDataFrameEqual

from pipelines.gold.aggregate_events import EVENTS_DAILY_SCHEMA, aggregate_daily, dates_predicate


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


def test_dates_predicate_is_a_sql_date_list():
    assert dates_predicate([dt.date(2026, 1, 2)]) == "event_date IN (DATE'2026-01-02')"
