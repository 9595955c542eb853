"""Curated documents → training rows, as DataFrame → DataFrame transformations on Spark.

split → tokenize (Arrow batches through the Spark-free `tokenization`) → mix (repeat documents of the
train split) → pack (`packing`, within buckets fixed by a hash of the document id, in a fixed order).
Nothing here depends on how Spark partitions the data, so the same documents give the same rows,
and the same `content_digest`, on one core or a hundred.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    ByteType,
    FloatType,
    IntegerType,
    StringType,
    StructField,
    StructType,
)

from palindrom.training import packing, tokenization
from palindrom.training.mixing import SourceMix
from palindrom.training.spec import DatasetSpec
from palindrom.training.splits import fraction_column, split_column

# Tokens per packing bucket: bounds one group's memory (ids, mask and index: ~40 MB) while giving
# Spark enough groups to spread. Derived from the data only, so it never changes the result.
TOKENS_PER_BUCKET = 4_000_000

ROW_FIELDS = [
    StructField("split", StringType(), False),
    StructField("source", StringType(), False),
    StructField("example_id", StringType(), False),
    StructField("input_ids", ArrayType(IntegerType(), False), False),
    StructField("loss_mask", ArrayType(ByteType(), False), False),
    StructField("document_index", ArrayType(IntegerType(), False), False),
    StructField("document_ids", ArrayType(StringType(), False), False),
    StructField("num_tokens", IntegerType(), False),
    StructField("truncated", BooleanType(), False),
]
MEDIA_FIELDS = [
    StructField("media_type", StringType(), True),
    StructField("sha256", StringType(), True),
    StructField("embedding", ArrayType(FloatType(), False), True),
]


def row_schema(spec: DatasetSpec) -> StructType:
    """The columns of a release's rows (before `release` and `build_id`)."""
    return StructType(ROW_FIELDS + (MEDIA_FIELDS if spec.documents.kind == "multimodal" else []))


def with_splits(docs: DataFrame, spec: DatasetSpec) -> DataFrame:
    group = F.col("user_id") if spec.splits.group_by == "user" else F.coalesce("conversation_id", "document_id")
    return docs.withColumn("split", split_column(group, spec.splits.seed, spec.splits.train, spec.splits.validation))


