"""The event contract: strict parsing and validation of one JSON line (pure Python, no Spark).

Validation is compiled once from the registered JSON Schemas into plain Python checks. A generic
JSON Schema validator is not used on the hot path because the contract deliberately differs from
JSON Schema's own semantics in four places: `1.0` is not an integer, an optional `null` counts as
absent, free text is NFC-normalised and stripped before its rules apply, and `date-time` must be a
real instant (no Feb 30, no second 60). The conformance file in tests/ pins every rule.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import sys
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import orjson

# Reason codes: one per way a line can fail. Parse-level codes first, then validation, then dedup.
INVALID_UTF8 = "invalid_utf8"
LINE_TOO_LONG = "line_too_long"
NESTING_TOO_DEEP = "nesting_too_deep"
INVALID_JSON = "invalid_json"
DUPLICATE_KEY = "duplicate_key"
NOT_AN_OBJECT = "not_an_object"
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
INVALID_VALUE = "invalid_value"
INVALID_TIMESTAMP = "invalid_timestamp"
UNKNOWN_EVENT_TYPE = "unknown_event_type"
UNKNOWN_SCHEMA_VERSION = "unknown_schema_version"
CONFLICTING_DUPLICATE = "conflicting_duplicate"
REASON_CODES = (
    INVALID_UTF8, LINE_TOO_LONG, NESTING_TOO_DEEP, INVALID_JSON, DUPLICATE_KEY, NOT_AN_OBJECT,
    MISSING_FIELD, WRONG_TYPE, INVALID_VALUE, INVALID_TIMESTAMP, UNKNOWN_EVENT_TYPE,
    UNKNOWN_SCHEMA_VERSION, CONFLICTING_DUPLICATE,
)

ENVELOPE_SCHEMA_REF = "envelope"
FREE_TEXT_FIELDS = frozenset({"text", "comment", "caption", "transcript"})
MAX_NESTING = 64
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
SUPPORTED_KEYWORDS = frozenset({
    "$schema", "$id", "title", "description", "type", "properties", "required",
    "additionalProperties", "enum", "minLength", "maxLength", "minimum", "maximum", "format",
})


class Invalid(Exception):
    """A contract violation: a reason code and a human-readable detail naming the field and rule."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# --- timestamps ------------------------------------------------------------------------------

_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?"
    r"(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))"
)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)
_MIN_MICROS = (dt.datetime(1, 1, 1, tzinfo=dt.UTC) - _EPOCH) // _MICROSECOND
_MAX_MICROS = (dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC) - _EPOCH) // _MICROSECOND


def parse_timestamp_micros(value: str, field: str = "occurred_at") -> int:
    """RFC 3339 date-time → microseconds since the epoch (UTC), the fraction truncated."""
    m = _RFC3339.fullmatch(value)
    if m is None:
        raise Invalid(INVALID_TIMESTAMP, f"{field}: {value!r} is not an RFC 3339 date-time")
    hour, minute, second, offset_hours, offset_minutes = m.group(4, 5, 6, 9, 10)  # two ASCII digits each
    if hour > "23" or minute > "59" or second > "59":
        raise Invalid(INVALID_TIMESTAMP, f"{field}: {value!r} has no such time of day")
    if offset_hours is not None and (offset_hours > "23" or offset_minutes > "59"):
        raise Invalid(INVALID_TIMESTAMP, f"{field}: {value!r} has an invalid UTC offset")
    try:  # the pattern pinned the form; fromisoformat checks the calendar date and truncates the fraction
        instant = dt.datetime.fromisoformat(value.upper())
    except ValueError:
        raise Invalid(INVALID_TIMESTAMP, f"{field}: {value!r} has no such calendar date") from None
    micros = (instant - _EPOCH) // _MICROSECOND
    if not _MIN_MICROS <= micros <= _MAX_MICROS:
        raise Invalid(INVALID_TIMESTAMP, f"{field}: {value!r} is outside years 0001-9999 in UTC")
    return micros


# --- strict JSON -----------------------------------------------------------------------------

class _DuplicateKey(ValueError):
    """A key repeated in one object (its args: the key); parse_json_line turns it into Invalid."""


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class LongInteger:
    """An integer literal longer than Python converts (sys.get_int_max_str_digits(), 4300 digits):
    kept as its digits, never converted (the conversion is quadratic: a 10 MiB line of digits would
    take minutes); far outside 64 bits, so a known integer field rejects it as a value, not as JSON."""

    __slots__ = ("digits",)

    def __init__(self, digits: str):
        self.digits = digits

    def __repr__(self) -> str:
        return f"{self.digits[:12]}... ({len(self.digits.lstrip('-'))} digits)"


