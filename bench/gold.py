"""Gold-builder benchmark: tokenize + pack in Spark vs the raw `tokenizers` library doing the same work,
on the same texts and the same cores, in one run.

    .venv/bin/python bench/gold.py                        # 200,000 texts
    .venv/bin/python bench/gold.py --texts 50000 --runs 3

- spark: the builder's own transformations (`sequences.tokenize` → `mix` → the token totals that
  size the buckets → `pack`, concat into 512-token sequences) on a cached DataFrame of documents,
  executed with Spark's no-op sink (no table write: the raw side writes nothing either).
- raw: `Tokenizer.encode_batch_fast` over all texts (Rust threads on every core), then the same
  numpy packing over the flat ids.
Both use local[N] / N Rust threads, N = the machine's cores. One warm-up each, then `--runs`
timed runs; ratio = raw median / spark median (goal >= 0.85). Writes bench/results/gold.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
from pathlib import Path

from palindrom.config import REPO_ROOT, SparkConfig
from palindrom.training import packing, sequences, tokenization
from palindrom.training.mixing import SourceMix
from palindrom.training.spec import DatasetSpec
from timing import timed

LENGTH = 512
SPEC = DatasetSpec.model_validate({
    "name": "bench", "description": "benchmark", "sources": [{"name": "texts", "dates": {"from": "-30d"}}],
    "documents": {"kind": "text"}, "tokenizer": {"train": {"vocab_size": 8192}},
    "output": {"sequence_length": LENGTH, "packing": "concat"}, "splits": {"train": 1.0},
})


def corpus(n: int) -> list[str]:
    """n texts of 5 to 120 words drawn from a Zipf-like vocabulary, with some punctuation and digits."""
    rng = random.Random(5)
    syllables = ["ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "an", "el", "or", "ux", "qu", "zy", "é", "ß"]
    words = ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(20_000)]
    weights = [1 / (i + 1) for i in range(len(words))]
    texts = []
    for i in range(n):
        body = rng.choices(words, weights, k=rng.randint(5, 120))
        texts.append(f"{' '.join(body).capitalize()}, number {i}.")
    return texts


def raw(tokenizer, texts: list[str], eos: int, pad: int) -> int:
    offsets, ids, mask = tokenization.encode_texts(tokenizer, texts)
    return len(packing.pack_concat(offsets, ids, mask, LENGTH, eos, pad))


def spark_job(docs, tokenizer_json: str, eos: int, pad: int) -> int:
    """As the builder runs it: tokenized documents cached, one pass for the token totals that size the
    packing buckets, then packing from the cache. Returns the tokens packed."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    tokenized = sequences.tokenize(docs, tokenizer_json, None).persist(StorageLevel.MEMORY_AND_DISK)
    mixed = sequences.mix(tokenized, [SourceMix("texts", 1.0, 0, 1.0, False, 1.0)])
    totals = {(r["split"], r["source"]): int(r["n"]) for r in
              mixed.groupBy("split", "source").agg(F.sum(sequences.token_count()).alias("n")).collect()}
    sequences.pack(mixed, SPEC, totals, eos, pad).write.format("noop").mode("overwrite").save()
    tokenized.unpersist()
    return sum(totals.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=200_000, help="texts to tokenize and pack (default 200,000)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each variant after the warm-up (default 3)")
    parser.add_argument("--out", default=str(REPO_ROOT / "bench" / "results" / "gold.json"),
                        help="the JSON results file (default: bench/results/gold.json)")
    args = parser.parse_args()
    cores = os.cpu_count() or 1

    print(f"generating {args.texts:,} texts and training the tokenizer (not timed)...", flush=True)
    texts = corpus(args.texts)
    tokenizer = tokenization.train_bpe(texts[:50_000], vocab_size=8192)
    special = tokenization.special_ids(tokenizer)
    tokenizer_json = tokenizer.to_str()

    from palindrom.spark import get_spark

    spark = get_spark(SparkConfig(master=f"local[{cores}]", shuffle_partitions=cores, driver_memory="6g"),
                      app_name="bench-gold")
    docs = spark.createDataFrame([(f"d{i:09d}", "texts", "train", t) for i, t in enumerate(texts)],
                                 "document_id string, source string, split string, text string") \
        .repartition(cores).cache()
    docs.count()

    print(f"tokenize + pack into {LENGTH}-token sequences, {cores} cores:", flush=True)
    raw_times = timed("raw", lambda: raw(tokenizer, texts, special["eos"], special["pad"]), args.runs)
    encode_only = timed("encode", lambda: tokenizer.encode_batch_fast(texts, add_special_tokens=False), args.runs)
    spark_times = timed("spark", lambda: spark_job(docs, tokenizer_json, special["eos"], special["pad"]), args.runs)
    tokens = spark_job(docs, tokenizer_json, special["eos"], special["pad"])
    sequences_out = raw(tokenizer, texts, special["eos"], special["pad"])
    result = {
        "texts": args.texts, "tokens": tokens, "sequences": sequences_out, "sequence_length": LENGTH,
        "cores": cores, "runs": args.runs, "machine": platform.platform(),
        "raw_median_s": statistics.median(raw_times), "raw_encode_only_median_s": statistics.median(encode_only),
        "spark_median_s": statistics.median(spark_times),
    }
    result["ratio"] = result["raw_median_s"] / result["spark_median_s"]
    print(json.dumps(result, indent=2))
    print(f"ratio (raw / spark) = {result['ratio']:.2f}  (goal >= 0.85)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
