"""The event contract's line rules, and what ingestion needs beside Spark (pure Python).

A landing file is split on `\\n` only (U+2028 and lone `\\r` do not split); one trailing `\\r` is
dropped from a line and a UTF-8 BOM from the start of the file; a line whose text is only white
space (Python's `str.isspace`) is skipped; lines are numbered from 1 counting every physical line,
blank or not, so a line number points into the file. A line that is not valid UTF-8 is kept (its
text is null). `pipelines.bronze.ingest_events.split_lines` applies the rules in Spark.
"""

from __future__ import annotations

import zlib

UTF8_BOM = b"\xef\xbb\xbf"
# Every character for which str.isspace() is true (tests/unit/events/test_lines.py checks the list).
WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
              "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")


class FileRefused(ValueError):
    """A landing file that cannot be ingested (too large, or a corrupt .gz); it stays in landing."""


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
