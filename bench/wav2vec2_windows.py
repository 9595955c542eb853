"""The wav2vec2 audio embedder on one long recording: in windows of at most 30 s (as shipped) against
one pass over the whole (the window set beyond the recording's length), peak GPU memory and time.

    python bench/wav2vec2_windows.py --minutes 60            # the GPU machine (media.max_audio_seconds: 1 h)
    .venv/bin/python bench/wav2vec2_windows.py --minutes 0.5 --device cpu

The model is the wav2vec2-base architecture (95 M parameters) with random weights, saved and loaded
through the production path: no weights can be downloaded, and memory and time depend on the
architecture and the length, not on the weights. A warm-up on 5 s first; then one run of each. Writes
JSON to --out (default bench/results/wav2vec2-windows.json).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

from palindrom.media.embedders import ModelSpec, Runtime, load_embedder

RATE = 16_000


def measure(model, wave: np.ndarray, window_seconds: float, cuda: bool) -> dict:
    model.window_seconds = window_seconds
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    try:
        [vector] = model.embed([(wave, RATE)])
    except torch.OutOfMemoryError:
        return {"window_s": window_seconds, "error": "out of memory"}
    if cuda:
        torch.cuda.synchronize()
    return {"window_s": window_seconds, "seconds": round(time.perf_counter() - started, 2),
            "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
            "norm": round(float(np.linalg.norm(vector)), 4)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60.0, help="length of the recording (default 60)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--out", default="bench/results/wav2vec2-windows.json")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp()) / "wav2vec2-base-random"
    torch.manual_seed(0)
    Wav2Vec2Model(Wav2Vec2Config()).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(sampling_rate=RATE).save_pretrained(folder)
    model = load_embedder("audio", ModelSpec("wav2vec2", str(folder)), Runtime(device=args.device))
    cuda = model.device == "cuda"
    noise = np.random.default_rng(0).normal(0, 0.1, int(args.minutes * 60 * RATE)).astype(np.float32)
    measure(model, noise[:5 * RATE], 30.0, cuda)  # warm-up
    shipped = type(model).window_seconds
    runs = [measure(model, noise, shipped, cuda), measure(model, noise, args.minutes * 60 + 1, cuda)]
    result = {"minutes": args.minutes, "device": model.device, "dtype": str(model.dtype),
              "card": torch.cuda.get_device_name() if cuda else None, "torch": torch.__version__, "runs": runs}
    for run in runs:
        print(f"window {run['window_s']:>8.0f} s: " + (run.get("error") or
              f"{run['seconds']} s, peak {run['peak_gib']} GiB"))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
