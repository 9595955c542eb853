"""Small files beside the tables (dataset cards, plots, manifests, tokenizers) through pyarrow's
filesystems, so the same code writes to a local root and to S3, with or without a JVM."""

from __future__ import annotations

import pyarrow.fs as pafs

from palindrom.lake.paths import native_uri


def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """pyarrow's filesystem for a lake URI (file:, s3a://, a local path), and the path within it (as
    written: pyarrow's `from_uri` parses a whole URI, and refuses a space or a non-ASCII letter in it)."""
    native = native_uri(uri)
    if native.startswith("/"):
        return pafs.LocalFileSystem(), native
    scheme, _, path = native.partition("://")
    bucket, _, key = path.partition("/")
    fs, bucket_path = pafs.FileSystem.from_uri(f"{scheme}://{bucket}")
    return fs, f"{bucket_path}/{key}".rstrip("/")


def write_bytes(uri: str, data: bytes) -> None:
    """Write the whole file (to a temporary name, then renamed into place where the filesystem can)."""
    fs, path = filesystem(uri)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    if isinstance(fs, pafs.LocalFileSystem):
        with fs.open_output_stream(path + ".tmp") as out:
            out.write(data)
        fs.move(path + ".tmp", path)
        return
    with fs.open_output_stream(path) as out:  # an S3 object appears whole when its upload completes
        out.write(data)


def read_bytes(uri: str) -> bytes:
    fs, path = filesystem(uri)
    try:
        with fs.open_input_stream(path) as f:
            return f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"{uri}: no such file") from None


def delete_folder(uri: str) -> None:
    """Delete a folder and everything in it; a missing folder is fine."""
    fs, path = filesystem(uri)
    if fs.get_file_info(path).type != pafs.FileType.NotFound:
        fs.delete_dir(path)
