"""The compiled checks against a second, independent reading of the contract: the registered JSON
Schemas checked by the jsonschema library, with the contract's departures from JSON Schema applied
around it (strict 64-bit integers, null as absent, unknown fields ignored, free text normalised,
date-time a real instant in years 0001-9999 UTC), over sample events with random field-level
mutations. The two must find the same lines valid, with the same normalised fields, and each
rejection's reason must be one the reference finds too (the library reports every error, the
validator the first)."""

from __future__ import annotations

import copy
import datetime as dt
import json
import random
import re
import unicodedata
from typing import Any

import jsonschema
import pytest

from palindrom.events import contract
from palindrom.events.contract import EventValidator, ValidEvent
from pipelines.sample_data import generate_events
from tests.unit.events.conformance import MAX_LINE_BYTES

FREE_TEXT = {"text", "comment", "caption", "transcript"}  # the list, not the module's constant
INT64 = {"minimum": -(2**63), "maximum": 2**63 - 1}
KEYWORD_REASONS = {"required": contract.MISSING_FIELD, "type": contract.WRONG_TYPE,
                   "enum": contract.INVALID_VALUE, "minimum": contract.INVALID_VALUE,
                   "maximum": contract.INVALID_VALUE, "minLength": contract.INVALID_VALUE,
                   "maxLength": contract.INVALID_VALUE, "format": contract.INVALID_TIMESTAMP}

DATE_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?([Zz]|[+-]\d\d:\d\d)", re.ASCII)
EPOCH = dt.datetime(1970, 1, 1)
MICROSECOND = dt.timedelta(microseconds=1)
FIRST = (dt.datetime(1, 1, 1) - EPOCH) // MICROSECOND
LAST = (dt.datetime(9999, 12, 31, 23, 59, 59, 999999) - EPOCH) // MICROSECOND


def instant_micros(text: str) -> int | None:
    """An RFC 3339 date-time as the contract reads it, in UTC microseconds (fraction truncated); None
    if it is not one."""
    m = DATE_TIME.fullmatch(text)
    if m is None:
        return None
    *fields, fraction, offset = m.groups()
    try:
        local = dt.datetime(*map(int, fields))  # refuses Feb 30, hour 24, second 60
    except ValueError:
        return None
    offset_minutes = 0
    if offset not in "Zz":
        hours, minutes = int(offset[1:3]), int(offset[4:])
        if hours > 23 or minutes > 59:
            return None
        offset_minutes = (hours * 60 + minutes) * (1 if offset[0] == "+" else -1)
    micros = ((local - EPOCH) // MICROSECOND + int((fraction or "").ljust(6, "0")[:6])
              - offset_minutes * 60_000_000)
    return micros if FIRST <= micros <= LAST else None


FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("date-time")
def _is_date_time(value: Any) -> bool:
    return type(value) is not str or instant_micros(value) is not None


StrictValidator = jsonschema.validators.extend(
    jsonschema.Draft7Validator,
    type_checker=jsonschema.Draft7Validator.TYPE_CHECKER.redefine(
        "integer", lambda _, value: type(value) is int))  # JSON Schema's own counts 1.0 as an integer


def with_int64_limits(node: dict) -> dict:
    """The schema with every integer also held to the signed 64-bit range."""
    if node.get("type") == "integer":
        return {"allOf": [node, INT64]}
    if "properties" in node:
        return {**node, "properties": {name: with_int64_limits(sub) for name, sub in node["properties"].items()}}
    return node


def prepared(value: Any, node: dict, name: str = "") -> Any:
    """What validation sees: at each level with named properties, unknown and null fields dropped
    and free text NFC-normalised and stripped; a free-form object as it is."""
    if type(value) is dict and "properties" in node:
        return {key: prepared(sub, node["properties"][key], key) for key, sub in value.items()
                if key in node["properties"] and sub is not None}
    if name in FREE_TEXT and type(value) is str:
        return unicodedata.normalize("NFC", value).strip()
    return value


class Reference:
    """The contract read with jsonschema doing the schema checks: a parsed line → ("valid", its
    fields) or (the set of reasons it can be refused for, None)."""

    def __init__(self, schemas: dict[str, dict[int, dict]]):
        self.schemas = schemas
        self.validators = {(event_type, version): StrictValidator(with_int64_limits(schema), format_checker=FORMATS)
                           for event_type, versions in schemas.items() for version, schema in versions.items()}

    def fate(self, document: Any) -> tuple[str | set[str], dict | None]:
        if type(document) is not dict:
            return {contract.NOT_AN_OBJECT}, None
        event_type = document.get("event_type")
        if event_type is None:
            return {contract.MISSING_FIELD}, None
        if type(event_type) is not str:
            return {contract.WRONG_TYPE}, None
        if event_type not in self.schemas:
            return {contract.UNKNOWN_EVENT_TYPE}, None
        version = document.get("schema_version")
        if version is None:
            return {contract.MISSING_FIELD}, None
        if type(version) is not int:
            return {contract.WRONG_TYPE}, None
        if not INT64["minimum"] <= version <= INT64["maximum"]:
            return {contract.INVALID_VALUE}, None
        if version not in self.schemas[event_type]:
            return {contract.UNKNOWN_SCHEMA_VERSION}, None
        seen = prepared(document, self.schemas[event_type][version])
        errors = list(self.validators[event_type, version].iter_errors(seen))
        if errors:
            return {KEYWORD_REASONS[e.validator] for e in errors}, None
        return "valid", {**seen, "occurred_at": instant_micros(seen["occurred_at"])}


