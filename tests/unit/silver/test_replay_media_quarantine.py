"""`pipelines quarantine replay --media`: quarantined files inspected again with the present limits;
what now decodes moves to metadata (and is embedded by the next process_media run), the rest stays
with its reason and detail brought up to date; nothing is lost, and a rerun after a crash converges."""

import deltalake
import pytest
from pyspark.sql import functions as F

from palindrom.lake import tables
from palindrom.lake.paths import Lake, native_uri
from pipelines import cli
from pipelines.bronze import ingest_media
from pipelines.sample_media import audio_bytes
from pipelines.silver import process_media, replay_media_quarantine
from tests.unit.bronze.test_ingest_media import write


def with_audio_limit(config, seconds: float):
    return config.model_copy(update={"media": config.media.model_copy(update={"max_audio_seconds": seconds})})


def rows(spark, config, name, *columns):
    table = tables.read(spark, Lake(config.storage_root).table(name))
    return sorted(tuple(r) for r in table.select(*columns).collect())


@pytest.fixture
def quarantined_under_a_low_limit(spark_session, lake_config):
    """Four audio paths processed with a 2 s limit: a 3 s recording (under two paths) is too_large, a
    damaged file corrupt, a 1 s recording decodes."""
    long = audio_bytes(3.0, 16_000)
    write(lake_config, "audio", {"long.wav": long, "copy/long.wav": long, "short.wav": audio_bytes(1.0, 16_000),
                                 "broken.wav": b"RIFF\x00\x10\x00\x00WAVEfmt " + bytes(30)})
    ingest_media.run(spark_session, lake_config)
    first = process_media.run(spark_session, with_audio_limit(lake_config, 2.0))
    assert (first.to_metadata, first.to_quarantine) == ({"audio": 1}, {"audio": 3})
    return lake_config


def test_files_that_decode_under_the_present_limits_move_to_metadata(spark_session, quarantined_under_a_low_limit,
                                                                    monkeypatch, capsys):
    config = quarantined_under_a_low_limit
    quarantine = "silver.quarantine.media"
    assert rows(spark_session, config, quarantine, "path", "reason", "detail") == [
        ("broken.wav", "corrupt", "audio/x-wav: FFmpeg: Invalid data found when processing input"),
        ("copy/long.wav", "too_large", "3 s; the limit is 2 s"), ("long.wav", "too_large", "3 s; the limit is 2 s")]

    # A lower limit still: the same reason with a new detail, nothing moves.
    lower = replay_media_quarantine.run(spark_session, with_audio_limit(config, 1.0), reasons=["too_large"])
    assert (lower.replayed, lower.moved_to_metadata, lower.still_quarantined, lower.reason_or_detail_changed) == \
        (2, 0, 2, 2)
    assert rows(spark_session, config, quarantine, "path", "reason", "detail")[1:] == [
        ("copy/long.wav", "too_large", "3 s; the limit is 1 s"), ("long.wav", "too_large", "3 s; the limit is 1 s")]

    # The configured limit (an hour): the recording decodes; both its paths leave quarantine together.
    # The first try dies between the replay record and quarantine's delete; run again, it converges.
    assert process_media.up_to_date(config)

    def killed(*args, **kwargs):
        raise RuntimeError("killed between the replay record and quarantine's delete")

    with monkeypatch.context() as patched:
        patched.setattr(replay_media_quarantine.tables, "delete_matching", killed)
        with pytest.raises(RuntimeError, match="killed"):
            replay_media_quarantine.run(spark_session, config)
    recorded = rows(spark_session, config, "silver.quarantine.media_replays", "path", "replay_id")
    assert [path for path, _ in recorded] == ["copy/long.wav", "long.wav"]
    result = replay_media_quarantine.run(spark_session, config)
    assert (result.replayed, result.moved_to_metadata, result.still_quarantined, result.reason_or_detail_changed) == \
        (3, 2, 1, 0)
    assert rows(spark_session, config, quarantine, "path", "reason") == [("broken.wav", "corrupt")]
    metadata = {r["path"]: r for r in tables.read(spark_session, Lake(config.storage_root).table(
        "silver.media_metadata")).collect()}
    assert set(metadata) == {"copy/long.wav", "short.wav"}  # an object's first path names it
    assert metadata["copy/long.wav"]["paths"] == ["copy/long.wav", "long.wav"]
    assert metadata["copy/long.wav"]["duration_s"] == 3.0
    assert rows(spark_session, config, "silver.quarantine.media_replays", "path", "former_reason", "outcome") == [
        ("copy/long.wav", "too_large", "moved_to_metadata"), ("long.wav", "too_large", "moved_to_metadata")]
    assert rows(spark_session, config, "silver.quarantine.media_replays", "path", "replay_id") == recorded  # the first
    replays_uri = Lake(config.storage_root).table("silver.quarantine.media_replays").uri
    assert deltalake.DeltaTable(native_uri(replays_uri)).to_pyarrow_table().num_rows == 2  # readable by delta-rs

    # The next process_media run embeds the object that arrived (metadata changed since the last).
    assert process_media.up_to_date(config) is None
    assert process_media.run(spark_session, config).embedded == {"image": 0, "audio": 1, "video": 0}
    embedded = tables.read(spark_session, Lake(config.storage_root).table("silver.media_embeddings"))
    assert embedded.filter(F.col("sha256") == metadata["copy/long.wav"]["sha256"]).count() == 1

    # The command, by reason: the damaged file is inspected again and stays; nothing is committed.
    monkeypatch.setattr(cli, "_spark", lambda _: spark_session)
    root = config.storage_root
    lake = Lake(root)
    versions = [tables.current_version(lake.table(name)) for name in (quarantine, "silver.media_metadata",
                                                                        "silver.quarantine.media_replays")]
    assert cli.main(["quarantine", "replay", "--media", "--reason", "corrupt", "--root", root]) == 0
    assert ": 1 media files inspected again, 0 moved to metadata (the next process_media run embeds them), " \
           "1 still quarantined (0 with a new reason or detail)" in capsys.readouterr().out
    assert cli.main(["quarantine", "replay", "--media", "--reason", "no_such", "--root", root]) == 2
    assert [tables.current_version(lake.table(name)) for name in (quarantine, "silver.media_metadata",
                                                                   "silver.quarantine.media_replays")] == versions
    # The task of the media_quarantine_replay job: its reasons are one parameter, commas between.
    assert replay_media_quarantine.main(["--root", root, "--reasons", "corrupt,decoder_error"]) == 0
    assert rows(spark_session, config, quarantine, "path", "reason") == [("broken.wav", "corrupt")]


