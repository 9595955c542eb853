import hashlib

import pytest

from palindrom.lake import tables
from palindrom.lake.paths import Lake
from palindrom.lake.refusals import IngestRefused
from pipelines.bronze import check_landing, ingest_media
from pipelines.sample_media import image_bytes
from tests.conftest import lake_path


def write(config, folder: str, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        target = lake_path(config) / "landing" / folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def rows(spark, config, folder: str) -> dict[str, dict]:
    ref = Lake(config.storage_root).table(f"bronze.{folder}")
    return {r["path"]: r.asDict() for r in tables.read(spark, ref).collect()}


def test_media_files_are_ingested_exactly_once_with_their_hash(spark_session, lake_config):
    png, wav = image_bytes(seed=1), b"RIFF....WAVEfmt "
    write(lake_config, "images", {"u1/a.png": png, "u2/same-bytes.png": png, "empty.png": b"", ".partial.png": b"x"})
    write(lake_config, "audio", {"voice.wav": wav})

    result = ingest_media.run(spark_session, lake_config)
    assert result.files == {"image": 3, "audio": 1, "video": 0}
    images = rows(spark_session, lake_config, "images")
    assert set(images) == {"u1/a.png", "u2/same-bytes.png", "empty.png"}  # in-flight names are skipped
    assert images["u1/a.png"]["sha256"] == images["u2/same-bytes.png"]["sha256"] == hashlib.sha256(png).hexdigest()
    assert bytes(images["u1/a.png"]["content"]) == png
    assert images["u1/a.png"]["blob_uri"] is None
    assert images["empty.png"]["size_bytes"] == 0
    assert bytes(images["empty.png"]["content"]) == b""
    assert images["empty.png"]["sha256"] == hashlib.sha256(b"").hexdigest()
    assert images["u1/a.png"]["modified_at"] is not None
    assert images["u1/a.png"]["batch_id"] == result.batch_id
    assert rows(spark_session, lake_config, "audio")["voice.wav"]["size_bytes"] == len(wav)

    ref = Lake(lake_config.storage_root).table("bronze.images")
    version = tables.current_version(ref)
    assert ingest_media.up_to_date(lake_config).startswith("no new media files in ")
    again = ingest_media.run(spark_session, lake_config)
    assert again.files == {"image": 0, "audio": 0, "video": 0}
    assert tables.current_version(ref) == version  # a rerun commits nothing

    write(lake_config, "images", {"u3/new.png": image_bytes(seed=2)})
    assert ingest_media.up_to_date(lake_config) is None
    assert ingest_media.run(spark_session, lake_config).files["image"] == 1
    assert len(rows(spark_session, lake_config, "images")) == 4


def test_large_objects_go_to_blobs_once(spark_session, lake_config):
    config = lake_config.model_copy(update={"media": lake_config.media.model_copy(update={"inline_max_bytes": 1000})})
    big = image_bytes((400, 400), seed=3)
    assert len(big) > 1000
    write(config, "images", {"big.png": big, "copy/big.png": big, "small.png": b"tiny"})
    result = ingest_media.run(spark_session, config)
    assert result.blobs == 1  # one content, one blob
    images = rows(spark_session, config, "images")
    sha = hashlib.sha256(big).hexdigest()
    blob = lake_path(config) / "bronze" / "blobs" / sha
    assert blob.read_bytes() == big
    for path in ("big.png", "copy/big.png"):
        assert images[path]["content"] is None
        assert images[path]["blob_uri"] == f"file:{blob}"
    assert bytes(images["small.png"]["content"]) == b"tiny"
    assert not list(blob.parent.glob("_*"))  # no temporary copies left behind


def test_a_file_whose_path_spark_cannot_read_is_refused_after_the_others_are_ingested(spark_session, lake_config):
    write(lake_config, "images", {"shot[1]:12:00.png": b"unread", "ok.png": b"read"})
    write(lake_config, "audio", {"voice.wav": b"RIFF"})
    assert ingest_media.run(spark_session, lake_config, on_refusal="record").refused == ["images/shot[1]:12:00.png"]
    with pytest.raises(IngestRefused, match=r"landing/images/shot\[1\]:12:00\.png: its path holds both ':'"):
        check_landing.run(None, lake_config, "media")
    check_landing.run(None, lake_config, "events")  # ingest_events refused nothing
    assert set(rows(spark_session, lake_config, "images")) == {"ok.png"}
    assert set(rows(spark_session, lake_config, "audio")) == {"voice.wav"}
    assert (lake_path(lake_config) / "landing" / "images" / "shot[1]:12:00.png").exists()
