"""The jobs' data-quality checks, run over the tables of the sample lake (events and media)."""

import pytest
from pyspark.sql import functions as F

from palindrom import quality
from palindrom.lake import tables
from palindrom.lake.paths import Lake


def read(spark, config, name):
    return tables.read(spark, Lake(config.storage_root).table(name))


def test_no_null_user_ids(spark_session, sample_lake):
    df = read(spark_session, sample_lake, "gold.events_daily")
    null_count = df.filter(F.col("user_id").isNull()).count()
    assert null_count == 0, f"Found {null_count} null user_ids"


def test_event_counts_positive(spark_session, sample_lake):
    df = read(spark_session, sample_lake, "gold.events_daily")
    invalid = df.filter(F.col("event_count") <= 0).count()
    assert invalid == 0, "Event counts must be positive"


def test_gold_checks(spark_session, sample_lake):
    assert all(r.passed for r in quality.events_daily_checks(read(spark_session, sample_lake, "gold.events_daily")))


def test_silver_event_ids_unique_and_users_present(spark_session, sample_lake):
    assert all(r.passed for r in quality.silver_events_checks(read(spark_session, sample_lake, "silver.events")))


def test_every_quarantine_row_has_a_reason(spark_session, sample_lake):
    quarantine = read(spark_session, sample_lake, "silver.quarantine.events")
    assert all(r.passed for r in quality.quarantine_checks(quarantine))


def test_conservation_over_all_batches(spark_session, sample_lake):
    identical = read(spark_session, sample_lake, "silver.events_batches").agg(F.sum("identical_duplicates")).first()[0]
    result = quality.events_conserved(
        read(spark_session, sample_lake, "bronze.events"),
        read(spark_session, sample_lake, "silver.events"),
        read(spark_session, sample_lake, "silver.quarantine.events"),
        identical,
    )
    assert result.passed, result.detail


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


def test_media_tables_checks(spark_session, sample_lake):
    metadata = read(spark_session, sample_lake, "silver.media_metadata")
    quarantine = read(spark_session, sample_lake, "silver.quarantine.media")
    results = quality.media_metadata_checks(metadata) + quality.media_quarantine_checks(quarantine)
    assert all(r.passed for r in results), [r for r in results if not r.passed]


def test_embedding_vectors_are_unit_length_and_sized(spark_session, sample_lake):
    embeddings = read(spark_session, sample_lake, "silver.media_embeddings")
    norms = embeddings.select("dim", F.size("vector").alias("n"),
                              F.aggregate("vector", F.lit(0.0), lambda acc, x: acc + x * x).alias("sq"))
    bad = norms.filter((F.col("n") != F.col("dim")) | (F.abs(F.col("sq") - 1) > 1e-4)).count()
    assert bad == 0, f"{bad} embeddings have the wrong size or are not unit length"
