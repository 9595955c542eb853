"""The Databricks notebooks in notebooks/ run top to bottom as plain Python, as they do on a laptop
(outside Databricks their widgets fall back to PIPELINES_ENV and PIPELINES_ROOT), against a lake
holding every table and a release of each shipped dataset. A notebook's product is what it shows, so
these check its printed tables and lines against the tables they come from."""

from __future__ import annotations

import runpy

import pytest

from palindrom.config import REPO_ROOT
from palindrom.data import releases
from palindrom.lake import tables
from palindrom.lake.paths import Lake

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("training")]  # shares training_lake

NOTEBOOKS = {path.stem: path for path in sorted((REPO_ROOT / "notebooks").glob("*.py"))}


def run_notebook(name: str, root: str, monkeypatch, capsys) -> str:
    monkeypatch.setenv("PIPELINES_ENV", "local")
    monkeypatch.setenv("PIPELINES_ROOT", root)
    runpy.run_path(str(NOTEBOOKS[name]), run_name="__main__")
    return capsys.readouterr().out


def test_every_notebook_is_tested():
    assert set(NOTEBOOKS) == {"explore_events", "explore_media", "explore_training_datasets"}


def test_explore_events(spark_session, training_lake, monkeypatch, capsys):
    config, _ = training_lake
    out = run_notebook("explore_events", config.storage_root, monkeypatch, capsys)
    lake = Lake(config.storage_root)
    for name in ("bronze.events", "silver.events", "silver.quarantine.events", "gold.events_daily"):
        ref = lake.table(name)
        rows = tables.read(spark_session, ref).count()
        assert f"{name:<34} v{tables.current_version(ref):<4} {rows:>10,}" in out
    reasons = {r["reason"] for r in tables.read(spark_session, lake.table("silver.quarantine.events")).collect()}
    assert reasons
    assert all(f"|{reason}" in out for reason in reasons)  # the quarantine by reason
    assert "|2026-11-26|conversation.message|" in out  # the daily counts, from gold


def test_explore_media(spark_session, training_lake, monkeypatch, capsys):
    config, _ = training_lake
    out = run_notebook("explore_media", config.storage_root, monkeypatch, capsys)
    metadata = tables.read(spark_session, Lake(config.storage_root).table("silver.media_metadata"))
    for row in metadata.groupBy("media_type", "mime_type").count().collect():  # the first table, row by row
        assert f"|{row['media_type']:>10}|{row['mime_type']:>12}|{row['count']:>5}|" in out
    assert "|image     |photos/lying-extension.jpg|image/png|" in out  # the file that lies about its type
    # The nearest images to the first one: itself first, at cosine similarity 1.
    nearest = [line for line in out.splitlines() if line[:5].replace(".", "").isdigit()]
    assert len(nearest) == 5
    assert nearest[0].startswith("1.000  ")


def test_explore_training_datasets(spark_session, training_lake, monkeypatch, capsys):
    config, _ = training_lake
    out = run_notebook("explore_training_datasets", config.storage_root, monkeypatch, capsys)
    for release in releases.list_releases(config):
        assert f"{release.dataset}@{release.release}: {release.manifest.rows:,} rows" in out
    chat = releases.resolve(config, "chat_sft")  # the notebook's default dataset
    assert releases.read_file(chat, "README.md").decode() in out  # its card, printed whole
