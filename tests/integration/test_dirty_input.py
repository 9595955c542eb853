"""Randomly dirtied landing files through the real daily_ingestion tasks, checked line by line against
a plain-Python oracle: the line rules (tests/unit/events/line_rules.py), the contract's validator, and
the dedup rules replayed in ingestion order (files by path, then line number). The dirt: mutated
fields, types and timestamps, broken serialisations (truncation, trailing values, duplicate keys,
single quotes, NaN, deep nesting, a 5,000-digit integer, a lone surrogate), random bytes, blank and
BOM lines, CRLF, gzip, file names with spaces, '#', '%', ':' and non-ASCII in sub-folders, an empty file
and a corrupt gzip (refused, left in landing)."""

from __future__ import annotations

import collections
import datetime as dt
import gzip
import json
import random
from pathlib import Path

import pytest

from palindrom.events.contract import EventValidator, ValidEvent
from palindrom.lake import tables
from palindrom.lake.paths import Lake
from palindrom.lake.refusals import IngestRefused
from pipelines.bronze import ingest_events
from pipelines.gold import aggregate_events
from pipelines.sample_data import generate_events
from pipelines.silver import clean_events
from tests.conftest import lake_path
from tests.unit.events.conformance import MAX_LINE_BYTES
from tests.unit.events.line_rules import split_lines

pytestmark = pytest.mark.integration

TIMESTAMPS = ["2024-02-29T23:59:59.999999999+23:59", "2025-02-29T00:00:00Z", "2026-11-26T23:59:60Z",
              "0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00", "2026-11-26t10:00:00z",
              "2026-11-26T10:00:00", "2026-11-26 10:00:00Z", "2026-11-26T24:00:00Z", " 2026-11-26T10:00:00Z"]
ODD_VALUES = [None, 1, 1.0, 1.5, "1", "é", True, [], {"a": 1}, -0, 10**19, 2**63]


def mutated(rng: random.Random, event: dict) -> dict:
    event = json.loads(json.dumps(event))
    payload = event["payload"]
    match rng.randrange(14):
        case 0:
            event.pop(rng.choice(list(event)))
        case 1:
            event[rng.choice(list(event))] = rng.choice(ODD_VALUES)
        case 2:
            payload[rng.choice(list(payload))] = rng.choice(ODD_VALUES)
        case 3:
            event["unknown"] = {"deep": [1, {"x": None}]}  # ignored: still the same event
        case 4:
            event["occurred_at"] = rng.choice(TIMESTAMPS)
        case 5:
            event["schema_version"] = rng.choice([2, 3, 0, -1, "2", 2.0])
        case 6:
            event["event_type"] = rng.choice(["Conversation.Message", "", "user.action "])
        case 7 if "text" in payload:
            payload["text"] = rng.choice(["   ", "\u00a0\u2003", "e\u0301", " \ufeffhi", "\u2028x", "\x00"])
        case 8:
            event["event_id"] = rng.choice(["", "x" * 129, "x" * 128, " id "])
        case 9:
            event["source"] = rng.choice(["WEB", None, "api"])  # None: absent; "api": a conflicting copy
    return event


def serialised(rng: random.Random, event: dict) -> bytes:
    text = json.dumps(event)
    match rng.randrange(12):
        case 0:
            text = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
        case 1:
            text = json.dumps(dict(reversed(list(event.items()))))
        case 2:
            text = text.replace('"event_id"', '"event_id": "dup", "event_id"', 1)
        case 3:
            text = text[: rng.randrange(1, 60)]
        case 4:
            text += rng.choice([" {}", "x", " ", "\t", "]", "\r"])
        case 5:
            text = text.replace('"payload"', '"nan": NaN, "payload"')
        case 6:
            text = text.replace('"', "'")
        case 7:
            text = "[" * rng.choice([64, 65]) + "]" * rng.choice([64, 65])
        case 8:
            text = text.replace('"payload"', '"big": ' + "9" * 5000 + ', "payload"')
        case 9:
            text = text.replace('"payload"', '"s": "\\udc00", "payload"')
    return text.encode("utf-8", "surrogatepass")


