"""Batched embedding inference, Spark-free: what the embedding UDFs call once per Arrow batch.

`load_embedder(spec, runtime)` builds a model once per process (cached), so a Spark Python worker
loads it once and reuses it for every batch and task it runs. Every embedder returns float32
vectors, L2-normalised, and names itself by `model_name` and `model_revision` for lineage:
the Hugging Face commit for a hub model, the SHA-256 of the weights for a local or packaged one,
and, for the weight-free signal embedders, the SHA-256 of their parameters. A CLIP or wav2vec2
revision also names the preprocessing our code does around the model (`PREPROCESSING`).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from palindrom.logging import logger
from palindrom.media import decoding

DEFAULT_LIMITS = decoding.Limits()
# 16-bit and float samples are scaled to 8 bits as a viewer shows them (decoding.eight_bit), not clipped.
SIGNAL_IMAGE = {"name": "palindrom/signal-image-v1", "phash_bits": 64, "hist_bins": 16, "samples": "8-bit as shown"}
# Digital silence (an empty recording too) has every band at the floor: it is given the direction of a
# flat spectrum rather than a zero vector, which no cosine can be taken of.
SIGNAL_AUDIO = {"name": "palindrom/signal-audio-v1", "mel_bands": 32, "fmax_hz": 4000, "window_s": 0.032,
                "silence": "flat"}
# What our code does around a neural model's own preprocessor is part of what its vectors mean, so a
# CLIP or wav2vec2 `model_revision` is "<commit or weights' SHA-256>+<12 hex of this entry's SHA-256>":
# a change to that code (a new window length, another resampler) adds rows beside the old ones instead
# of mixing two kinds of vector under one revision. Change the entry whenever the code changes a vector.
PREPROCESSING = {
    "clip": {"orientation": "EXIF", "samples": "8-bit as shown", "colour": "RGB",
             "video": "mean of the key frames' vectors"},
    "wav2vec2": {"channels": "mean", "resampler": "libswresample", "short": "silence to the receptive field",
                 "window_s": 30.0, "pooling": "mean over every window's frames"},
}


def _params_sha256(params: dict) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class ModelSpec:
    """Which model: `kind` picks the code path; `model` is a hub id, a local folder or `package:<module>`."""

    kind: str  # sentence-transformers | clip | wav2vec2 | signal
    model: str
    revision: str | None = None
    name: str | None = None  # the model_name lineage records for a local or packaged model


@dataclass(frozen=True)
class Runtime:
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "auto"  # auto | fp32 | fp16 | bf16
    batch_size: int = 64
    cpu_threads: int = 1


class EmbedderError(RuntimeError):
    """A model cannot be loaded or used; the message names the model."""


def resolve_device(runtime: Runtime) -> str:
    import torch

    if runtime.device == "cuda" and not torch.cuda.is_available():
        raise EmbedderError("embeddings.device is 'cuda' but no CUDA device is available")
    if runtime.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return runtime.device


def resolve_dtype(runtime: Runtime, device: str):
    import torch

    if runtime.precision == "auto":
        if device != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[runtime.precision]


def model_path(spec: ModelSpec) -> tuple[str, bool]:
    """(what to pass to from_pretrained, whether it is local)."""
    if spec.model.startswith("package:"):
        module = importlib.import_module(spec.model.removeprefix("package:"))
        return str(module.get_model_path()), True
    if spec.model.startswith(("/", "./", "../")) or Path(spec.model).is_dir():
        return spec.model, True
    return spec.model, False


@functools.cache
def weights_sha256(folder: str) -> str:
    """SHA-256 over the weight files of a local model folder, in name order."""
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix in (".safetensors", ".bin", ".pt", ".pth"))
    if not files:
        raise EmbedderError(f"{folder}: no weight files (*.safetensors, *.bin) found")
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.relative_to(folder).as_posix().encode() + b"\0")
        with file.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _model_identity(spec: ModelSpec) -> tuple[str, str, str]:
    """(load path, model_name, model_revision)."""
    path, local = model_path(spec)
    if not local:
        if not spec.revision:
            raise EmbedderError(f"hub model {spec.model!r} must pin `revision` to a commit")
        name, revision = spec.model, spec.revision
    elif not Path(path).is_dir():
        raise EmbedderError(f"model folder {path} does not exist")
    else:
        name, revision = spec.name or Path(path).name, weights_sha256(path)
    if spec.kind in PREPROCESSING:
        revision += "+" + _params_sha256(PREPROCESSING[spec.kind])[:12]
    return path, name, revision


class Embedder:
    modality: str
    model_name: str
    model_revision: str
    dim: int

    def embed(self, items: Sequence) -> np.ndarray:
        raise EmbedderError(f"{type(self).__name__} does not embed")  # every subclass overrides this


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


# --- text ------------------------------------------------------------------------------------

class SentenceTransformerEmbedder(Embedder):
    modality = "text"

    def __init__(self, spec: ModelSpec, runtime: Runtime):
        from sentence_transformers import SentenceTransformer

        path, self.model_name, self.model_revision = _model_identity(spec)
        self.device = resolve_device(runtime)
        self.batch_size = runtime.batch_size
        kwargs = {"revision": spec.revision} if spec.revision else {}
        try:
            self.model = SentenceTransformer(path, device=self.device, local_files_only=_offline(), **kwargs)
        except OSError as e:
            raise EmbedderError(f"cannot load sentence-transformers model {spec.model!r}: {e}") from e
        dtype = resolve_dtype(runtime, self.device)
        self.model.to(dtype)
        self.dim = self.model.get_embedding_dimension()

    def embed(self, items: Sequence[str]) -> np.ndarray:
        if not len(items):
            return np.zeros((0, self.dim), np.float32)
        # Normalised here in float32: normalised in bf16 by the model, norms were off by up to 4e-3.
        vectors = self.model.encode(list(items), batch_size=self.batch_size, convert_to_tensor=True,
                                    normalize_embeddings=False, show_progress_bar=False)
        return _normalise(vectors.float().cpu().numpy())


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false")


# --- images ----------------------------------------------------------------------------------

def as_images(items: Sequence, max_pixels: int):
    """Bytes (or already decoded Pillow images) → 8-bit RGB Pillow images, EXIF-oriented."""
    images = []
    for item in items:
        image = item if hasattr(item, "convert") else decoding.open_image(item, max_pixels)[0]
        images.append(decoding.eight_bit(image).convert("RGB"))
    return images


class SignalImageEmbedder(Embedder):
    """No weights: ±1 perceptual-hash bits, then a normalised 16-bin histogram per RGB channel."""

    modality = "image"
    model_name = SIGNAL_IMAGE["name"]
    model_revision = _params_sha256(SIGNAL_IMAGE)
    dim = SIGNAL_IMAGE["phash_bits"] + 3 * SIGNAL_IMAGE["hist_bins"]

    def __init__(self, max_pixels: int = decoding.Limits.max_pixels):
        self.max_pixels = max_pixels

    def embed(self, items: Sequence) -> np.ndarray:
        import imagehash

        bins = SIGNAL_IMAGE["hist_bins"]
        rows = []
        for image in as_images(items, self.max_pixels):
            bits = imagehash.phash(image).hash.flatten().astype(np.float32) * 2 - 1
            pixels = np.asarray(image, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
            hist = np.concatenate([np.bincount(pixels[:, c] * bins // 256, minlength=bins) for c in range(3)])
            hist = hist.astype(np.float32) / max(1, len(pixels))
            rows.append(np.concatenate([bits / np.sqrt(bits.size), hist]))
        return _normalise(np.stack(rows)) if rows else np.zeros((0, self.dim), np.float32)


class _TransformersEmbedder(Embedder):
    """A transformers checkpoint with its preprocessor, on the chosen device and in the chosen precision."""

    def _load(self, spec: ModelSpec, runtime: Runtime, preprocessor_class, model_class):
        """Load the model into `self.model` and return the preprocessor."""
        import torch

        path, self.model_name, self.model_revision = _model_identity(spec)
        self.device = resolve_device(runtime)
        self.dtype = resolve_dtype(runtime, self.device)
        self._torch = torch
        kwargs = {"revision": spec.revision} if spec.revision else {}
        try:
            preprocessor = preprocessor_class.from_pretrained(path, **kwargs)
            self.model = model_class.from_pretrained(path, dtype=self.dtype, **kwargs).to(self.device).eval()
        except OSError as e:
            raise EmbedderError(f"cannot load {self.modality} model {spec.model!r}: {e}") from e
        return preprocessor


class ClipImageEmbedder(_TransformersEmbedder):
    """A CLIP-style vision tower (CLIPModel or CLIPVisionModelWithProjection) and its image processor."""

    modality = "image"

    def __init__(self, spec: ModelSpec, runtime: Runtime, max_pixels: int = decoding.Limits.max_pixels):
        from transformers import AutoImageProcessor, CLIPModel

        self.processor = self._load(spec, runtime, AutoImageProcessor, CLIPModel)
        self.batch_size, self.max_pixels = runtime.batch_size, max_pixels
        self.dim = self.model.config.projection_dim

    def embed(self, items: Sequence) -> np.ndarray:
        images = as_images(items, self.max_pixels)
        out = []
        with self._torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                pixels = self.processor(images=images[start:start + self.batch_size], return_tensors="pt")
                features = self.model.get_image_features(
                    pixel_values=pixels["pixel_values"].to(self.device, self.dtype))
                features = getattr(features, "pooler_output", features)
                out.append(features.float().cpu().numpy())
        return _normalise(np.concatenate(out)) if out else np.zeros((0, self.dim), np.float32)


def embed_video(embedder: Embedder, key_frames: Sequence[Sequence[bytes]]) -> np.ndarray:
    """One vector per video: the L2-normalised mean of its key frames' image embeddings."""
    flat = [frame for frames in key_frames for frame in frames]
    vectors = embedder.embed(flat)
    out, start = [], 0
    for frames in key_frames:
        out.append(vectors[start:start + len(frames)].mean(axis=0))
        start += len(frames)
    return _normalise(np.stack(out)) if out else np.zeros((0, embedder.dim), np.float32)


