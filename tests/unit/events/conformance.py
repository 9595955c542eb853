"""Loads tests/unit/events/conformance.jsonl and checks one registry snapshot against it.

Each entry is either one line (`line`, or `line_base64` for bytes that are not UTF-8, optionally
`pad_to_bytes` of trailing JSON white space) with its expected fate (`valid` or a reason code) and
optionally expected normalised `fields`; or a whole file (`file_base64`, `gzip`) with the expected
fate of each non-blank line by number. Used by the file-registry test here and the Apicurio test.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from palindrom.events.contract import EventValidator, Rejected, ValidEvent
from palindrom.events.lines import gunzip
from tests.unit.events.line_rules import split_lines

# split on "\n" only: cases hold U+2028, which str.splitlines() would split on.
CONFORMANCE = Path(__file__).with_name("conformance.jsonl")
MAX_LINE_BYTES = 10 << 20


def load_cases() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CONFORMANCE.read_text(encoding="utf-8").split("\n") if line.strip()]


def line_bytes(case: dict[str, Any]) -> bytes:
    raw = base64.b64decode(case["line_base64"]) if "line_base64" in case else case["line"].encode("utf-8")
    if "pad_to_bytes" in case:
        raw += b" " * (case["pad_to_bytes"] - len(raw))
    return raw


def file_bytes(case: dict[str, Any]) -> bytes:
    """A whole-file case's content, decompressed."""
    content = base64.b64decode(case["file_base64"])
    return b"".join(gunzip([content], 1 << 30)) if case.get("gzip") else content


def fate(result: ValidEvent | Rejected) -> str:
    return "valid" if isinstance(result, ValidEvent) else result.reason


def _contains(actual: Any, expected: Any) -> bool:
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and _contains(actual[k], v) for k, v in expected.items())
    return actual == expected


def check_case(validator: EventValidator, case: dict[str, Any]) -> list[str]:
    """Mismatches between what the validator does and what the case expects (empty: conforms)."""
    if "file_base64" in case:
        lines = split_lines(file_bytes(case))
        got = [[line.number, fate(validator.validate(line.text, len(line.raw)))] for line in lines]
        return [] if got == case["expect_lines"] else [f"{case['case']}: lines {got} != {case['expect_lines']}"]
    raw = line_bytes(case)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    result = validator.validate(text, len(raw))
    problems = []
    if fate(result) != case["expect"]:
        detail = getattr(result, "detail", "")
        problems.append(f"{case['case']}: got {fate(result)} ({detail}), expected {case['expect']}")
    elif "fields" in case and not _contains(result.fields, case["fields"]):
        problems.append(f"{case['case']}: fields {result.fields} do not contain {case['fields']}")
    return problems