def write_landing(landing: Path, seed: int) -> None:
    rng = random.Random(seed)
    good = list(generate_events(random.Random(seed), dt.date(2026, 11, 26), 60))
    for f in range(12):
        lines = []
        for _ in range(rng.randrange(60)):
            event, r = rng.choice(good), rng.random()
            if r < 0.45:
                lines.append(json.dumps(event).encode())
            elif r < 0.8:
                lines.append(serialised(rng, mutated(rng, event)))
            elif r < 0.85:
                lines.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40))))
            elif r < 0.9:
                lines.append(rng.choice([b"", b"   ", b"\t", b"\xef\xbb\xbf{}", b"\x00", "\u2028".encode()]))
            else:
                lines.append(serialised(rng, event))
        newline = rng.choice([b"\n", b"\r\n"])
        content = (b"\xef\xbb\xbf" if rng.random() < 0.2 else b"") + newline.join(lines)
        content += newline if rng.random() < 0.7 else b""
        name = rng.choice([f"f{f:02d}.jsonl", f"sub/f {f:02d} é.jsonl", f"f{f:02d}#%.jsonl",
                           f"2026-11-27T10:00/f{f:02d}T10:00:00Z.jsonl"])
        if rng.random() < 0.25:
            content, name = gzip.compress(content), name + ".gz"
        (landing / name).parent.mkdir(parents=True, exist_ok=True)
        (landing / name).write_bytes(content)
    (landing / "empty.jsonl").write_bytes(b"")


def oracle(landing: Path, validator: EventValidator) -> tuple[dict[tuple[str, int], str], list[dict]]:
    """Each non-blank line's fate (silver, identical, or its reason code), and the silver events."""
    fates, first = {}, {}
    for path in sorted((p for p in landing.rglob("*") if p.is_file()), key=lambda p: str(p.relative_to(landing))):
        content = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        for line in split_lines(content):
            result = validator.validate(line.text, len(line.raw))
            if not isinstance(result, ValidEvent):
                fate = result.reason
            elif result.fields["event_id"] not in first:
                first[result.fields["event_id"]], fate = result.fields, "silver"
            else:
                fate = "identical" if first[result.fields["event_id"]] == result.fields else "conflicting_duplicate"
            fates[(str(path.relative_to(landing)), line.number)] = fate
    return fates, list(first.values())


@pytest.mark.parametrize("seed", [2, 4])
def test_dirty_files_meet_the_oracle_line_by_line(spark_session, lake_config, repo_registry, seed):
    landing = lake_path(lake_config) / "landing" / "events"
    landing.mkdir(parents=True)
    write_landing(landing, seed)
    expected, events = oracle(landing, EventValidator(repo_registry.snapshot(), MAX_LINE_BYTES))
    (landing / "corrupt.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(IngestRefused, match=r"corrupt\.jsonl\.gz: truncated gzip stream"):
        ingest_events.run(spark_session, lake_config)  # the others are ingested, this one refused
    clean_events.run(spark_session, lake_config, registry=repo_registry)
    aggregate_events.run(spark_session, lake_config)

    lake = Lake(lake_config.storage_root)

    def read(name):
        return tables.read(spark_session, lake.table(name)).collect()

    silver = {(r["source_file"], r["line_number"]) for r in read("silver.events")}
    quarantined = {(r["source_file"], r["line_number"]): r["reason"] for r in read("silver.quarantine.events")}
    got = {(r["source_file"], r["line_number"]): "silver" if (r["source_file"], r["line_number"]) in silver
           else quarantined.get((r["source_file"], r["line_number"]), "identical") for r in read("bronze.events")}
    assert got == expected
    assert {"silver", "identical", "invalid_json", "invalid_utf8", "duplicate_key"} <= set(expected.values())
    daily = {(r["user_id"], r["event_date"], r["event_type"]): r["event_count"] for r in read("gold.events_daily")}
    micros_per_day = 86_400_000_000
    assert daily == collections.Counter(
        (e["user_id"], dt.date(1970, 1, 1) + dt.timedelta(days=e["occurred_at"] // micros_per_day), e["event_type"])
        for e in events)