def _parse_int(digits: str) -> int | LongInteger:
    limit = sys.get_int_max_str_digits()  # 0: no limit
    return int(digits) if not limit or len(digits.lstrip("-")) <= limit else LongInteger(digits)


_DECODER = json.JSONDecoder(object_pairs_hook=_object_without_duplicates, parse_constant=_reject_constant)
# Used only for a line the first one refused for an integer too long to convert.
_LONG_INTEGER_DECODER = json.JSONDecoder(object_pairs_hook=_object_without_duplicates,
                                         parse_constant=_reject_constant, parse_int=_parse_int)
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _nesting_depth(text: str) -> int:
    depth = deepest = 0
    for bracket in _BRACKET.findall(_JSON_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _decode(text: str) -> Any:
    try:
        return _DECODER.decode(text)
    except ValueError as e:
        if type(e) is not ValueError or "integer string conversion" not in str(e):
            raise
    return _LONG_INTEGER_DECODER.decode(text)


def _first_leaf(value: Any, wanted: Callable[[Any], bool]) -> Any:
    """The first value inside a parsed JSON value (itself, or within its objects and arrays) that is
    `wanted`, or None."""
    if wanted(value):
        return value
    children = value.values() if type(value) is dict else value if type(value) is list else ()
    return next((found for child in children if (found := _first_leaf(child, wanted)) is not None), None)


def _has_no_json_text(value: Any) -> bool:
    """An integer too long to convert (LongInteger), or a number beyond a double's range (1e400 reads
    as inf, which json.dumps writes as Infinity)."""
    return type(value) is LongInteger or (type(value) is float and math.isinf(value))


_UNDECIDED = object()


def _fast_decode(text: str) -> Any:
    """The line's value by orjson (about twice as fast as the json module here), or _UNDECIDED where
    only parse_json_line can tell: orjson refuses some lines the json module reads (lone surrogates,
    1e400: parse_json_line then names the reason) and keeps the last of two equal keys. A duplicate key
    is found by counting colons: outside strings a colon follows each key, and orjson writes a colon
    in a string as it is, so re-serialising the value gives the line's colon count exactly when no key
    was dropped (unless a string spells a colon as an escape, \\u003a). orjson also reads an integer
    beyond 64 bits as a float: see EventValidator.validate."""
    if "\\u003" in text:
        return _UNDECIDED
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return _UNDECIDED
    return value if orjson.dumps(value).count(b":") == text.count(":") else _UNDECIDED


def _may_hold_misread_integer(payload: dict[str, Any]) -> bool:
    """Whether a free-form object of a valid event's payload holds a float that orjson may have read
    from an integer literal beyond 64 bits (a known field expects an integer or a string, so a float
    there fails the check). Its canonical JSON text would then differ from the exact parser's."""
    return any(type(value) is dict and _first_leaf(value, _is_misread_integer) is not None
               for value in payload.values())


def _is_misread_integer(value: Any) -> bool:
    return type(value) is float and abs(value) >= 2**63


def parse_json_line(text: str) -> Any:
    """Parse one line as a single strict JSON value (RFC 8259, no duplicate keys), or raise Invalid."""
    if text.count("{") + text.count("[") > MAX_NESTING and _nesting_depth(text) > MAX_NESTING:
        raise Invalid(NESTING_TOO_DEEP, f"JSON nesting deeper than {MAX_NESTING} levels")
    try:
        value = _decode(text)
    except _DuplicateKey as e:
        raise Invalid(DUPLICATE_KEY, f"key {e.args[0]!r} appears twice in one object") from None
    except RecursionError:
        raise Invalid(NESTING_TOO_DEEP, f"JSON nesting deeper than {MAX_NESTING} levels") from None
    except json.JSONDecodeError as e:  # its own text says "line 1 column N": the line within the line
        at = "" if e.msg.endswith(" at") else " at"  # "Unterminated string starting at", ...
        raise Invalid(INVALID_JSON, f"{e.msg}{at} character {e.pos + 1}") from None
    except ValueError as e:  # NaN, Infinity
        raise Invalid(INVALID_JSON, str(e)) from None
    if _SURROGATE_ESCAPE.search(text):
        try:  # json accepts escaped lone surrogates ("\ud800"); they are not Unicode text
            json.dumps(value, ensure_ascii=False, default=repr).encode("utf-8")  # repr: a LongInteger
        except UnicodeEncodeError:
            raise Invalid(INVALID_JSON, "a string holds a lone UTF-16 surrogate") from None
    return value


# --- compiled schemas ------------------------------------------------------------------------

Check = Callable[[Any], Any]  # a value → its checked (normalised) form, or raise Invalid naming its path


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | LongInteger):
        return "integer"
    if isinstance(value, float):
        return "number"
    return {str: "string", dict: "object", list: "array"}.get(type(value), type(value).__name__)


