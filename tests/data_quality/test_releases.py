"""Data-quality rules over every committed training-dataset release of the built sample lake."""

import json

import pytest
from pyspark.sql import functions as F
from tokenizers import Tokenizer

from palindrom import quality
from palindrom.data import releases
from palindrom.lake import tables
from palindrom.lake.paths import Lake
from palindrom.training import sequences
from palindrom.training.manifest import Manifest

pytestmark = pytest.mark.xdist_group("training")  # with tests/integration/test_build_training_data.py


def release_rows(spark, config, release):
    table = Lake(config.storage_root).training_dataset(release.dataset)
    return tables.read(spark, table).filter(
        (F.col("release") == release.release) & (F.col("build_id") == release.manifest.build_id))


def test_every_release_passes_its_checks_and_matches_its_digest(spark_session, committed_releases):
    config, found = committed_releases
    for release in found:
        m = release.manifest
        rows = release_rows(spark_session, config, release)
        vocab = Tokenizer.from_str(releases.read_file(release, "tokenizer.json").decode()) \
            .get_vocab_size(with_added_tokens=True)
        quality.enforce(quality.training_release_checks(rows, vocab, m.sequence_length, release.dataset))
        assert sequences.content_digest(rows, [c for c, _ in m.row_schema]) == m.content_digest
        assert rows.count() == m.rows


def test_no_group_is_in_two_splits(spark_session, committed_releases):
    config, found = committed_releases
    events = tables.read(spark_session, Lake(config.storage_root).table("silver.events"))
    user_of = events.select(F.col("event_id").alias("document_id"), "user_id")
    for release in found:
        documents = release_rows(spark_session, config, release) \
            .select("split", F.explode("document_ids").alias("document_id")).distinct()
        if "user" in release.manifest.split_rule:
            groups = documents.join(user_of, "document_id").withColumnRenamed("user_id", "group")
        else:  # by conversation: a chat document is its conversation
            groups = documents.withColumnRenamed("document_id", "group")
        mixed = groups.groupBy("group").agg(F.count_distinct("split").alias("n")).filter("n > 1")
        assert mixed.count() == 0, f"{release.dataset}@{release.release}: groups in two splits"


def test_every_manifest_is_complete_and_its_files_exist(spark_session, committed_releases):
    config, found = committed_releases
    for release in found:
        m = release.manifest
        for name, value in json.loads(m.model_dump_json()).items():
            assert value not in (None, "", [], {}) or (name == "embeddings" and m.kind != "multimodal"), name
        for pinned in m.inputs:
            history = tables.read(spark_session, Lake(config.storage_root).table(pinned.table), pinned.version)
            assert history.limit(1).count() == 1
        for name in ("README.md", "tokenizer.json", "manifest.json", "sequence_lengths.png", "source_mix.png"):
            assert releases.read_file(release, name)
        assert Manifest.model_validate_json(releases.read_file(release, "manifest.json")) == m
