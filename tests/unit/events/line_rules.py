"""The line rules of `palindrom.events.lines` in plain Python: the oracle the Spark split in
`pipelines.bronze.ingest_events` is checked against, and what the conformance file's whole-file
cases are read with."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from palindrom.events.lines import UTF8_BOM


class Line(NamedTuple):
    number: int
    raw: bytes
    text: str | None  # None where the bytes are not valid UTF-8


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