def _enum_check(node: Mapping[str, Any]) -> Callable[[Any, str], None] | None:
    if "enum" not in node:
        return None
    allowed_values = node["enum"]
    allowed = ", ".join(json.dumps(v) for v in allowed_values)

    def check(value: Any, path: str) -> None:
        if value not in allowed_values:
            raise Invalid(INVALID_VALUE, f"{path}: {json.dumps(value, ensure_ascii=False)} is not one of {allowed}")

    return check


def _compile_string(node: Mapping[str, Any], normalise: bool, path: str) -> Check:
    min_len, max_len = node.get("minLength"), node.get("maxLength")
    is_datetime = node.get("format") == "date-time"
    check_enum = _enum_check(node)

    def check(value: Any) -> Any:
        if type(value) is not str:
            raise Invalid(WRONG_TYPE, f"{path}: expected a string, got {_type_name(value)}")
        if normalise:
            value = unicodedata.normalize("NFC", value).strip()
        if min_len is not None and len(value) < min_len:
            rule = "must not be empty" if min_len == 1 else f"must have at least {min_len} characters"
            raise Invalid(INVALID_VALUE, f"{path}: {rule}")
        if max_len is not None and len(value) > max_len:
            raise Invalid(INVALID_VALUE, f"{path}: longer than {max_len} characters ({len(value)})")
        if check_enum:
            check_enum(value, path)
        if is_datetime:
            return parse_timestamp_micros(value, path)
        return value

    return check


def _compile_integer(node: Mapping[str, Any], path: str) -> Check:
    minimum, maximum = node.get("minimum"), node.get("maximum")
    check_enum = _enum_check(node)

    def check(value: Any) -> Any:
        if type(value) is LongInteger:
            raise Invalid(INVALID_VALUE, f"{path}: {value!r} is outside the signed 64-bit range")
        if type(value) is not int:
            raise Invalid(WRONG_TYPE, f"{path}: expected an integer, got {_type_name(value)}")
        if not INT64_MIN <= value <= INT64_MAX:
            raise Invalid(INVALID_VALUE, f"{path}: {value} is outside the signed 64-bit range")
        if minimum is not None and value < minimum:
            raise Invalid(INVALID_VALUE, f"{path}: {value} is less than the minimum {minimum}")
        if maximum is not None and value > maximum:
            raise Invalid(INVALID_VALUE, f"{path}: {value} is greater than the maximum {maximum}")
        if check_enum:
            check_enum(value, path)
        return value

    return check


# The envelope's schema_version is an integer like any other (a wrong type or a value beyond 64 bits
# is refused as such) before it is looked up among the registered versions.
_check_schema_version = _compile_integer({}, "schema_version")


def _compile_boolean(path: str) -> Check:
    def check(value: Any) -> Any:
        if type(value) is not bool:
            raise Invalid(WRONG_TYPE, f"{path}: expected a boolean, got {_type_name(value)}")
        return value

    return check


def _compile_object(node: Mapping[str, Any], path: str) -> Check:
    fields = []
    for name, sub in node.get("properties", {}).items():
        field_path = f"{path}.{name}" if path else name
        fields.append((name, compile_schema(sub, name in FREE_TEXT_FIELDS, field_path),
                       name in node.get("required", ()), field_path))
    free_form = "properties" not in node

    def check(value: Any) -> Any:
        if type(value) is not dict:
            raise Invalid(WRONG_TYPE, f"{path or 'event'}: expected an object, got {_type_name(value)}")
        if free_form:
            # Kept as canonical JSON text (EventColumns.payload_value): refused where that text cannot hold it.
            if (unwritable := _first_leaf(value, _has_no_json_text)) is None:
                return value
            if type(unwritable) is LongInteger:
                raise Invalid(INVALID_VALUE, f"{path}: holds the integer {unwritable!r}, longer than "
                                             f"{sys.get_int_max_str_digits()} digits")
            raise Invalid(INVALID_VALUE, f"{path}: holds a number beyond the range of a double")
        out = {}
        for name, field_check, required, field_path in fields:
            field_value = value.get(name)
            if field_value is None:  # absent, or null: both mean "not given"
                if required:
                    raise Invalid(MISSING_FIELD, f"{field_path}: required field is missing")
                continue
            out[name] = field_check(field_value)
        return out  # fields the schema does not name are ignored (they stay in the raw record)

    return check


