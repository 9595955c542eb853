import gzip

import pytest

from palindrom.events.lines import FileRefused, Line, decompress, split_lines


def test_lines_split_on_newline_only_with_physical_numbers():
    content = b'\xef\xbb\xbf{"a":1}\r\n\n   \r\n{"b":\xe2\x80\xa8}\rx\n\xff\n{"c":3}'
    assert list(split_lines(content)) == [
        Line(1, b'{"a":1}', '{"a":1}'),
        Line(4, b'{"b":\xe2\x80\xa8}\rx', '{"b":\u2028}\rx'),
        Line(5, b"\xff", None),
        Line(6, b'{"c":3}', '{"c":3}'),
    ]


def test_only_a_leading_bom_is_removed():
    assert [line.text for line in split_lines(b"a\n\xef\xbb\xbfb")] == ["a", "\ufeffb"]


def test_unicode_whitespace_only_line_is_blank():
    assert list(split_lines("\u3000\u2003\t\n".encode())) == []


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
