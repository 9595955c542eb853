"""Landing-folder file access, local paths and s3a:// alike: listed by pyarrow's filesystems, read by
Spark's binaryFile source or, in pieces, by pyarrow's filesystems (piece_reader), copied by Hadoop's
FileSystem."""

from __future__ import annotations

import datetime as dt
import os
import re
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass

import pyarrow.fs as pafs
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from palindrom.lake.objects import filesystem


@dataclass(frozen=True)
class LandingFile:
    name: str  # path relative to the landing folder, e.g. "2026-11-27/events-0001.jsonl.gz"
    uri: str
    size: int
    modified_at: dt.datetime
    unreadable: str | None = None  # why Spark cannot read it by its name (unreadable_name, NOT_UTF8_NAME)


NOT_UTF8_NAME = "its path is not valid UTF-8 (shown with \\x escapes), so Spark cannot name it; rename it"


def relative_path(path: Column, folder: str) -> Column:
    prefix = folder.rstrip("/") + "/"
    return F.substring(path, len(prefix) + 1, 1 << 30)


def list_files(folder: str) -> list[LandingFile]:
    """Every file under `folder`, recursively, zero-byte files included (Spark's file sources skip
    them). Listed by pyarrow's filesystem for the URI, in one native call: through Hadoop's, each file
    was five Py4J round trips (1,000 files: 3.3 s), and landing folders only grow. Names starting with
    '.' or '_' are in-flight or bookkeeping and skipped, as Spark's sources skip them; `uri` is the
    folder's URI and the name, as Spark reads it. A local file whose path is not UTF-8 (another
    encoding's name: S3 keys are always UTF-8) is listed with \\x escapes and `NOT_UTF8_NAME`."""
    fs, path = filesystem(folder)
    prefix, base = folder.rstrip("/") + "/", path.rstrip("/") + "/"
    found, not_utf8 = [], False
    for info in fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True)):
        try:
            name = info.path.removeprefix(base)
        except UnicodeDecodeError:  # pyarrow decodes each path as UTF-8 and gives no bytes
            not_utf8 = True
            continue
        if info.type == pafs.FileType.File and not _hidden(name):
            found.append(LandingFile(name, prefix + name, info.size, _to_millisecond(info.mtime),
                                     unreadable_name(name)))
    if not_utf8:
        if not isinstance(fs, pafs.LocalFileSystem):
            raise ValueError(f"{folder}: a path under it is not UTF-8")
        found += _files_not_utf8(base, prefix)
    return found


def _hidden(name: str) -> bool:
    return any(part.startswith((".", "_")) for part in name.split("/"))


def _to_millisecond(mtime: dt.datetime) -> dt.datetime:
    """A listing's modification time as Spark's binaryFile source gives it: UTC, to the millisecond."""
    return mtime.astimezone(dt.UTC).replace(microsecond=mtime.microsecond // 1000 * 1000)


def _files_not_utf8(base: str, prefix: str) -> list[LandingFile]:
    """The files under the local folder `base` whose paths (relative to it) are not UTF-8, named with
    \\x escapes for their other bytes."""
    raw_base, found = os.fsencode(base), []
    for top, _, names in os.walk(raw_base):
        for raw in names:
            relative = os.path.join(top, raw)[len(raw_base):]
            try:
                relative.decode("utf-8")
            except UnicodeDecodeError:
                name = relative.decode("utf-8", "backslashreplace")
                if not _hidden(name):
                    stat = os.stat(os.path.join(top, raw))
                    modified = _to_millisecond(dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC))
                    found.append(LandingFile(name, prefix + name, stat.st_size, modified, NOT_UTF8_NAME))
    return found


def not_taken(listing: Iterable[LandingFile], taken: Collection[str]) -> list[LandingFile]:
    """The files of a listing whose names are not in `taken`, in name order: what an ingest has
    still to take in, in the order it takes them."""
    return sorted((f for f in listing if f.name not in taken), key=lambda f: f.name)


def piece_reader(folder: str, piece_bytes: int) -> Callable[[str], Iterator[bytes]]:
    """A reader of the files under `folder` by the names list_files gives them: a file's bytes as they
    are stored (never decompressed: pyarrow would gunzip a .gz by its name), `piece_bytes` at a time.
    Through pyarrow's filesystem, so a Python task needs no JVM; the filesystem is made once, here."""
    fs, path = filesystem(folder)
    base = path.rstrip("/") + "/"

    def pieces(name: str) -> Iterator[bytes]:
        with fs.open_input_stream(base + name, compression=None) as stream:
            while piece := stream.read(piece_bytes):
                yield piece

    return pieces


# Spark expands glob patterns in the paths it reads: `events[1].jsonl` would read `events1.jsonl`, and
# `x{a,b}.jsonl` nothing. Hadoop's glob syntax takes these characters literally after a backslash.
_GLOB_SPECIAL = re.compile(r"([\\{}\[\]*?])")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def unreadable_name(name: str) -> str | None:
    """Why Spark cannot read a file of this name (a path relative to its landing folder), or None.
    Hadoop's globber walks a path holding a glob character one folder at a time and takes a part
    holding ':' for a URI with a scheme ("Relative path in absolute URI"), escaped or not."""
    if ":" in name and _GLOB_SPECIAL.search(name):
        return ("its path holds both ':' and one of \\ { } [ ] * ?, which Spark's file sources cannot "
                "read (Hadoop takes the part with ':' for a URI); rename it")
    return None


def read_files(spark: SparkSession, uris: list[str]) -> DataFrame:
    """path, modificationTime, length and content (bytes) of the named files (zero-byte files give no
    row); each uri is read as the one file it names (glob characters in it taken literally). A uri
    that `unreadable_name` refuses is a ValueError naming it, not Spark's URISyntaxException."""
    for uri in uris:
        if why := unreadable_name(_SCHEME.sub("", uri)):
            raise ValueError(f"{uri}: {why}")
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


