from palindrom.lake.files import list_files, read_files

NAMES = [
    "events[1].jsonl", "events1.jsonl", "x{y,z}.jsonl", "a*b.jsonl", "q?.jsonl", "back\\slash.jsonl",  # glob characters
    "events-2026-11-27T10:00:00Z.jsonl", "c:d.jsonl", "hour=10:00/events.jsonl",  # colons (Hadoop paths)
]


def test_each_landing_file_is_read_as_itself_whatever_its_name_holds(spark_session, tmp_path):
    for name in NAMES:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(f"content of {name}\n")
    (tmp_path / ".partial.jsonl").write_text("in flight\n")  # a writer's file before its rename
    (tmp_path / "_SUCCESS").write_text("")
    (tmp_path / "empty.jsonl").write_text("")

    listed = list_files(spark_session, tmp_path.as_uri())
    assert sorted(f.name for f in listed) == sorted([*NAMES, "empty.jsonl"])
    rows = read_files(spark_session, [f.uri for f in listed]).collect()
    assert len(rows) == len(NAMES)  # one row a file; the zero-byte file gives none
    assert {r["path"]: bytes(r["content"]).decode() for r in rows} == {
        f.uri: f"content of {f.name}\n" for f in listed if f.name != "empty.jsonl"}
