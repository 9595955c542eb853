"""The event contract's line rules, and what ingestion needs beside Spark (pure Python).

A landing file is split on `\\n` only (U+2028 and lone `\\r` do not split); one trailing `\\r` is
dropped from a line and a UTF-8 BOM from the start of the file; a line whose text is only white
space (Python's `str.isspace`) is skipped; lines are numbered from 1 counting every physical line,
blank or not, so a line number points into the file. A line that is not valid UTF-8 is kept (its
text is null). `pipelines.bronze.ingest_events` applies the rules in Spark (`whole_file_lines`,
`bronze_lines`), or splits a streamed file here (`physical_lines`) and applies the rest in Spark.
"""

from __future__ import annotations

import posixpath
import zlib
from collections.abc import Iterable, Iterator

UTF8_BOM = b"\xef\xbb\xbf"
GZIP_WBITS = 16 + zlib.MAX_WBITS  # a gzip header and trailer around the deflate stream
DECOMPRESSED_PIECE_BYTES = 16 << 20
# Every character for which str.isspace() is true (tests/unit/events/test_lines.py checks the list).
WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
              "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")


class FileRefused(ValueError):
    """A landing file that cannot be ingested (too large, or a corrupt .gz); it stays in landing."""


# Compressions landing files may not use, by the suffix that names them (compared in lower case).
OTHER_COMPRESSIONS = {".bz2": "bzip2", ".zst": "zstd", ".xz": "xz", ".lzma": "lzma", ".lz4": "LZ4",
                      ".snappy": "Snappy", ".br": "Brotli", ".z": "compress", ".zip": "zip", ".7z": "7-Zip"}


def is_gzipped(name: str) -> bool:
    """Whether a landing file is gzipped, by its name: `.gz` in any case (`events.JSONL.GZ` too)."""
    return name.lower().endswith(".gz")


def unsupported_compression(name: str) -> str | None:
    """Why a landing file named so is refused, where its name says it is compressed otherwise than
    with gzip: read as plain text, every line would be quarantined as bytes that are no event."""
    kind = OTHER_COMPRESSIONS.get(posixpath.splitext(name)[1].lower())
    return None if kind is None else f"compressed with {kind} (by its name); landing files are plain or gzipped (.gz)"


def gunzip(pieces: Iterable[bytes], max_bytes: int, piece_bytes: int = DECOMPRESSED_PIECE_BYTES) -> Iterator[bytes]:
    """Gunzip a stream given in pieces (every member, one after another), piece by piece: never more
    than `piece_bytes` of output at a time. Zero bytes after a member are padding and skipped, as
    Python's gzip module skips them (gzip(1) stops there, dropping any member after). FileRefused
    where it is corrupt, truncated, or more than `max_bytes` once decompressed (raised before
    producing more than that). An empty stream is an empty file."""
    inflater, seen, produced = zlib.decompressobj(wbits=GZIP_WBITS), False, 0
    for data in pieces:
        seen = seen or bool(data)
        more = bool(data)
        while more:
            if inflater.eof:  # a member ended: what follows, past any padding, is the next member
                data = data.lstrip(b"\0")
                if not data:
                    break
                inflater = zlib.decompressobj(wbits=GZIP_WBITS)
            cap = min(piece_bytes, max_bytes + 1 - produced)
            try:
                out = inflater.decompress(data, cap)
            except zlib.error as e:
                raise FileRefused(f"not a valid gzip file ({e})") from e
            produced += len(out)
            if produced > max_bytes:
                raise FileRefused(f"more than {max_bytes} bytes once decompressed")
            if out:
                yield out
            data = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
            # A full piece out: the inflater may hold more output, though all its input is in.
            more = bool(data) or (len(out) == cap and not inflater.eof)
    if seen and not inflater.eof:
        raise FileRefused("truncated gzip stream")


def physical_lines(pieces: Iterable[bytes]) -> Iterator[list[bytes]]:
    """A file's physical lines from its (decompressed) content given in pieces: split on b"\\n" (which
    goes), a UTF-8 BOM at the start removed, every line kept (blank, or with its "\\r"). A list of the
    lines each piece completes, where it completes any; the last list is the content's last line (empty
    where the content ends with a newline), so line k of the file is the k-th bytes string over all
    lists."""
    pending: list[bytes] = []  # the line begun in earlier pieces, not yet ended
    at_start = True
    for piece in pieces:
        if at_start:  # the BOM is looked for once the content's first three bytes are in
            pending.append(piece)
            head = b"".join(pending)
            if len(head) < len(UTF8_BOM) and UTF8_BOM.startswith(head):
                pending = [head]
                continue
            piece, pending, at_start = head.removeprefix(UTF8_BOM), [], False
        end = piece.rfind(b"\n")
        if end < 0:
            pending.append(piece)
            continue
        lines = (b"".join(pending) + piece[:end]).split(b"\n") if pending else piece[:end].split(b"\n")
        pending = [piece[end + 1:]]
        yield lines
    yield [b"".join(pending)]