TIMESTAMPS = [
    "2026-11-26T10:00:00Z", "2026-11-26t10:00:00z", "2026-11-26T10:00:00.123456789+05:30",
    "2026-11-26T10:00:00.1234567890Z", "2026-11-26T10:00:00.Z", "2026-11-26 10:00:00Z", "2026-11-26T10:00:00",
    "2026-11-26T10:00Z", "2026-11-26T10:00:00+0530", "2026-11-26T10:00:00,5Z", "2026-1-26T10:00:00Z",
    " 2026-11-26T10:00:00Z", "2026-11-26T10:00:00Z\n", "２０２６-11-26T10:00:00Z", "2024-02-29T23:59:59-23:59",
    "2026-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-11-26T24:00:00Z", "2026-11-26T23:60:00Z",
    "2026-11-26T23:59:60Z", "2026-11-26T10:00:00+24:00", "2026-11-26T10:00:00-00:60", "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+00:01", "0000-12-31T23:59:59Z", "9999-12-31T23:59:59.999999999Z",
    "9999-12-31T23:59:59-00:01", "1969-12-31T23:59:59.9999995Z", "1970-01-01T00:00:00.000001-00:00",
]
VALUES = [
    None, True, False, 0, 1, -1, 2, 1.0, 0.5, -0.0, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**30,
    "", " ", "\t\n", "x", " x ", "1", "-1", "user", "User", "assistant", "system", "click", "regenerate",
    "audio", "image", "web", "API", "e\u0301", "\u00e9", "\u3000x\u3000", "\u200b", "\u2028", "\x85", "😀" * 128,
    "😀" * 129, "x" * 128, "x" * 129, [], [1], {}, {"a": None}, {"n": 2**70}, {"deep": [[[{"x": 1.5}]]]},
    "conversation.message", "feedback.rating", "media.uploaded", "user.action", "conversation.message ",
    *TIMESTAMPS,
]
NEW_KEYS = ["extra", "Event_ID", "payload ", "language", "model", "properties", "comment", "caption", "turn", "text"]


def mutated(rng: random.Random, event: dict) -> dict:
    """The event with one to three random field-level changes: a field removed, set to null or to
    another value (of any type), a key added (unknown, or known elsewhere), the payload replaced, a
    timestamp of the edge cases in occurred_at."""
    event = copy.deepcopy(event)
    for _ in range(rng.randint(1, 3)):
        levels = [event] + [v for v in (event.get("payload"),) if type(v) is dict]
        levels += [v for v in (levels[-1].get("properties"),) if type(v) is dict]
        level = rng.choice(levels)
        op = rng.randrange(5)
        if op == 4:
            event["occurred_at"] = rng.choice(TIMESTAMPS)
        elif op == 0 and level:
            del level[rng.choice(sorted(level))]
        elif op in (0, 1):
            level[rng.choice(NEW_KEYS)] = rng.choice(VALUES)
        elif level:
            level[rng.choice(sorted(level))] = rng.choice(VALUES)
    return event


@pytest.fixture(scope="module")
def registry_schemas(repo_registry) -> dict[str, dict[int, dict]]:
    return repo_registry.snapshot()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_validator_agrees_with_jsonschema_on_mutated_events(registry_schemas, seed):
    validator = EventValidator(registry_schemas, MAX_LINE_BYTES)
    reference = Reference(registry_schemas)
    rng = random.Random(seed)
    events = list(generate_events(rng, dt.date(2026, 11, 26), 50))
    differ, fates = [], []
    for _ in range(1500):
        line = json.dumps(mutated(rng, rng.choice(events)), ensure_ascii=rng.random() < 0.5,
                          separators=rng.choice([(",", ":"), (", ", ": ")]))
        got = validator.validate(line, len(line.encode()))
        expected, fields = reference.fate(json.loads(line))
        fates.append(got.reason if type(got) is not ValidEvent else "valid")
        if expected == "valid":
            agree = type(got) is ValidEvent and got.fields == fields
        else:
            agree = type(got) is not ValidEvent and got.reason in expected
        if not agree:
            differ.append((line, got, expected))
    assert differ[:5] == []
    # The mutations reach every schema-level reason, and leave enough lines valid to compare fields.
    assert {contract.MISSING_FIELD, contract.WRONG_TYPE, contract.INVALID_VALUE, contract.INVALID_TIMESTAMP,
            contract.UNKNOWN_EVENT_TYPE, contract.UNKNOWN_SCHEMA_VERSION} <= set(fates)
    assert fates.count("valid") > 150
