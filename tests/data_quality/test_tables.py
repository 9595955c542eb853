"""The jobs' data-quality checks, run over the tables of the lake under check (events and media): the
sample lake, or the lake --lake-root names."""

import functools

import pytest
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from palindrom import quality
from palindrom.lake.paths import MEDIA_FOLDERS
from pipelines.silver.process_media import unaccounted


def test_no_null_user_ids(lake_table):
    df = lake_table("gold.events_daily")
    null_count = df.filter(F.col("user_id").isNull()).count()
    assert null_count == 0, f"Found {null_count} null user_ids"


def test_event_counts_positive(lake_table):
    df = lake_table("gold.events_daily")
    invalid = df.filter(F.col("event_count") <= 0).count()
    assert invalid == 0, "Event counts must be positive"


def test_gold_checks(lake_table):
    quality.enforce(quality.events_daily_checks(lake_table("gold.events_daily")))


def test_silver_event_ids_unique_and_users_present(lake_table):
    quality.enforce(quality.silver_events_checks(lake_table("silver.events")))


def test_every_quarantine_row_has_a_reason(lake_table):
    quality.enforce(quality.quarantine_checks(lake_table("silver.quarantine.events")))


def test_conservation_over_all_batches(lake_table):
    quality.enforce([quality.events_conserved_in_lake(
        lake_table("bronze.events"), lake_table("silver.events"), lake_table("silver.quarantine.events"),
        lake_table("silver.events_batches", optional=True),
        lake_table("silver.quarantine.events_replays", optional=True))])


def test_a_failed_check_names_itself(spark_session):
    daily = spark_session.createDataFrame([("u", 0)], "user_id string, event_count long")
    checks = quality.events_daily_checks(daily.withColumn("event_date", F.current_date()))
    failures = [r for r in checks if not r.passed]
    assert [r.name for r in failures] == ["gold.events_daily: every event_count positive"]
    with pytest.raises(quality.DataQualityError, match="found 1 rows with event_count <= 0"):
        quality.enforce(failures)


def test_silver_checks_find_repeated_event_ids_and_missing_users(spark_session):
    silver = spark_session.createDataFrame([("e1", "u"), ("e1", "u"), ("e2", None), ("e3", "u")],
                                           "event_id string, user_id string")
    results = {r.name: r for r in quality.silver_events_checks(silver)}
    assert not results["silver.events: unique event_id"].passed
    assert results["silver.events: unique event_id"].detail == "1 values appear more than once, e.g. 'e1'"
    assert results["silver.events: no null user_id"].detail == "found 1 null user_ids"
    clean = quality.silver_events_checks(silver.filter("event_id = 'e3'"))
    assert all(r.passed for r in clean)


def test_media_tables_checks(lake_table):
    quality.enforce(quality.media_metadata_checks(lake_table("silver.media_metadata"))
                    + quality.media_quarantine_checks(lake_table("silver.quarantine.media")))


def test_every_bronze_media_file_is_described_or_quarantined(lake_table):
    bronze = [rows.select(F.lit(media_type).alias("media_type"), "path", "sha256")
              for media_type, folder in MEDIA_FOLDERS.items()
              if (rows := lake_table(f"bronze.{folder}", optional=True)) is not None]
    if not bronze:
        lake_table("bronze.images")  # no media ingested: skipped under --lake-root, else a failure
    quality.enforce([quality.media_conserved(unaccounted(functools.reduce(DataFrame.unionByName, bronze),
                                                         lake_table("silver.media_metadata"),
                                                         lake_table("silver.quarantine.media")))])


def test_embedding_vectors_are_unit_length_and_sized(lake_table):
    embeddings = lake_table("silver.media_embeddings")
    norms = embeddings.select("dim", F.size("vector").alias("n"),
                              F.aggregate("vector", F.lit(0.0), lambda acc, x: acc + x * x).alias("sq"))
    bad = norms.filter((F.col("n") != F.col("dim")) | (F.abs(F.col("sq") - 1) > 1e-4)).count()
    assert bad == 0, f"{bad} embeddings have the wrong size or are not unit length"