@pytest.mark.parametrize("inner", ["process_media within the replay", "the replay within process_media"])
def test_a_replay_and_a_process_media_run_meeting_on_one_object_lose_no_path(spark_session, lake_config, monkeypatch,
                                                                             inner):
    """The replay moves an object's quarantined paths to metadata while process_media inserts the same
    object for a new path, one run going through whole between the other's inspection and its
    metadata commit: the object is in metadata once with every path, embedded once. (Each commit
    reads metadata's objects as they are then: the object the other run inserted gains its paths.)"""
    long = audio_bytes(3.0, 16_000)
    write(lake_config, "audio", {"long.wav": long, "copy/long.wav": long})
    ingest_media.run(spark_session, lake_config)
    assert process_media.run(spark_session, with_audio_limit(lake_config, 2.0)).to_quarantine == {"audio": 2}
    write(lake_config, "audio", {"third/long.wav": long})
    ingest_media.run(spark_session, lake_config)

    def replay():
        return replay_media_quarantine.run(spark_session, lake_config)

    def process():
        return process_media.run(spark_session, lake_config)

    outer, within, committing = ((replay, process, replay_media_quarantine) if inner.startswith("process_media")
                                 else (process, replay, process_media))
    commit_metadata, ran_within = committing.write_metadata, []

    def interleaved(*args, **kwargs):
        ran_within.append(within())
        commit_metadata(*args, **kwargs)

    monkeypatch.setattr(committing, "write_metadata", interleaved)
    outer()
    assert len(ran_within) == 1
    [(path, paths, sha256)] = rows(spark_session, lake_config, "silver.media_metadata", "path", "paths", "sha256")
    assert (path, paths) == ("copy/long.wav", ["copy/long.wav", "long.wav", "third/long.wav"])
    assert rows(spark_session, lake_config, "silver.quarantine.media", "path") == []
    assert rows(spark_session, lake_config, "silver.quarantine.media_replays", "path", "outcome") == [
        ("copy/long.wav", "moved_to_metadata"), ("long.wav", "moved_to_metadata")]
    assert rows(spark_session, lake_config, "silver.media_embeddings", "sha256") == [(sha256,)]
