import gzip

import pytest

from palindrom.events.lines import WHITESPACE, FileRefused, decompress


def test_whitespace_is_every_character_python_calls_space():
    assert "".join(chr(c) for c in range(0x110000) if chr(c).isspace()) == WHITESPACE


def test_decompress_multi_member_gzip():
    assert decompress(gzip.compress(b"a\n") + gzip.compress(b"b\n"), 100) == b"a\nb\n"


def test_decompress_refuses_a_bomb_before_inflating_it():
    bomb = gzip.compress(b"\0" * 5_000_000)
    with pytest.raises(FileRefused, match="more than 1000 bytes once decompressed"):
        decompress(bomb, 1000)


@pytest.mark.parametrize(("content", "message"), [
    (b"not gzip at all", "not a valid gzip file"),
    (gzip.compress(b"x" * 1000, mtime=0)[:-10], "truncated gzip stream"),  # mtime=0: the same test id in every worker
])
def test_decompress_refuses_corrupt_files(content, message):
    with pytest.raises(FileRefused, match=message):
        decompress(content, 1 << 20)
