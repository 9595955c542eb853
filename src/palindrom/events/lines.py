"""Landing files → lines, by the event contract's line rules (pure Python, no Spark).

Split on `\\n` only (U+2028 and lone `\\r` do not split), drop one trailing `\\r`, drop a UTF-8
BOM at the start of the file, skip lines that are only white space (Python's `str.isspace`), and
number lines from 1 counting every physical line, blank or not, so a line number points into the file.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import NamedTuple

UTF8_BOM = b"\xef\xbb\xbf"


class FileRefused(ValueError):
    """A landing file that cannot be ingested (too large, or a corrupt .gz); it stays in landing."""


class Line(NamedTuple):
    number: int
    raw: bytes
    text: str | None  # None where the bytes are not valid UTF-8


def decompress(content: bytes, max_bytes: int) -> bytes:
    """Gunzip `content` (all members), refusing output larger than `max_bytes` before producing it."""
    out = bytearray()
    data = content
    while data:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            out += inflater.decompress(data, max_bytes + 1 - len(out))
        except zlib.error as e:
            raise FileRefused(f"not a valid gzip file ({e})") from e
        if len(out) > max_bytes:
            raise FileRefused(f"more than {max_bytes} bytes once decompressed")
        if not inflater.eof:
            raise FileRefused("truncated gzip stream")
        data = inflater.unused_data
    return bytes(out)


def split_lines(content: bytes) -> Iterator[Line]:
    """The non-blank lines of a (decompressed) JSON-lines file."""
    if content.startswith(UTF8_BOM):
        content = content[len(UTF8_BOM):]
    for number, raw in enumerate(content.split(b"\n"), start=1):
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            yield Line(number, raw, None)
            continue
        if text and not text.isspace():
            yield Line(number, raw, text)
