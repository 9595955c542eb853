"""Landing-folder file access through Spark's file sources, so local paths and s3a:// work alike."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass

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


def list_files(spark: SparkSession, folder: str) -> list[LandingFile]:
    """Every file under `folder`, recursively, through Hadoop's FileSystem (so zero-byte files, which
    Spark's file sources skip, are listed too). Names starting with '.' or '_' are in-flight or
    bookkeeping and skipped, as Spark's sources skip them."""
    root, fs = _hadoop_path(spark, folder)
    if not fs.exists(root):
        return []
    prefix = fs.makeQualified(root).toString().rstrip("/") + "/"
    found, it = [], fs.listFiles(root, True)
    while it.hasNext():
        status = it.next()
        uri = status.getPath().toString()
        name = uri.removeprefix(prefix)
        if any(part.startswith((".", "_")) for part in name.split("/")):
            continue
        modified = dt.datetime.fromtimestamp(status.getModificationTime() / 1000, dt.UTC)
        found.append(LandingFile(name, uri, status.getLen(), modified))
    return found


# Spark expands glob patterns in the paths it reads: `events[1].jsonl` would read `events1.jsonl`, and
# `x{a,b}.jsonl` nothing. Hadoop's glob syntax takes these characters literally after a backslash.
_GLOB_SPECIAL = re.compile(r"([\\{}\[\]*?])")


def read_files(spark: SparkSession, uris: list[str]) -> DataFrame:
    """path, modificationTime, length and content (bytes) of the named files (zero-byte files give no
    row); each uri is read as the one file it names (glob characters in it taken literally)."""
    return spark.read.format("binaryFile").load([_GLOB_SPECIAL.sub(r"\\\1", uri) for uri in uris])


def _hadoop_path(spark: SparkSession, uri: str):
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return path, path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())


def file_exists(spark: SparkSession, uri: str) -> bool:
    path, fs = _hadoop_path(spark, uri)
    return bool(fs.exists(path))


def copy_file(spark: SparkSession, source: str, target: str) -> None:
    """Copy one file through Hadoop's FileSystem (any scheme to any scheme), atomically by rename
    where the target store supports it: a reader never sees a partial target."""
    jvm = spark.sparkContext._jvm
    src, src_fs = _hadoop_path(spark, source)
    dst, dst_fs = _hadoop_path(spark, target)
    tmp = jvm.org.apache.hadoop.fs.Path(dst.getParent(), f"_{dst.getName()}.{uuid.uuid4().hex}.tmp")
    jvm.org.apache.hadoop.fs.FileUtil.copy(src_fs, src, dst_fs, tmp, False, True,
                                           spark.sparkContext._jsc.hadoopConfiguration())
    if not dst_fs.rename(tmp, dst):
        dst_fs.delete(tmp, False)
        if not dst_fs.exists(dst):
            raise OSError(f"could not copy {source} to {target}")


