"""ingest_media (bronze): new files in landing/{images,audio,video}/ → bronze/{images,audio,video}.

Each file exactly once (by its path relative to its landing folder, the form of a media.uploaded
event's `file_name`): its size, modification time, SHA-256, ingestion time, batch id and bytes.
Objects over `media.inline_max_bytes` are copied once to bronze/blobs/<sha256> and the row points
there (`blob_uri`) instead of holding the bytes; landing/ is not kept, so nothing points back to it.
A file whose path Spark cannot read (`LandingFile.unreadable`, see `palindrom.lake.files`) is
refused, left in landing and recorded in bronze/_refusals/media; the other files are ingested, then
the task fails naming it (or, with `--on-refusal record` as in the job, succeeds, and
`check_landing` fails naming it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import BinaryType, LongType, StringType, StructField, StructType, TimestampType

from palindrom.config import PipelineConfig
from palindrom.lake import refusals, tables
from palindrom.lake.files import (
    LandingFile,
    copy_file,
    file_exists,
    list_files,
    not_taken,
    read_files,
    relative_path,
)
from palindrom.lake.paths import BLOBS, MEDIA_FOLDERS, Lake
from palindrom.logging import logger
from pipelines.tasks import ingest_task_main

BRONZE_MEDIA_SCHEMA = StructType([
    StructField("batch_id", StringType(), False),
    StructField("ingested_at", TimestampType(), False),
    StructField("path", StringType(), False),
    StructField("size_bytes", LongType(), False),
    StructField("modified_at", TimestampType(), True),
    StructField("sha256", StringType(), False),
    StructField("content", BinaryType(), True),  # null when the object is in bronze/blobs
    StructField("blob_uri", StringType(), True),
])


@dataclass(frozen=True)
class MediaIngestResult:
    batch_id: str
    files: dict[str, int]  # media type → files ingested
    blobs: int
    refused: list[str]  # landing folder/name of each file refused


def landing_files(spark: SparkSession, landing: str, files: list[LandingFile]) -> DataFrame:
    """path, size_bytes, modified_at, sha256 and content of landing files. Spark's binaryFile source
    skips zero-byte files, so those are added from the listing: they must reach bronze (and then
    quarantine) like any other file."""
    empty = spark.createDataFrame(
        [(f.name, 0, f.modified_at, hashlib.sha256(b"").hexdigest(), b"") for f in files if f.size == 0],
        "path string, size_bytes long, modified_at timestamp, sha256 string, content binary")
    non_empty = [f.uri for f in files if f.size > 0]
    if not non_empty:
        return empty
    return read_files(spark, non_empty).select(
        relative_path(F.col("path"), landing).alias("path"), F.col("length").alias("size_bytes"),
        F.col("modificationTime").alias("modified_at"), F.sha2("content", 256).alias("sha256"), "content",
    ).unionByName(empty)


def new_files(lake: Lake, media_type: str) -> list[LandingFile]:
    """A media type's landing files that bronze holds no row of, by name."""
    folder = MEDIA_FOLDERS[media_type]
    done = tables.distinct_values(lake.table(f"bronze.{folder}"), "path")
    return not_taken(list_files(lake.landing(folder)), done)


def up_to_date(config: PipelineConfig) -> str | None:
    lake = Lake(config.storage_root)
    if any(new_files(lake, media_type) for media_type in MEDIA_FOLDERS):
        return None
    return "no new media files in " + ", ".join(lake.landing(folder) for folder in MEDIA_FOLDERS.values())


def ingest_folder(spark: SparkSession, lake: Lake, media_type: str, batch_id: str, now: dt.datetime,
                  inline_max_bytes: int, refused: dict[tuple[str, str], str]) -> tuple[int, int]:
    """Ingest one media type's new landing files; returns (files, blobs copied). Files it cannot read
    are left out and added to `refused` ((landing folder, name) → why)."""
    folder = MEDIA_FOLDERS[media_type]
    landing, bronze = lake.landing(folder), lake.table(f"bronze.{folder}")
    found = new_files(lake, media_type)
    refused.update({(folder, f.name): f.unreadable for f in found if f.unreadable})
    pending = [f for f in found if (folder, f.name) not in refused]
    if not pending:
        logger.info("ingest_media: no new files in %s", landing)
        return 0, 0
    logger.info("ingest_media: %d new %s files (%d bytes) → %s, batch %s", len(pending), media_type,
                sum(f.size for f in pending), bronze, batch_id)
    files = landing_files(spark, landing, pending)
    large = [r for r in pending if r.size > inline_max_bytes]
    copied = 0
    if large:  # blobs first: a row never points at a blob that is not there
        by_path = {f.name: f.uri for f in large}
        for row in files.filter(F.col("size_bytes") > inline_max_bytes).select("path", "sha256").collect():
            target = lake.blob(row["sha256"])
            if not file_exists(spark, target):
                logger.info("ingest_media: %s (%s) → %s", row["path"], media_type, target)
                copy_file(spark, by_path[row["path"]], target)
                copied += 1
    inline = F.col("size_bytes") <= inline_max_bytes
    rows = files.select(
        F.lit(batch_id).alias("batch_id"), F.lit(now).cast("timestamp").alias("ingested_at"), "path", "size_bytes",
        "modified_at", "sha256", F.when(inline, F.col("content")).alias("content"),
        F.when(~inline, F.concat(F.lit(f"{lake.root}/{BLOBS}/"), "sha256")).alias("blob_uri"),
    )
    tables.ensure(spark, bronze, BRONZE_MEDIA_SCHEMA)
    tables.append(rows, bronze)
    return len(pending), copied


def run(spark: SparkSession, config: PipelineConfig, on_refusal: str = "fail") -> MediaIngestResult:
    lake = Lake(config.storage_root)
    now = dt.datetime.now(dt.UTC)
    batch_id = tables.new_run_id(now)
    counts, blobs, refused = {}, 0, {}
    for media_type in MEDIA_FOLDERS:
        counts[media_type], copied = ingest_folder(spark, lake, media_type, batch_id, now,
                                                   config.media.inline_max_bytes, refused)
        blobs += copied
    if any(counts.values()):
        logger.info("ingest_media: batch %s: %s; %d blobs copied", batch_id,
                    ", ".join(f"{n} {t}" for t, n in counts.items()), blobs)
    else:
        logger.info("ingest_media: no new media files; nothing committed")
    if refused:
        refusals.record(lake.table("bronze.media_refusals"), batch_id, now, refused)
        refusals.report({f"{lake.landing(folder)}/{name}": why for (folder, name), why in refused.items()},
                        "ingest_media", on_refusal)
    return MediaIngestResult(batch_id, counts, blobs, sorted(f"{folder}/{name}" for folder, name in refused))


def main(argv: list[str] | None = None) -> int:
    return ingest_task_main("ingest_media", run, __doc__, up_to_date, argv)


if __name__ == "__main__":
    raise SystemExit(main())
