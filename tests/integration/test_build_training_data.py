"""build_training_data end to end on the sample lake: releases, no empty releases, determinism, the race
for a release number between two real processes, clear errors, and what training code reads back."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from huggingface_hub import DatasetCard
from mlflow import MlflowClient
from pyspark.sql import functions as F

from palindrom.config import load_config
from palindrom.data import releases
from palindrom.lake import tables
from palindrom.lake.native import read_table
from palindrom.lake.paths import Lake
from palindrom.training import BuildError, LostRace, documents, lineage, sequences
from palindrom.training.manifest import code_identity
from palindrom.training.spec import SpecError, load_spec
from palindrom.training.tokenization import TokenizerError
from pipelines.gold.build_training_data import build, reusable_input_digest, unchanged_release
from tests.conftest import BIN, BUILD_DATE, lake_path, run_cli

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("training")]
DATE = dt.date.fromisoformat(BUILD_DATE)
SHIPPED = ("chat_sft", "multimodal_captions", "pretrain_text")


def silver(spark, config, name):
    return tables.read(spark, Lake(config.storage_root).table(name))


def test_each_shipped_spec_makes_release_1_with_a_complete_manifest(spark_session, training_lake):
    config, results = training_lake
    assert {name: r.release for name, r in results.items()} == dict.fromkeys(SHIPPED, 1)
    for name in SHIPPED:
        m = releases.resolve(config, name, "latest").manifest
        assert m.inputs[0].table == "silver.events"
        assert m.inputs[0].version == tables.current_version(Lake(config.storage_root)
                                                             .table("silver.events"))
        assert m.spec_text == load_spec(name).text
        assert m.stages[-1].documents_out > 0
        for earlier, later in zip(m.stages, m.stages[1:], strict=False):
            assert later.documents_in == earlier.documents_out
        for stage in m.stages:
            assert stage.documents_in - stage.documents_out == sum(stage.dropped.values())
        assert set(m.tokens) <= {"train", "validation", "test"}
        assert m.rows == sum(t.rows for per in m.tokens.values() for t in per.values())
        assert len(m.content_digest) == 64
        assert m.mlflow_run_id
        assert m.code.sha256
        assert m.code.package_version
        assert m.schema_versions.get("conversation.message" if name != "multimodal_captions" else "media.uploaded")
    chat = releases.resolve(config, "chat_sft").manifest
    assert chat.stages[0].dropped.get("negative_feedback", 0) > 0
    media = releases.resolve(config, "multimodal_captions").manifest
    assert media.stages[0].dropped.get("media_not_decoded", 0) > 0  # the deliberately broken sample files
    assert {i.table for i in media.inputs} == {"silver.events", "silver.media_metadata", "silver.media_embeddings"}
    mix = {x.source: x for x in releases.resolve(config, "pretrain_text").manifest.mix}
    assert mix["messages"].repeat == 1.0
    assert mix["captions"].repeat > 1.0  # few captions: up-sampled towards their 20 %


def test_the_card_parses_and_holds_no_row_content(spark_session, training_lake):
    config, _ = training_lake
    texts = {r[0] for r in silver(spark_session, config, "silver.events")
             .select(F.col(f"{documents.MESSAGE}.text")).where("event_type = 'conversation.message'").collect()}
    users = {r[0] for r in silver(spark_session, config, "silver.events").select("user_id").distinct().collect()}
    for name in SHIPPED:
        release = releases.resolve(config, name)
        text = releases.read_file(release, "README.md").decode()
        card = DatasetCard(text)
        assert card.data.palindrom["content_digest"] == release.manifest.content_digest
        assert "## How to load" in card.text
        assert not [t for t in texts if t and len(t) > 12 and t in text]
        assert not [u for u in users if u in text]
        assert releases.read_file(release, "sequence_lengths.png").startswith(b"\x89PNG")


def test_an_unchanged_build_makes_no_release_and_moves_no_table(spark_session, training_lake, monkeypatch):
    config, _ = training_lake
    lake = Lake(config.storage_root)
    watched = [lake.table("silver.events"), lake.table("gold.training_releases"), lake.training_dataset("chat_sft")]
    before = [tables.current_version(t) for t in watched]
    digested, digest = [], sequences.content_digest

    def counted_digest(df, columns):
        digested.append(1)
        return digest(df, columns)

    monkeypatch.setattr(sequences, "content_digest", counted_digest)
    # Decided from the Delta logs, without Spark (a task with nothing to do does not start it) ...
    latest = releases.resolve(config, "chat_sft").manifest
    assert unchanged_release(config, load_spec("chat_sft"), DATE) == latest
    assert unchanged_release(config, load_spec("chat_sft"), DATE + dt.timedelta(days=1)) is None  # cannot tell
    # ... and by the build itself.
    again = build(spark_session, config, load_spec("chat_sft"), DATE)
    assert again.release is None
    assert "no new release" in again.detail
    # The same input versions, spec, code and date ranges: the latest release's digest of its
    # candidate documents stands for theirs, which are not computed.
    assert digested == []
    # A day later the date ranges move: the candidates are digested, and are the same documents.
    next_day = build(spark_session, config, load_spec("chat_sft"), DATE + dt.timedelta(days=1))
    assert (next_day.release, digested) == (None, [1])
    assert [tables.current_version(t) for t in watched] == before


def test_the_latest_digest_stands_for_the_candidates_only_while_nothing_that_decides_them_changed(training_lake):
    config, _ = training_lake
    latest, spec, code = releases.resolve(config, "chat_sft").manifest, load_spec("chat_sft"), code_identity()

    def reused(manifest=latest, pinned=latest.inputs, code=code, date=DATE):
        return reusable_input_digest(manifest, list(pinned), spec, code, date)

    events = latest.inputs[0]
    assert reused() == latest.input_digest
    assert reused(manifest=None) is None
    assert reused(pinned=[events.model_copy(update={"version": events.version + 1})]) is None
    assert reused(pinned=[events.model_copy(update={"table_id": "another-table-at-that-path"})]) is None
    assert reused(manifest=latest.model_copy(update={"spec_sha256": "0" * 64})) is None
    assert reused(code=code.model_copy(update={"sha256": "0" * 64})) is None
    assert reused(date=DATE + dt.timedelta(days=1)) is None


def test_a_forced_build_is_the_next_release_with_the_same_rows_and_reused_tokenizer(spark_session, training_lake):
    config, _ = training_lake
    first = releases.resolve(config, "pretrain_text", 1).manifest
    # A build killed while it built release 2 left its run open; the forced build, committing 2, ends it.
    client = MlflowClient(lineage.tracking_uri(config))
    killed = client.create_run(lineage.experiment_id(config, "pretrain_text"), tags={
        "palindrom.build_id": "20261127T000000000000Z-killed00", "palindrom.release": str(first.release + 1),
        "palindrom.status": lineage.BUILDING}).info.run_id
    forced = build(spark_session, config, load_spec("pretrain_text"), DATE, force=True)
    assert forced.release == first.release + 1
    killed_run = client.get_run(killed)
    assert (killed_run.info.status, killed_run.data.tags["palindrom.status"]) == ("KILLED", "abandoned")
    assert client.get_run(forced.manifest.mlflow_run_id).info.status == "FINISHED"
    assert forced.manifest.content_digest == first.content_digest
    assert forced.manifest.tokenizer.trained_in_release == 1
    assert forced.manifest.tokenizer.sha256 == first.tokenizer.sha256


def test_two_concurrent_builds_race_for_one_number_and_agree(spark_session, sample_lake, training_lake,
                                                            tmp_path, monkeypatch):
    """Two builds of chat_sft on a fresh copy of the lake, one in a fresh process on local[1] with 7
    shuffle partitions, one here (local[2], 2 partitions), lined up at the commit point and let go
    together: one commits release 1, the other fails cleanly; its rows stay invisible and the next
    build removes them. The winner's rows and tokenizer equal the fixture's, digest for digest."""
    _, results = training_lake
    configs = tmp_path / "configs"
    shutil.copytree(Path(__file__).resolve().parents[2] / "configs", configs)
    local = yaml.safe_load((configs / "local.yaml").read_text())
    local["spark"].update({"master": "local[1]", "shuffle_partitions": 7})
    (configs / "local.yaml").write_text(yaml.safe_dump(local))
    root = tmp_path / "lake"
    shutil.copytree(lake_path(sample_lake), root)
    config = load_config("local", str(root))

    gate = tmp_path / "go"
    monkeypatch.setenv("PIPELINES_FAILPOINTS", "build_training_data.before_commit")
    monkeypatch.setenv("PIPELINES_FAILPOINT_GATE", str(gate))
    log = tmp_path / "build.log"
    process = subprocess.Popen([str(BIN / "build_training_data"), "--root", str(root), "--dataset", "chat_sft",
                                "--build-date", BUILD_DATE], stdout=subprocess.DEVNULL, stderr=log.open("w"),
                               env={**os.environ, "PIPELINES_CONFIG_DIR": str(configs)})
    here: dict[str, object] = {}

    def build_here() -> None:
        try:
            here["result"] = build(spark_session, config, load_spec("chat_sft"), DATE)
        except Exception as error:  # the loser's LostRace, asserted below
            here["error"] = error

    thread = threading.Thread(target=build_here)
    thread.start()
    try:
        deadline = time.monotonic() + 400
        while len(list(tmp_path.glob("go.reached.*"))) < 2:
            assert process.poll() is None, log.read_text()[-3000:]
            assert thread.is_alive(), here
            assert time.monotonic() < deadline, "the builds did not reach the commit point"
            time.sleep(0.5)
        gate.touch()
        code = process.wait(timeout=300)
        thread.join(timeout=300)
    finally:
        gate.touch()
        if process.poll() is None:
            process.kill()
    if code == 0:  # the other process won
        assert isinstance(here.get("error"), LostRace), here
        message = str(here["error"])
    else:
        message = log.read_text()
        assert code == 1, message[-3000:]
        assert "result" in here, here
        assert "LostRace" in message, message[-3000:]
    assert "chat_sft: release 1 was committed by build" in message, message[-3000:]

    (winner,) = releases.list_releases(config, "chat_sft")
    assert winner.release == 1
    assert winner.manifest.content_digest == results["chat_sft"].manifest.content_digest
    assert winner.manifest.tokenizer.sha256 == results["chat_sft"].manifest.tokenizer.sha256
    table = Lake(config.storage_root).training_dataset("chat_sft")

    def builds_of_release_1():
        return {r["build_id"] for r in tables.read(spark_session, table).filter(F.col("release") == 1)
                .select("build_id").distinct().collect()}

    (loser,) = builds_of_release_1() - {winner.manifest.build_id}  # its rows are there, but no reader sees them
    assert releases.read_rows(winner).num_rows == winner.manifest.rows
    files = lake_path(config) / "gold" / "training_datasets" / "_files" / "chat_sft"
    loser_manifest = json.loads((files / loser / "manifest.json").read_text())
    assert loser_manifest["content_digest"] == winner.manifest.content_digest  # other partitioning, same rows
    # The winner ends runs left open for its number; the loser, ending after or before it, sets its own.
    loser_run = MlflowClient(lineage.tracking_uri(config)).get_run(loser_manifest["mlflow_run_id"])
    assert (loser_run.info.status, loser_run.data.tags["palindrom.status"]) == ("FAILED", "lost_race")

    monkeypatch.delenv("PIPELINES_FAILPOINTS")
    assert unchanged_release(config, load_spec("chat_sft"), DATE) is None  # the loser's rows are to be removed
    following = build(spark_session, config, load_spec("chat_sft"), DATE)
    assert following.release is None  # nothing changed: no release, but the loser's leftovers are gone
    assert builds_of_release_1() == {winner.manifest.build_id}
    assert not (files / loser).exists()
    assert unchanged_release(config, load_spec("chat_sft"), DATE) == winner.manifest


def test_clear_errors_change_nothing(spark_session, training_lake, tmp_path, lake_config):
    config, _ = training_lake
    with pytest.raises(tables.TableNotFound, match=r"silver\.events"):
        build(spark_session, lake_config, load_spec("chat_sft"), DATE)  # an empty lake

    spec_text = load_spec("pretrain_text").text
    broken = tmp_path / "no_tokenizer.yaml"
    broken.write_text(spec_text.replace("train: {type: bpe, vocab_size: 8192}", "path: /nonexistent/tokenizer.json"))
    with pytest.raises(TokenizerError, match=r"/nonexistent/tokenizer\.json"):
        build(spark_session, config, load_spec(broken), DATE)

    old = tmp_path / "nothing_then.yaml"
    old.write_text(spec_text.replace("{from: -30d, to: today}", "{from: 2020-01-01, to: 2020-01-31}"))
    with pytest.raises(BuildError, match="no documents left after curation"):
        build(spark_session, config, load_spec(old), DATE)

    bad = tmp_path / "bad_split.yaml"
    bad.write_text(spec_text.replace("train: 0.98", "train: 0.5"))
    with pytest.raises(SpecError, match=r"bad_split.yaml: splits: .*must be 1"):
        load_spec(bad)
    names = {r.dataset for r in releases.list_releases(config)}
    assert not names & {"no_tokenizer", "nothing_then", "bad_split"}
    assert not (lake_path(config) / "gold" / "training_datasets" / "nothing_then").exists()


def test_exports_load_in_datasets_and_decode_back_to_the_documents(spark_session, training_lake, tmp_path):
    import datasets
    from tokenizers import Tokenizer

    config, _ = training_lake
    root = str(lake_path(config))
    for fmt in ("hf", "parquet", "jsonl"):
        run_cli("dataset", "export", "pretrain_text@1", "--format", fmt, "--out", str(tmp_path / fmt), "--root", root)
    exported = datasets.load_from_disk(str(tmp_path / "hf"))
    assert datasets.load_dataset(str(tmp_path / "parquet"))["train"].num_rows == exported["train"].num_rows
    assert datasets.load_dataset(str(tmp_path / "jsonl"))["validation"]["example_id"] == \
        exported["validation"]["example_id"]
    DatasetCard.load(tmp_path / "parquet" / "README.md")
    bracketed = tmp_path / "run [3]"  # a glob's character class to datasets: it would find no file
    refused = run_cli("dataset", "export", "pretrain_text@1", "--format", "parquet", "--out", str(bracketed),
                      "--root", root, check=False)
    assert refused.returncode != 0
    assert not bracketed.exists()
    assert f"{bracketed}: datasets.load_dataset finds a folder's files through glob patterns" in refused.stderr

    tokenizer = Tokenizer.from_file(str(tmp_path / "hf" / "tokenizer.json"))
    eos = tokenizer.token_to_id("<|eos|>")
    tokens: dict[str, list[int]] = {}
    for split in exported:
        for row in sorted(exported[split], key=lambda r: r["example_id"]):
            for token, index in zip(row["input_ids"], row["document_index"], strict=True):
                if index >= 0:
                    tokens.setdefault(row["document_ids"][index], []).append(token)
    decoded: dict[str, set[str]] = {}
    for doc, ids in tokens.items():
        assert ids[-1] == eos
        copies, current = [], []
        for t in ids:
            if t == eos:
                copies.append(tokenizer.decode(current, skip_special_tokens=False))
                current = []
            else:
                current.append(t)
        decoded[doc] = set(copies)
    events = silver(spark_session, config, "silver.events")
    expected = {r["document_id"]: r["text"] for r in documents.text_documents(
        documents.source_events(events, load_spec("pretrain_text").sources[0], DATE), "messages").collect()}
    expected.update({r["document_id"]: r["text"] for r in documents.text_documents(
        documents.source_events(events, load_spec("pretrain_text").sources[1], DATE), "captions").collect()
        if r["text"] is not None})
    assert decoded == {doc: {text} for doc, text in expected.items()}


def test_cli_lists_shows_and_prints_cards(training_lake):
    config, _ = training_lake
    root = str(lake_path(config))
    listed = json.loads(run_cli("dataset", "list", "--json", "--root", root).stdout)
    assert {r["dataset"] for r in listed} == set(SHIPPED)
    shown = json.loads(run_cli("dataset", "show", "chat_sft@latest", "--json", "--root", root).stdout)
    assert shown["release"] == max(r["release"] for r in listed if r["dataset"] == "chat_sft")
    card = run_cli("dataset", "card", "chat_sft@1", "--root", root).stdout
    assert DatasetCard(card).data.palindrom["release"] == 1
    missing = run_cli("dataset", "show", "chat_sft@99", "--root", root, check=False)
    assert missing.returncode == 2
    assert "chat_sft has no release 99" in missing.stderr
    # `pipelines tables` lists each dataset's table beside the lake's fixed ones (make run ends with it).
    lake = Lake(config.storage_root)
    in_tables = {r["table"]: r for r in json.loads(run_cli("tables", "--json", "--root", root).stdout)}
    for name in SHIPPED:
        ref = lake.training_dataset(name)
        assert (in_tables[ref.name]["location"], in_tables[ref.name]["rows"]) == (ref.uri, read_table(ref.uri).num_rows)


LOADER = """
import json, sys
sys.modules["pyspark"] = None  # as on a training box without Spark: any import of it fails
sys.modules["py4j"] = None
import mlflow
from palindrom.data import load_training_dataset
mlflow.set_tracking_uri(sys.argv[2])
mlflow.set_experiment("trainer")
with mlflow.start_run() as run:
    train = load_training_dataset("chat_sft", split="train", root=sys.argv[1])
inputs = mlflow.get_run(run.info.run_id).inputs.dataset_inputs
print(json.dumps({"rows": train.num_rows, "first": train[0]["example_id"],
                  "inputs": [[i.dataset.name, i.dataset.digest, json.loads(i.dataset.source)] for i in inputs]}))
"""


def test_training_code_loads_a_release_without_spark_and_logs_its_lineage(training_lake, tmp_path):
    config, _ = training_lake
    release = releases.resolve(config, "chat_sft")
    done = subprocess.run([sys.executable, "-c", LOADER, str(lake_path(config)), f"sqlite:///{tmp_path}/mlflow.db"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["rows"] == release.manifest.tokens["train"]["conversations"].rows
    assert out["inputs"] == [[f"chat_sft@{release.release}", release.manifest.content_digest[:32],
                              {"path": release.table_uri, "delta_table_version": release.table_version}]]