def compile_schema(node: Mapping[str, Any], normalise: bool = False, path: str = "") -> Check:
    """Compile a JSON Schema node (the subset in SUPPORTED_KEYWORDS) into a check function; `path`
    (e.g. "payload.text") names the node in what it raises."""
    unsupported = set(node) - SUPPORTED_KEYWORDS
    if unsupported:
        raise ValueError(f"unsupported JSON Schema keywords: {', '.join(sorted(unsupported))}")
    kind = node.get("type")
    if kind == "object":
        return _compile_object(node, path)
    if kind == "string":
        return _compile_string(node, normalise, path)
    if kind == "integer":
        return _compile_integer(node, path)
    if kind == "boolean":
        return _compile_boolean(path)
    raise ValueError(f"unsupported JSON Schema type {kind!r}")


# --- events ----------------------------------------------------------------------------------

class ValidEvent(NamedTuple):  # a tuple: one is built for every valid line
    event_type: str
    schema_version: int
    schema_ref: str
    fields: dict[str, Any]  # known fields, normalised; occurred_at in UTC microseconds: equal for equal content


class Rejected(NamedTuple):
    reason: str
    detail: str
    schema_ref: str | None  # None where the line was not an event at all


def schema_ref(event_type: str, version: int) -> str:
    return f"{event_type}/v{version}"


class EventValidator:
    """Validates raw lines against a snapshot of the registry: {event_type: {version: schema}}."""

    def __init__(self, schemas: Mapping[str, Mapping[int, Mapping[str, Any]]], max_line_bytes: int):
        self.max_line_bytes = max_line_bytes
        self._checks = {
            event_type: {version: (compile_schema(schema), schema_ref(event_type, version))
                         for version, schema in versions.items()}
            for event_type, versions in schemas.items()
        }

    def validate(self, text: str | None, byte_length: int) -> ValidEvent | Rejected:
        if text is None:
            return Rejected(INVALID_UTF8, "the line is not valid UTF-8", None)
        if byte_length > self.max_line_bytes:
            return Rejected(LINE_TOO_LONG, f"{byte_length} bytes; the limit is {self.max_line_bytes}", None)
        # Fast path (orjson): kept only for a line it accepts as an event that no misread integer can be
        # part of; everything else is parsed again by the exact parser, which also names the reason.
        if text.count("{") + text.count("[") <= MAX_NESTING and (document := _fast_decode(text)) is not _UNDECIDED:
            result = self._check(document)
            if type(result) is ValidEvent and not _may_hold_misread_integer(result.fields["payload"]):
                return result
        try:
            document = parse_json_line(text)
        except Invalid as e:
            return Rejected(e.reason, e.detail, None)
        return self._check(document)

    def _check(self, document: Any) -> ValidEvent | Rejected:
        if type(document) is not dict:
            return Rejected(NOT_AN_OBJECT, f"the line is a JSON {_type_name(document)}, not an object", None)
        try:
            (check, ref), event_type, version = self._schema_for(document)
        except Invalid as e:
            return Rejected(e.reason, e.detail, ENVELOPE_SCHEMA_REF)
        try:
            return ValidEvent(event_type, version, ref, check(document))
        except Invalid as e:
            return Rejected(e.reason, e.detail, ref)

    def _schema_for(self, document: dict[str, Any]) -> tuple[tuple[Check, str], str, int]:
        event_type = document.get("event_type")
        if event_type is None:
            raise Invalid(MISSING_FIELD, "event_type: required field is missing")
        if type(event_type) is not str:
            raise Invalid(WRONG_TYPE, f"event_type: expected a string, got {_type_name(event_type)}")
        versions = self._checks.get(event_type)
        if versions is None:
            raise Invalid(UNKNOWN_EVENT_TYPE, f"event_type: {event_type!r} is not a registered type")
        version = document.get("schema_version")
        if version is None:
            raise Invalid(MISSING_FIELD, "schema_version: required field is missing")
        compiled = versions.get(_check_schema_version(version))
        if compiled is None:
            known = ", ".join(str(v) for v in sorted(versions))
            raise Invalid(
                UNKNOWN_SCHEMA_VERSION,
                f"schema_version: {version} is not a registered version of {event_type} (registered: {known})",
            )
        return compiled, event_type, version
