import json

import pytest

from palindrom.lake.paths import Lake
from tests.conftest import run_cli


@pytest.mark.parametrize("media", [False, True])
def test_an_unknown_quarantine_reason_code_is_named_with_the_known_ones(tmp_path, media):
    flags = ["--media"] * media
    result = run_cli("quarantine", "list", *flags, "--root", str(tmp_path), "--reason", "invalid-json", check=False)
    assert result.returncode == 2
    kind, known = ("media", "unrecognised_format") if media else ("event", "invalid_json")
    assert f"no such {kind} reason code: invalid-json (the codes: " in result.stderr
    assert known in result.stderr


def test_tables_counts_with_spark_a_table_whose_log_states_no_row_count(spark_session, lake_config):
    ref = Lake(lake_config.storage_root).table("silver.events_batches")
    spark_session.conf.set("spark.databricks.delta.stats.collect", "false")
    try:
        spark_session.range(3).selectExpr("CAST(id AS STRING) AS batch_id").write.format("delta").save(ref.uri)
    finally:
        spark_session.conf.unset("spark.databricks.delta.stats.collect")
    listed = json.loads(run_cli("tables", "--json", "--root", lake_config.storage_root).stdout)
    assert [(row["table"], row["version"], row["rows"]) for row in listed] == [("silver.events_batches", 0, 3)]
