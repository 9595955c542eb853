"""Spark processors for media and text: DataFrame in, DataFrame out, unchanged on Databricks.

    processor = ImageProcessor()
    features = processor.extract_features(spark.read.format("delta").load(".../bronze/images"))
    vectors = processor.extract_embeddings(objects_with_content)

`extract_features` takes bronze media rows (`path`, `sha256`, and `content` or `blob_uri`) and
returns one row per object (SHA-256) with every path it was seen under, its facts, and `reason` /
`detail` set where it could not be decoded (nothing is dropped). `extract_embeddings` returns one
row per object and model: `sha256`, `modality`, `model_name`, `model_revision`, `vector`, `dim`.
Decoding and inference are the Spark-free functions of `palindrom.media`, called once per Arrow
batch; models load once per Python worker.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from typing import ClassVar

import numpy as np
import pyarrow as pa
from pyspark.errors import PySparkAttributeError
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    BooleanType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from palindrom.config import EmbeddingsConfig, MediaConfig, ModelConfig
from palindrom.lake.files import file_exists, read_files
from palindrom.media import decoding, embedders, isolation

COMMON_FIELDS = [
    StructField("media_type", StringType(), False),
    StructField("sha256", StringType(), False),
    StructField("path", StringType(), False),  # the first of `paths` by name
    StructField("paths", ArrayType(StringType(), False), False),
    StructField("size_bytes", LongType(), True),
    StructField("mime_type", StringType(), True),
    StructField("extension_mismatch", BooleanType(), True),
]
TYPE_FIELDS = {
    "image": [StructField("width", IntegerType()), StructField("height", IntegerType()),
              StructField("mode", StringType()), StructField("format", StringType()),
              StructField("phash", StringType())],
    "audio": [StructField("codec", StringType()), StructField("duration_s", DoubleType()),
              StructField("sample_rate", IntegerType()), StructField("channels", IntegerType()),
              StructField("rms_dbfs", DoubleType()), StructField("silence_fraction", DoubleType())],
    "video": [StructField("codec", StringType()), StructField("duration_s", DoubleType()),
              StructField("fps", DoubleType()), StructField("width", IntegerType()),
              StructField("height", IntegerType()), StructField("frame_count", LongType()),
              StructField("key_frames", ArrayType(BinaryType(), False)),
              StructField("key_frame_times_s", ArrayType(DoubleType(), False)),
              # its sound's, null where it has none (the columns audio fills for itself)
              StructField("sample_rate", IntegerType()), StructField("channels", IntegerType())],
}
OUTCOME_FIELDS = [StructField("reason", StringType(), True), StructField("detail", StringType(), True)]

EMBEDDING_SCHEMA = StructType([
    StructField("sha256", StringType(), False),
    StructField("modality", StringType(), False),
    StructField("model_name", StringType(), False),
    StructField("model_revision", StringType(), False),
    StructField("vector", ArrayType(FloatType(), False), False),
    StructField("dim", IntegerType(), False),
])


def features_schema(media_type: str) -> StructType:
    return StructType(COMMON_FIELDS + TYPE_FIELDS[media_type] + OUTCOME_FIELDS)


def metadata_schema() -> StructType:
    """Every media type's columns in one flat schema (columns of other types are null)."""
    fields = {f.name: f for f in COMMON_FIELDS}
    for media_type in decoding.MEDIA_TYPES:
        fields.update({f.name: f for f in TYPE_FIELDS[media_type]})
    return StructType(list(fields.values()))


def model_spec(model: ModelConfig) -> embedders.ModelSpec:
    return embedders.ModelSpec(model.kind, model.model, model.revision, model.name)


def runtime(config: EmbeddingsConfig) -> embedders.Runtime:
    return embedders.Runtime(config.device, config.precision, config.batch_size, config.cpu_threads)


def limits(config: MediaConfig) -> decoding.Limits:
    return decoding.Limits(config.max_pixels, config.max_video_frames, config.max_audio_seconds, config.key_frames)


def with_content(df: DataFrame) -> DataFrame:
    """Fill `content` from `blob_uri` for objects stored out of line (read through Spark's file
    source, so s3a:// works); a blob that is missing leaves `content` null. The blob bytes are
    joined to a broadcast of the (small) rows that point at them, so they are never shuffled."""
    if "blob_uri" not in df.columns:
        return df
    spark = df.sparkSession
    uris = [r[0] for r in df.filter(F.col("blob_uri").isNotNull()).select("blob_uri").distinct().collect()]
    if not uris:
        return df
    present = [u for u in uris if file_exists(spark, u)]
    inline = df.filter(F.col("blob_uri").isNull())
    pointing = df.filter(F.col("blob_uri").isNotNull()).drop("content")
    missing = pointing.filter(~F.col("blob_uri").isin(present)).withColumn("content", F.lit(None).cast("binary"))
    parts = [inline, missing.select(*df.columns)]
    if present:
        blobs = read_files(spark, present).select(F.col("path").alias("blob_uri"), "content")
        parts.append(blobs.join(F.broadcast(pointing), "blob_uri").select(*df.columns))
    return functools.reduce(DataFrame.unionByName, parts)