def tokenize(docs: DataFrame, tokenizer_json: str, chat_template: str | None) -> DataFrame:
    """Adds `input_ids` and `loss_mask` (no special tokens; packing adds EOS) to each document."""
    schema = StructType([*docs.schema.fields, StructField("input_ids", ArrayType(IntegerType(), False), False),
                         StructField("loss_mask", ArrayType(ByteType(), False), False)])
    chat = "turns" in docs.columns

    def encode(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        tokenizer = tokenization.from_json(tokenizer_json)
        render = tokenization.chat_renderer(chat_template) if chat else None
        for batch in batches:
            if chat:
                chats = [[(t["role"], t["text"] or "") for t in turns or []]
                         for turns in batch.column("turns").to_pylist()]
                offsets, ids, mask = tokenization.encode_chats(tokenizer, render, chats)
            else:
                offsets, ids, mask = tokenization.encode_texts(
                    tokenizer, [t or "" for t in batch.column("text").to_pylist()])
            yield pa.RecordBatch.from_arrays(
                [*batch.columns, _list(offsets, pa.array(ids, pa.int32())), _list(offsets, pa.array(mask, pa.int8()))],
                names=[*batch.schema.names, "input_ids", "loss_mask"])

    return docs.mapInArrow(encode, schema)


def token_count() -> Column:
    """Tokens a document adds to the release: its own and the EOS that ends it."""
    return F.size("input_ids") + 1


def mix(docs: DataFrame, plan: Sequence[SourceMix]) -> DataFrame:
    """Adds `copy` (0, 1, …): train documents repeated per the plan, other splits once. A fractional
    repeat takes its extra copy for a hash-chosen, stable subset of the documents."""
    repeat = F.create_map(*[x for m in plan for x in (F.lit(m.source), F.lit(float(m.repeat)))])
    times = F.when(F.col("split") == "train", F.coalesce(repeat[F.col("source")], F.lit(1.0))).otherwise(1.0)
    whole = F.floor(times).cast("int")
    copies = whole + (fraction_column(F.col("document_id"), "mix") < times - whole).cast("int")
    # No copies (a repeat below 1 rounded down) is an empty array: the document is left out.
    indices = F.when(copies > 0, F.sequence(F.lit(0), copies - 1)).otherwise(F.array().cast("array<int>"))
    return docs.withColumn("copy", F.explode(indices))


def _bucket_counts(tokens: Mapping[tuple[str, str], int]) -> dict[str, int]:
    return {f"{split}/{source}": max(1, math.ceil(n / TOKENS_PER_BUCKET)) for (split, source), n in tokens.items()}


def pack(docs: DataFrame, spec: DatasetSpec, tokens: Mapping[tuple[str, str], int], eos_id: int, pad_id: int) \
        -> DataFrame:
    """Rows of `row_schema(spec)`. `tokens` are the (split, source) token totals after mixing, which
    fix the number of buckets of `concat` packing."""
    length = spec.output.sequence_length
    schema = row_schema(spec)
    if spec.output.packing == "none":
        return _pack_each(docs, schema, length, eos_id, pad_id)
    buckets = F.create_map(*[x for key, n in _bucket_counts(tokens).items() for x in (F.lit(key), F.lit(n))])
    keyed = docs.select(
        "split", "source", "document_id", "copy", "input_ids", "loss_mask",
        F.pmod(F.xxhash64("document_id", "copy"), buckets[F.concat_ws("/", "split", "source")]).alias("bucket"),
        F.sha2(F.concat_ws("#", "document_id", F.col("copy").cast("string")), 256).alias("order_key"))

    def pack_bucket(table: pa.Table) -> pa.Table:
        table = table.sort_by([("order_key", "ascending"), ("document_id", "ascending"), ("copy", "ascending")])
        split, source, bucket = (table.column(c)[0].as_py() for c in ("split", "source", "bucket"))
        ids, mask = table.column("input_ids").combine_chunks(), table.column("loss_mask").combine_chunks()
        offsets = np.concatenate([[0], np.cumsum(pc.list_value_length(ids).to_numpy(zero_copy_only=False))])
        packed = packing.pack_concat(offsets, pc.list_flatten(ids).to_numpy(), pc.list_flatten(mask).to_numpy(),
                                     length, eos_id, pad_id)
        rows = len(packed)
        counts = packed.last_document - packed.first_document + 1
        starts = np.repeat(packed.first_document - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        members = table.column("document_id").combine_chunks().take(pa.array(starts + np.arange(counts.sum())))
        return pa.table({
            "split": pa.array([split] * rows, pa.string()), "source": pa.array([source] * rows, pa.string()),
            "example_id": pa.array([f"{split}/{source}/{bucket:05d}/{i:07d}" for i in range(rows)], pa.string()),
            "input_ids": _lists(packed.input_ids, pa.int32()), "loss_mask": _lists(packed.loss_mask, pa.int8()),
            "document_index": _lists(packed.document_index, pa.int32()),
            "document_ids": _list(np.concatenate([[0], np.cumsum(counts)]), members),
            "num_tokens": pa.array(packed.num_tokens, pa.int32()), "truncated": pa.array(packed.truncated),
        })

    return keyed.groupBy("split", "source", "bucket").applyInArrow(pack_bucket, schema)


def _list(offsets, values: pa.Array) -> pa.ListArray:
    """A list column typed as Spark declares `array<… not null>` (element name and nullability)."""
    kind = pa.list_(pa.field("element", values.type, nullable=False))
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values, type=kind)


def _lists(matrix: np.ndarray, kind: pa.DataType) -> pa.ListArray:
    rows, length = matrix.shape
    return _list(np.arange(rows + 1) * length, pa.array(matrix.reshape(-1), kind))


def _pack_each(docs: DataFrame, schema: StructType, length: int, eos_id: int, pad_id: int) -> DataFrame:
    media = "embedding" in schema.fieldNames()
    if media:
        docs = docs.withColumn("embedding", F.col("vector").cast("array<float>"))
    columns = ["split", "source", "document_id", "copy", "input_ids", "loss_mask"] + \
        (["media_type", "sha256", "embedding"] if media else [])

    def pack_batch(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            ids, mask = batch.column("input_ids"), batch.column("loss_mask")
            offsets = np.concatenate([[0], np.cumsum(pc.list_value_length(ids).to_numpy(zero_copy_only=False))])
            packed = packing.pack_none(offsets, pc.list_flatten(ids).to_numpy(), pc.list_flatten(mask).to_numpy(),
                                       length, eos_id, pad_id)
            kept = pa.array(packed.first_document)
            document_ids = batch.column("document_id").take(kept)
            copies = batch.column("copy").take(kept).to_pylist()
            out = {
                "split": batch.column("split").take(kept), "source": batch.column("source").take(kept),
                "example_id": pa.array([d if c == 0 else f"{d}#{c}" for d, c in zip(document_ids.to_pylist(), copies,
                                                                                     strict=True)], pa.string()),
                "input_ids": _lists(packed.input_ids, pa.int32()), "loss_mask": _lists(packed.loss_mask, pa.int8()),
                "document_index": _lists(packed.document_index, pa.int32()),
                "document_ids": _list(np.arange(len(kept) + 1), document_ids),
                "num_tokens": pa.array(packed.num_tokens, pa.int32()), "truncated": pa.array(packed.truncated),
            }
            if media:
                out.update({c: batch.column(c).take(kept) for c in ("media_type", "sha256", "embedding")})
            yield pa.RecordBatch.from_pydict(out)

    return docs.select(*columns).mapInArrow(pack_batch, schema)


def content_digest(rows: DataFrame, columns: Sequence[str]) -> str:
    """An order-independent digest of the rows' `columns`: the row count with a sum and an XOR of two
    64-bit row hashes, hashed together. Equal for equal multisets of rows, however they are split."""
    first = F.xxhash64(*columns)
    second = F.xxhash64(F.lit("palindrom.content_digest"), *columns)
    count, total, xor = rows.agg(F.count(F.lit(1)), F.sum(first.cast("decimal(38,0)")),
                                 F.bit_xor(second)).first()
    return hashlib.sha256(f"{count}:{total or 0}:{xor or 0}".encode()).hexdigest()
