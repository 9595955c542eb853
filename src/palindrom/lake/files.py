"""Landing-folder file access through Spark's file sources, so local paths and s3a:// work alike."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F


@dataclass(frozen=True)
class LandingFile:
    name: str  # path relative to the landing folder, e.g. "2026-11-27/events-0001.jsonl.gz"
    uri: str
    size: int
    modified_at: dt.datetime


def relative_path(path: Column, folder: str) -> Column:
    prefix = folder.rstrip("/") + "/"
    return F.substring(path, len(prefix) + 1, 1 << 30)


def _binary_files(spark: SparkSession) -> object:
    return spark.read.format("binaryFile").option("recursiveFileLookup", "true")


def list_files(spark: SparkSession, folder: str) -> list[LandingFile]:
    """Every file under `folder` (recursively; names starting with '.' or '_' are in-flight and skipped)."""
    try:
        rows = (
            _binary_files(spark).load(folder)
            .select("path", relative_path(F.col("path"), folder).alias("name"), "length", "modificationTime")
            .collect()
        )
    except AnalysisException as e:
        if "PATH_NOT_FOUND" in str(e) or "Path does not exist" in str(e):
            return []
        raise
    return [LandingFile(r["name"], r["path"], r["length"], r["modificationTime"]) for r in rows]


def read_files(spark: SparkSession, uris: list[str]) -> DataFrame:
    """path, modificationTime, length and content (bytes) of the named files."""
    return _binary_files(spark).load(uris)
