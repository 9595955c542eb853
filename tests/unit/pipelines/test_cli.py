import argparse
import importlib
import json
import re
from importlib.metadata import entry_points, version

import pytest

from palindrom.lake.paths import Lake
from pipelines.cli import build_parser
from tests.conftest import LAKE_FOLDER, run_cli

ENTRY_POINTS = [s for s in entry_points(group="console_scripts") if s.module.startswith("pipelines.")
                and s.name != "pipelines"]


@pytest.mark.parametrize("media", [False, True])
def test_an_unknown_quarantine_reason_code_is_named_with_the_known_ones(tmp_path, media):
    flags = ["--media"] * media
    result = run_cli("quarantine", "list", *flags, "--root", str(tmp_path), "--reason", "invalid-json", check=False)
    assert result.returncode == 2
    kind, known = ("media", "unrecognised_format") if media else ("event", "invalid_json")
    assert f"no such {kind} reason code: invalid-json (the codes: " in result.stderr
    assert known in result.stderr


@pytest.mark.parametrize(("task", "kind", "known"), [("replay_quarantine", "event", "invalid_json"),
                                                     ("replay_media_quarantine", "media", "corrupt")])
def test_a_replay_task_takes_reasons_as_one_parameter_and_refuses_unknown_ones(task, kind, known, capsys):
    module = importlib.import_module(f"pipelines.silver.{task}")
    with pytest.raises(SystemExit) as exited:
        module.main(["--reasons", f"{known}, nope"])  # a job parameter: one string, commas between
    assert exited.value.code == 2
    assert f"no such {kind} reason code: nope (the codes: " in capsys.readouterr().err


@pytest.mark.parametrize(("job", "task", "params"), [
    ("events_quarantine_replay", "replay_quarantine", []),
    ("media_quarantine_replay", "replay_media_quarantine", ["--param", "reasons=corrupt,too_large"]),
])
def test_a_replay_job_with_nothing_quarantined_does_not_start_spark(tmp_path, job, task, params):
    result = run_cli("run", job, "--root", str(tmp_path / LAKE_FOLDER), *params)
    assert re.search(rf"{task}: silver\.quarantine\.\w+ holds no rows; nothing to do, Spark not started",
                     result.stderr), result.stderr
    assert "log4j" not in result.stderr


def test_tables_counts_with_spark_a_table_whose_log_states_no_row_count(spark_session, lake_config):
    ref = Lake(lake_config.storage_root).table("silver.events_batches")
    spark_session.conf.set("spark.databricks.delta.stats.collect", "false")
    try:
        spark_session.range(3).selectExpr("CAST(id AS STRING) AS batch_id").write.format("delta").save(ref.uri)
    finally:
        spark_session.conf.unset("spark.databricks.delta.stats.collect")
    listed = json.loads(run_cli("tables", "--json", "--root", lake_config.storage_root).stdout)
    assert [(row["table"], row["version"], row["rows"]) for row in listed] == [("silver.events_batches", 0, 3)]


def _parsers(parser: argparse.ArgumentParser, name: str = "pipelines"):
    """The parser and every subcommand's, with its command line."""
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def test_every_command_shows_examples_and_explains_each_argument():
    commands = dict(_parsers(build_parser()))
    assert {"pipelines run", "pipelines quarantine", "pipelines dataset export"} <= set(commands)
    assert {s.name for s in ENTRY_POINTS} == {  # the tasks, checked below
        "ingest_events", "check_landing", "clean_events", "aggregate_events", "ingest_media", "process_media",
        "build_training_data", "replay_quarantine", "replay_media_quarantine"}
    for name, parser in commands.items():
        assert "example" in (parser.epilog or ""), f"{name}: no examples in --help"
        for action in parser._actions:
            if not isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
                assert action.help, f"{name}: {action.option_strings or action.dest} has no help text"


def test_version_is_the_installed_packages(capsys):
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"pipelines {version('pipelines')}\n"


@pytest.mark.parametrize("script", ENTRY_POINTS)
def test_every_task_shows_examples_in_its_help(script, capsys):
    module = importlib.import_module(script.module)
    with pytest.raises(SystemExit) as exited:
        module.main(["--help"])
    assert exited.value.code == 0
    shown = capsys.readouterr().out
    assert f"usage: {script.name}" in shown
    assert f"examples:\n  {script.name}\n" in shown