# --- audio -----------------------------------------------------------------------------------

def as_waveforms(items: Sequence, max_seconds: float) -> list[tuple[np.ndarray, int]]:
    """Bytes (or (samples, rate) pairs) → mono float32 waveforms with their rates."""
    out = []
    for item in items:
        samples, rate = (item if isinstance(item, tuple) else decoding.decode_audio(item, max_seconds)[:2])
        out.append((samples.mean(axis=1) if samples.ndim == 2 else samples, rate))
    return out


class SignalAudioEmbedder(Embedder):
    """No weights: mean and standard deviation of 32 log-mel bands up to 4 kHz over 32 ms windows
    (so any rate ≥ 8 kHz gives comparable vectors), from transformers' own spectrogram functions."""

    modality = "audio"
    model_name = SIGNAL_AUDIO["name"]
    model_revision = _params_sha256(SIGNAL_AUDIO)
    dim = 2 * SIGNAL_AUDIO["mel_bands"]

    def __init__(self, max_seconds: float = decoding.Limits.max_audio_seconds):
        self.max_seconds = max_seconds

    def embed(self, items: Sequence) -> np.ndarray:
        from transformers.audio_utils import mel_filter_bank, spectrogram, window_function

        bands = SIGNAL_AUDIO["mel_bands"]
        rows = []
        for mono, rate in as_waveforms(items, self.max_seconds):
            n_fft = max(16, round(rate * SIGNAL_AUDIO["window_s"]))  # the same duration at every rate
            mel = mel_filter_bank(num_frequency_bins=n_fft // 2 + 1, num_mel_filters=bands, min_frequency=0.0,
                                  max_frequency=min(SIGNAL_AUDIO["fmax_hz"], rate / 2), sampling_rate=rate)
            if len(mono) < n_fft:
                mono = np.pad(mono, (0, n_fft - len(mono)))
            power = spectrogram(mono.astype(np.float64), window_function(n_fft, "hann"), frame_length=n_fft,
                                hop_length=n_fft // 2, power=2.0, mel_filters=mel)
            # dB of the power per window length (so the rate does not matter), 0 at -100 dB and below.
            spec = 10 * np.log10(np.maximum(power / n_fft**2, 1e-10)) + 100
            row = np.concatenate([spec.mean(axis=1), spec.std(axis=1)]) / 100.0
            if not row.any():  # (SIGNAL_AUDIO["silence"])
                row[:bands] = 1.0
            rows.append(row)
        return _normalise(np.stack(rows)) if rows else np.zeros((0, self.dim), np.float32)


class Wav2Vec2AudioEmbedder(_TransformersEmbedder):
    """A wav2vec2-style encoder: audio resampled to its rate (FFmpeg's resampler), hidden states
    mean-pooled. Audio longer than `window_seconds` is cut into equal windows no longer than that, each
    run on its own, and the mean taken over all their frames: in one pass an hour-long recording's
    convolutions alone hold tens of GB on the GPU, and attention grows with the square of its length."""

    modality = "audio"
    window_seconds = PREPROCESSING["wav2vec2"]["window_s"]

    def __init__(self, spec: ModelSpec, runtime: Runtime, max_seconds: float = decoding.Limits.max_audio_seconds):
        from transformers import AutoFeatureExtractor, AutoModel

        self.extractor = self._load(spec, runtime, AutoFeatureExtractor, AutoModel)
        self.max_seconds = max_seconds
        self.dim = self.model.config.hidden_size
        self.min_samples = receptive_field(self.model.config)

    def embed(self, items: Sequence) -> np.ndarray:
        rate = self.extractor.sampling_rate
        out = []
        with self._torch.inference_mode():
            for mono, source_rate in as_waveforms(items, self.max_seconds):
                wave = resample(mono, source_rate, rate)
                # A clip shorter than one output frame (a recording stopped at once: 0 samples, or 24 ms
                # for wav2vec2-base) would fail the convolutions, and the task with it: silence pads it.
                wave = np.pad(wave, (0, max(0, self.min_samples - len(wave))))
                windows = np.array_split(wave, math.ceil(len(wave) / (self.window_seconds * rate)))
                total, frames = 0, 0
                for window in windows:
                    inputs = self.extractor(window, sampling_rate=rate, return_tensors="pt")
                    hidden = self.model(inputs["input_values"].to(self.device, self.dtype)).last_hidden_state[0]
                    total, frames = total + hidden.float().sum(dim=0), frames + hidden.shape[0]
                out.append((total / frames).cpu().numpy())
        return _normalise(np.stack(out)) if out else np.zeros((0, self.dim), np.float32)


def receptive_field(config) -> int:
    """Input samples a wav2vec2-style feature encoder needs for one output frame (its convolutions'
    kernels and strides; 400 for wav2vec2-base), 1 for a model without them."""
    need = 1
    for kernel, stride in reversed(list(zip(getattr(config, "conv_kernel", ()), getattr(config, "conv_stride", ()),
                                            strict=True))):
        need = (need - 1) * stride + kernel
    return need


def resample(mono: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Mono float32 resampled with FFmpeg's libswresample (through PyAV)."""
    if source_rate == target_rate:
        return mono.astype(np.float32)
    import av

    frame = av.AudioFrame.from_ndarray(mono.astype(np.float32)[None, :], format="fltp", layout="mono")
    frame.sample_rate = source_rate
    resampler = av.AudioResampler(format="fltp", layout="mono", rate=target_rate)
    frames = [*resampler.resample(frame), *resampler.resample(None)]  # None flushes the resampler
    chunks = [f.to_ndarray()[0] for f in frames]
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)


# --- loading ---------------------------------------------------------------------------------

def identity(modality: str, spec: ModelSpec) -> tuple[str, str]:
    """(model_name, model_revision) without loading the model: what a run checks before embedding."""
    if spec.kind == "signal":
        signal = SignalAudioEmbedder if modality == "audio" else SignalImageEmbedder
        return signal.model_name, signal.model_revision
    _, name, revision = _model_identity(spec)
    return name, revision


@functools.cache
def load_embedder(modality: str, spec: ModelSpec, runtime: Runtime, limits: decoding.Limits = DEFAULT_LIMITS) \
        -> Embedder:
    """The embedder for a modality, built once per process and reused for every batch."""
    logger.info("loading the %s model %s (%s) in process %d", modality, spec.model, spec.kind, os.getpid())
    if resolve_device(runtime) == "cpu":
        import torch

        torch.set_num_threads(runtime.cpu_threads)
    match modality, spec.kind:
        case "text", "sentence-transformers":
            return SentenceTransformerEmbedder(spec, runtime)
        case ("image" | "video"), "signal":
            return SignalImageEmbedder(limits.max_pixels)
        case ("image" | "video"), "clip":
            return ClipImageEmbedder(spec, runtime, limits.max_pixels)
        case "audio", "signal":
            return SignalAudioEmbedder(limits.max_audio_seconds)
        case "audio", "wav2vec2":
            return Wav2Vec2AudioEmbedder(spec, runtime, limits.max_audio_seconds)
    raise EmbedderError(f"no {modality} embedder of kind {spec.kind!r}")

