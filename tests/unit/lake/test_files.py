import os

import pytest

from palindrom.lake import files
from palindrom.lake.files import NOT_UTF8_NAME, list_files, not_taken, read_files

GLOB_LIKE_NAMES = ["events[1].jsonl", "events1.jsonl", "x{y,z}.jsonl", "a*b.jsonl", "q?.jsonl", "back\\slash.jsonl"]
# Characters a URI escapes or reads as syntax (a path's '%41' is not 'A'), and non-ASCII ones.
URI_LIKE_NAMES = ["a b.jsonl", "a%20b.jsonl", "%41.jsonl", "x#y.jsonl", "p+q.jsonl", "semi;c.jsonl", "caf\u00e9.jsonl"]


def test_each_landing_file_is_read_as_itself_whatever_glob_or_uri_characters_its_name_holds(spark_session, tmp_path):
    names = GLOB_LIKE_NAMES + URI_LIKE_NAMES
    for name in names:
        (tmp_path / name).write_text(f"content of {name}\n")
    (tmp_path / ".partial.jsonl").write_text("in flight\n")  # a writer's file before its rename
    (tmp_path / "_SUCCESS").write_text("")
    (tmp_path / "empty.jsonl").write_text("")

    listed = list_files(tmp_path.as_uri())
    assert sorted(f.name for f in listed) == sorted([*names, "empty.jsonl"])
    rows = read_files(spark_session, [f.uri for f in listed]).collect()
    read = {r["path"].rsplit("/", 1)[-1]: bytes(r["content"]).decode() for r in rows}
    assert len(rows) == len(names)  # one row a file; the zero-byte file gives none
    assert read == {name: f"content of {name}\n" for name in names}


def test_not_taken_keeps_the_files_whose_names_were_not_taken_in_name_order(tmp_path):
    for name in ["b.jsonl", "a/z.jsonl", "a.jsonl", "c.jsonl.gz"]:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("x\n")

    waiting = not_taken(list_files(tmp_path.as_uri()), {"b.jsonl", "gone.jsonl"})
    assert [(f.name, f.uri) for f in waiting] == [(name, f"{tmp_path.as_uri()}/{name}")
                                                  for name in ["a.jsonl", "a/z.jsonl", "c.jsonl.gz"]]


def test_a_local_file_or_folder_whose_name_holds_a_colon_is_read(spark_session, tmp_path):
    # Hadoop's checksum layer made such a name a URI with a scheme: the file could not be opened.
    names = ["events-2026-11-27T10:00:00Z.jsonl", "2026-11-27T10:00/c:d.jsonl"]
    for name in names:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(f"content of {name}\n")

    listed = list_files(tmp_path.as_uri())
    assert sorted(f.name for f in listed) == sorted(names)
    rows = read_files(spark_session, [f.uri for f in listed]).collect()
    prefix = tmp_path.as_uri().removeprefix("file://")
    read = {r["path"].split(prefix, 1)[1].lstrip("/"): bytes(r["content"]).decode() for r in rows}
    assert read == {name: f"content of {name}\n" for name in names}


def test_names_spark_cannot_read_are_exactly_those_unreadable_name_refuses(spark_session, tmp_path, monkeypatch):
    """A path holding ':' and a glob character, in any of its parts, fails in Hadoop's globber; the check
    names exactly those (asserted against Spark itself, with read_files' guard switched off)."""
    unreadable = ["g[1]:x.jsonl", "h*:x.jsonl", "j:x?.jsonl", "i\\:x.jsonl", "d:1/x[1].jsonl", "e[1]/a:b.jsonl",
                  "f{a,b}:x/p.jsonl"]
    names = [*unreadable, "d:1/plain.jsonl", "e[1]/plain.jsonl", "events-2026-11-27T10:00:00Z.jsonl"]
    for name in names:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("x\n")
    listed = {f.name: f.uri for f in list_files(tmp_path.as_uri())}
    assert sorted(listed) == sorted(names)
    refused = {name for name in names if files.unreadable_name(name)}
    assert refused == set(unreadable)
    with pytest.raises(ValueError, match=r"g\[1\]:x\.jsonl: its path holds both ':' and one of"):
        read_files(spark_session, [listed["g[1]:x.jsonl"]])

    monkeypatch.setattr(files, "unreadable_name", lambda name: None)
    for name, uri in listed.items():
        if name in refused:
            with pytest.raises(Exception, match="Relative path in absolute URI"):
                read_files(spark_session, [uri]).collect()
        else:
            assert bytes(read_files(spark_session, [uri]).collect()[0]["content"]) == b"x\n"


def test_a_local_path_that_is_not_utf8_is_listed_with_escapes_as_unreadable(tmp_path):
    # pyarrow decodes every path as UTF-8: such a name made the whole listing fail, naming no file.
    for raw in (b"caf\xe9.jsonl", b"d\xfcr/a.jsonl", b".caf\xe9.jsonl", b"ok.jsonl", b"g[1]:x.jsonl"):
        path = os.path.join(os.fsencode(tmp_path), raw)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(b"x\n")
    listed = {f.name: (f.uri, f.size, f.unreadable) for f in list_files(tmp_path.as_uri())}
    assert listed == {  # the hidden one skipped, as ever
        "caf\\xe9.jsonl": (f"{tmp_path.as_uri()}/caf\\xe9.jsonl", 2, NOT_UTF8_NAME),
        "d\\xfcr/a.jsonl": (f"{tmp_path.as_uri()}/d\\xfcr/a.jsonl", 2, NOT_UTF8_NAME),
        "ok.jsonl": (f"{tmp_path.as_uri()}/ok.jsonl", 2, None),
        "g[1]:x.jsonl": (f"{tmp_path.as_uri()}/g[1]:x.jsonl", 2, files.unreadable_name("g[1]:x.jsonl"))}
    assert listed["g[1]:x.jsonl"][2] is not None