def one_row_per_object(df: DataFrame) -> DataFrame:
    """One row per SHA-256 with all its paths, keeping the bytes of its first path only. The paths
    are aggregated without the bytes and joined back, so content is never shuffled."""
    paths = df.groupBy("sha256").agg(F.sort_array(F.collect_set("path")).alias("paths"))
    first = paths.select("sha256", F.col("paths")[0].alias("path"), "paths")
    return df.join(F.broadcast(first), ["sha256", "path"])


def _set_arrow_batches(spark: SparkSession, records: int, max_bytes: int) -> None:
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(records))
    spark.conf.set("spark.sql.execution.arrow.maxBytesPerBatch", str(max_bytes))


def _embedding_batch(sha256: list[str], vectors, modality: str, name: str, revision: str) -> pa.RecordBatch:
    """The batch's rows of silver.media_embeddings; a vector that is not of unit length (one with a
    NaN or infinite value, a model overflowing in half precision, say, or a zero vector) fails the task
    naming the objects, before anything is written."""
    with np.errstate(invalid="ignore", over="ignore"):
        unit = np.abs(np.linalg.norm(vectors.astype(np.float64), axis=1) - 1) <= 1e-3
    if not unit.all():
        bad = [key for key, ok in zip(sha256, unit, strict=True) if not ok]
        raise embedders.EmbedderError(f"{name}@{revision} gave {modality} vectors that are not of unit length "
                                      f"(NaN, infinite or zero) for {len(bad)} of {len(sha256)} objects, "
                                      f"e.g. sha256 {bad[0]}")
    n = len(sha256)
    return pa.RecordBatch.from_arrays([
        pa.array(sha256, pa.string()), pa.array([modality] * n, pa.string()), pa.array([name] * n, pa.string()),
        pa.array([revision] * n, pa.string()),
        pa.array([row.tolist() for row in vectors], pa.list_(pa.field("element", pa.float32(), False))),
        pa.array([vectors.shape[1]] * n, pa.int32()),
    ], schema=EMBEDDING_SCHEMA_ARROW)


EMBEDDING_SCHEMA_ARROW = pa.schema([
    pa.field("sha256", pa.string(), False), pa.field("modality", pa.string(), False),
    pa.field("model_name", pa.string(), False), pa.field("model_revision", pa.string(), False),
    pa.field("vector", pa.list_(pa.field("element", pa.float32(), False)), False),
    pa.field("dim", pa.int32(), False),
])


class _Processor:
    modality: ClassVar[str]

    def __init__(self, media: MediaConfig | None = None, embeddings: EmbeddingsConfig | None = None):
        self.media = media or MediaConfig()
        self.embeddings = embeddings or EmbeddingsConfig()

    @property
    def model(self) -> ModelConfig:
        return getattr(self.embeddings, "image" if self.modality == "video" else self.modality)

    def _small_arrow_batches(self, spark: SparkSession) -> None:
        """Media rows can be megabytes each: cap the Arrow batches the UDFs receive, by rows and bytes."""
        _set_arrow_batches(spark, self.media.arrow_max_records_per_batch, self.media.arrow_max_bytes_per_batch)

    def model_identity(self) -> tuple[str, str]:
        """(model_name, model_revision) of the configured model, without loading it."""
        return embedders.identity(self.modality, model_spec(self.model))


