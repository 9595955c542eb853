import gzip
import random

import pytest

from palindrom.events.lines import (
    UTF8_BOM,
    WHITESPACE,
    FileRefused,
    gunzip,
    is_gzipped,
    physical_lines,
    unsupported_compression,
)
from tests.unit.events.line_rules import split_lines

FRAGMENTS = [b"\n", b"\r", b"\r\n", UTF8_BOM, UTF8_BOM[:2], b" ", b"x", b'{"a":1}', b"\xff", b"\xe2\x80\xa8"]


def in_pieces(content: bytes, rng: random.Random, longest: int) -> list[bytes]:
    cuts = sorted(rng.sample(range(1, len(content)), min(len(content) - 1, rng.randint(0, 8)))) if content else []
    pieces = [content[a:b] for a, b in zip([0, *cuts], [*cuts, len(content)], strict=True)]
    return [p[i:i + longest] for p in pieces for i in range(0, len(p), longest)] + [b""] * rng.randint(0, 1)


def test_whitespace_is_every_character_python_calls_space():
    assert "".join(chr(c) for c in range(0x110000) if chr(c).isspace()) == WHITESPACE


def test_physical_lines_from_pieces_cut_anywhere_are_the_files_lines():
    """Wherever the pieces are cut (inside a BOM, a line end, a line), line k is the file's k-th line,
    less its "\\n" and the file's leading BOM: what the line rules number and keep (split_lines)."""
    rng = random.Random(3)
    for _ in range(2000):
        content = b"".join(rng.choices(FRAGMENTS, k=rng.randint(0, 25)))
        got = [line for group in physical_lines(in_pieces(content, rng, 4)) for line in group]
        assert got == content.removeprefix(UTF8_BOM).split(b"\n"), content
        for line in split_lines(content):
            assert got[line.number - 1].removesuffix(b"\r") == line.raw, content
    assert list(physical_lines([])) == [[b""]]


def test_gunzip_multi_member_gzip_in_small_pieces():
    rng = random.Random(4)
    content = bytes(rng.getrandbits(8) for _ in range(3000)) + b"a" * 3000
    stream = gzip.compress(content[:1000], mtime=0) + gzip.compress(content[1000:], mtime=0)
    out = list(gunzip(in_pieces(stream, rng, 7), 1 << 20, piece_bytes=5))  # output held back at every step
    assert b"".join(out) == content
    assert max(map(len, out)) == 5
    assert list(gunzip([], 10)) == list(gunzip([b""], 10)) == []  # an empty file has no lines


def test_gunzip_skips_zero_padding_after_a_member_as_pythons_gzip_does():
    rng = random.Random(5)
    member = gzip.compress(b'{"a":1}\n', mtime=0)
    padded = member + b"\0" * 512 + member + b"\0" * 3
    assert gzip.decompress(padded) == b'{"a":1}\n' * 2  # Python's own reading
    for _ in range(20):  # the padding cut anywhere, its pieces alone or with a member's end
        assert b"".join(gunzip(in_pieces(padded, rng, 50), 1 << 20)) == b'{"a":1}\n' * 2


def test_gunzip_refuses_a_bomb_before_inflating_it():
    bomb = gzip.compress(b"\0" * 5_000_000)
    out = []
    with pytest.raises(FileRefused, match="more than 1000 bytes once decompressed"):
        out.extend(gunzip([bomb], 1000))
    assert sum(map(len, out)) <= 1000  # what came out before the refusal


@pytest.mark.parametrize(("content", "message"), [
    (b"not gzip at all", "not a valid gzip file"),
    (gzip.compress(b"x" * 1000, mtime=0)[:-10], "truncated gzip stream"),  # mtime=0: the same test id in every worker
    (gzip.compress(b"x\n", mtime=0) + b"\0\0not gzip", "not a valid gzip file"),  # no member after the padding
    (b"\0" * 20, "not a valid gzip file"),  # padding without a member
])
def test_gunzip_refuses_corrupt_files(content, message):
    with pytest.raises(FileRefused, match=message):
        b"".join(gunzip([content], 1 << 20))


def test_a_landing_files_compression_is_read_from_its_name():
    assert is_gzipped("2026-11-27/events.jsonl.gz")
    assert is_gzipped("EVENTS.JSONL.GZ")
    assert not is_gzipped("events.jsonl")
    assert unsupported_compression("day/events.jsonl.bz2") == (
        "compressed with bzip2 (by its name); landing files are plain or gzipped (.gz)")
    assert unsupported_compression("events.jsonl.ZST").startswith("compressed with zstd")
    for name in ("events.jsonl", "events.jsonl.gz", "day.zip/events.jsonl", "day.xz/events", "events"):
        assert unsupported_compression(name) is None, name