class _MediaProcessor(_Processor):
    def extract_features(self, df: DataFrame) -> DataFrame:
        media_type, lim, timeout = self.modality, limits(self.media), self.media.decode_timeout_s
        schema = features_schema(media_type)
        names = schema.fieldNames()
        arrow_schema = pa.schema([pa.field(f.name, _arrow(f.dataType), f.nullable) for f in schema.fields])
        self._small_arrow_batches(df.sparkSession)

        def features(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            for batch in batches:
                rows = []
                for sha, path, paths, content in zip(*(batch.column(c).to_pylist()
                                                       for c in ("sha256", "path", "paths", "content")), strict=True):
                    row = {"media_type": media_type, "sha256": sha, "path": path, "paths": paths,
                           "size_bytes": None if content is None else len(content)}
                    try:  # in a child process: a decoder that crashes on a file must not take the worker
                        row.update(isolation.inspector(timeout).inspect(media_type, path, content, lim).__dict__)
                    except decoding.MediaRejected as e:
                        row.update(reason=e.reason, detail=e.detail)
                    rows.append({n: row.get(n) for n in names})
                yield pa.RecordBatch.from_pylist(rows, schema=arrow_schema)

        objects = one_row_per_object(with_content(df)).select("sha256", "path", "paths", "content")
        return objects.mapInArrow(features, schema)

    def extract_embeddings(self, df: DataFrame) -> DataFrame:
        """`sha256` and `content` (or `blob_uri`) → one embedding per object with the configured model."""
        spec, rt, lim, modality = model_spec(self.model), runtime(self.embeddings), limits(self.media), self.modality
        name, revision = self.model_identity()
        self._small_arrow_batches(df.sparkSession)

        def embed(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            model = embedders.load_embedder(modality, spec, rt, lim)
            for batch in batches:
                sha = batch.column("sha256").to_pylist()
                yield _embedding_batch(sha, model.embed(batch.column("content").to_pylist()), modality, name, revision)

        return with_content(df).select("sha256", "content").mapInArrow(embed, EMBEDDING_SCHEMA)


class ImageProcessor(_MediaProcessor):
    modality = "image"


class AudioProcessor(_MediaProcessor):
    modality = "audio"


class VideoProcessor(_MediaProcessor):
    modality = "video"

    def extract_embeddings(self, df: DataFrame) -> DataFrame:
        """`sha256` and `key_frames` (from extract_features) → the mean of the frames' image embeddings."""
        spec, rt, lim = model_spec(self.model), runtime(self.embeddings), limits(self.media)
        name, revision = self.model_identity()
        self._small_arrow_batches(df.sparkSession)

        def embed(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            model = embedders.load_embedder("image", spec, rt, lim)
            for batch in batches:
                sha = batch.column("sha256").to_pylist()
                vectors = embedders.embed_video(model, batch.column("key_frames").to_pylist())
                yield _embedding_batch(sha, vectors, "video", name, revision)

        return df.select("sha256", "key_frames").mapInArrow(embed, EMBEDDING_SCHEMA)


class TextProcessor(_Processor):
    """Texts (captions, transcripts, messages) → one embedding per distinct normalised text, keyed
    by the SHA-256 of its UTF-8 bytes after NFC and strip (the event contract's normalisation)."""

    modality = "text"
    ARROW_RECORDS = 1024  # texts are small: big batches keep the model busy

    def extract_features(self, df: DataFrame, column: str = "text") -> DataFrame:
        """`column` → `text` (normalised) and `sha256`, one row per distinct non-empty text."""
        # Non-deterministic to the optimizer, so that it keeps the empty-text filter above the UDF:
        # pushed below it, the filter gets a second evaluation of the UDF, a second Python worker per
        # task, and workers without the model loaded for the embedding stage to land on.
        normalise = F.pandas_udf(_normalise_texts, StringType()).asNondeterministic()
        texts = df.select(normalise(F.col(column)).alias("text")).filter(F.length("text") > 0)
        # Texts are small in bytes but costly to embed: an explicit partition count, which adaptive
        # execution keeps (it would otherwise coalesce them into one task on one core).
        return (texts.select(F.sha2("text", 256).alias("sha256"), "text").dropDuplicates(["sha256"])
                .repartition(_parallelism(df.sparkSession), "sha256"))

    def tasks_for(self, spark: SparkSession, texts: int) -> int:
        """Tasks to embed `texts` in: one per Arrow batch of them, up to the cores. Each task's Python
        worker loads the model first (seconds on a CPU), which a handful of texts does not repay."""
        return max(1, min(_parallelism(spark), math.ceil(texts / self.ARROW_RECORDS)))

    def extract_embeddings(self, df: DataFrame, column: str = "text", texts_count: int | None = None) -> DataFrame:
        """`texts_count`, where the caller knows how many distinct texts `df` holds, sizes the tasks
        (`tasks_for`)."""
        spec, rt = model_spec(self.model), runtime(self.embeddings)
        name, revision = self.model_identity()
        _set_arrow_batches(df.sparkSession, self.ARROW_RECORDS, self.media.arrow_max_bytes_per_batch)

        def embed(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            model = embedders.load_embedder("text", spec, rt)
            for batch in batches:
                vectors = model.embed(batch.column("text").to_pylist())
                yield _embedding_batch(batch.column("sha256").to_pylist(), vectors, "text", name, revision)

        texts = df if {"sha256", "text"} <= set(df.columns) and column == "text" else self.extract_features(df, column)
        if texts_count is not None:
            texts = texts.coalesce(self.tasks_for(df.sparkSession, texts_count))
        return texts.select("sha256", "text").mapInArrow(embed, EMBEDDING_SCHEMA)


def _parallelism(spark: SparkSession) -> int:
    """Cores to spread work over: the cluster's default parallelism, or the shuffle partition count
    where the session has no SparkContext (Spark Connect)."""
    try:
        return max(1, spark.sparkContext.defaultParallelism)
    except PySparkAttributeError:  # JVM_ATTRIBUTE_NOT_SUPPORTED under Spark Connect
        return max(1, int(spark.conf.get("spark.sql.shuffle.partitions")))


def _normalise_texts(texts):
    import unicodedata

    return texts.map(lambda t: None if t is None else unicodedata.normalize("NFC", t).strip())


def _arrow(data_type) -> pa.DataType:
    from pyspark.sql.pandas.types import to_arrow_type

    return to_arrow_type(data_type)


PROCESSORS: dict[str, type[_MediaProcessor]] = {"image": ImageProcessor, "audio": AudioProcessor,
                                                 "video": VideoProcessor}
