import datetime as dt
import json
import random

import pytest

from palindrom.events import contract
from palindrom.events.contract import EventValidator, Invalid, Rejected, ValidEvent, parse_timestamp_micros
from pipelines.sample_data import generate_events
from tests.unit.events.conformance import MAX_LINE_BYTES, check_case, load_cases

CASES = load_cases()


@pytest.fixture(scope="module")
def validator(repo_registry):
    return EventValidator(repo_registry.snapshot(), MAX_LINE_BYTES)


def test_conformance_file_is_substantial_and_covers_every_reason_code():
    assert len(CASES) >= 80
    expected = {c["expect"] for c in CASES if "expect" in c} | {
        fate for c in CASES for _, fate in c.get("expect_lines", [])
    }
    # conflicting_duplicate needs two lines: the dedup tests cover it.
    assert set(contract.REASON_CODES) - {contract.CONFLICTING_DUPLICATE} <= expected


@pytest.mark.parametrize("case", CASES, ids=[c["case"] for c in CASES])
def test_conformance_with_the_file_registry(validator, case):
    assert check_case(validator, case) == []


def test_rejection_names_field_rule_and_schema(validator):
    result = validator.validate(
        '{"event_id":"e","event_type":"feedback.rating","schema_version":1,"occurred_at":"2026-11-26T10:00:00Z",'
        '"user_id":"u","payload":{"conversation_id":"c","message_event_id":"m","rating":"1"}}', 200,
    )
    assert result == Rejected("wrong_type", "payload.rating: expected an integer, got string", "feedback.rating/v1")


@pytest.mark.parametrize(("line", "detail"), [
    ('{"event_id": "e", "x": 1,}', "Expecting property name enclosed in double quotes at character 26"),
    ('{"event_id": "e"} {"event_id": "f"}', "Extra data at character 19"),
    ('{"event_id": "é\x01"}', "Invalid control character at character 16"),
    ('{"event_id": "e', "Unterminated string starting at character 14"),
    ("", "Expecting value at character 1"),
    ('{"n": NaN}', "NaN is not valid JSON"),
])
def test_invalid_json_is_located_by_character_within_the_line(validator, line, detail):
    assert validator.validate(line, len(line)) == Rejected("invalid_json", detail, None)


LONG = "9" * 5000  # beyond Python's int_max_str_digits (4300)


def action(payload: str, version: str = "1", extra: str = "") -> str:
    return ('{"event_id":"e","event_type":"user.action","schema_version":' + version + ',"occurred_at":'
            '"2026-11-26T10:00:00Z","user_id":"u",' + extra + '"payload":' + payload + '}')


@pytest.mark.parametrize(("line", "fate", "detail"), [
    (action('{"action":"view","target":"t"}', extra=f'"unknown":-{LONG},'), "valid", None),
    (action('{"action":"view","target":"t"}', extra=f'"unknown":[{LONG},"\\ud800"],'), "invalid_json",
     "a string holds a lone UTF-16 surrogate"),
    (action('{"action":"view","target":' + LONG + '}'), "wrong_type", "payload.target: expected a string, got integer"),
    (action('{"action":"view","target":"t","properties":{"n":[' + LONG + ']}}'), "invalid_value",
     "payload.properties: holds the integer 999999999999... (5000 digits), longer than 4300 digits"),
    (action('{"action":"view","target":"t"}', version=LONG), "invalid_value",
     "schema_version: 999999999999... (5000 digits) is outside the signed 64-bit range"),
])
def test_integers_too_long_for_python_are_values_not_invalid_json(validator, line, fate, detail):
    result = validator.validate(line, len(line))
    if fate == "valid":
        assert isinstance(result, ValidEvent)
    else:
        assert (result.reason, result.detail) == (fate, detail)


def test_an_integer_field_refuses_an_integer_too_long_for_python_as_out_of_range(validator):
    line = ('{"event_id":"e","event_type":"conversation.message","schema_version":1,"occurred_at":'
            '"2026-11-26T10:00:00Z","user_id":"u","payload":{"conversation_id":"c","turn":-' + LONG + ','
            '"role":"user","text":"hi"}}')
    assert validator.validate(line, len(line)) == Rejected(
        "invalid_value", "payload.turn: -99999999999... (5000 digits) is outside the signed 64-bit range",
        "conversation.message/v1")


def exact(validator, line):
    """The result of the exact path alone (the json module), for comparison with validate's."""
    try:
        return validator._check(contract.parse_json_line(line))
    except Invalid as e:
        return Rejected(e.reason, e.detail, None)


@pytest.mark.parametrize(("line", "fate"), [
    # A repeated key, with colons in strings around it (the fast path counts colons).
    (action('{"action":"view","target":"a:b","target":"c"}', extra='"k:":"::",'), "duplicate_key"),
    (action('{"action":"view","target":"t","properties":{"u":"x:y","u":1}}'), "duplicate_key"),
    # A colon spelled as an escape: only the exact parser can tell a repeated key then.
    (action('{"action":"view","target":"\\u003a","target":"c"}'), "duplicate_key"),
    (action('{"action":"view","target":"\\u003A:"}'), "valid"),
    # Integers the fast parser reads as floats (beyond 64 bits), floats it reads alike.
    (action('{"action":"view","target":"t","properties":{"n":123456789012345678901,"m":-9223372036854775809}}'),
     "valid"),
    (action('{"action":"view","target":"t","properties":{"x":1e19,"y":-0.5,"z":18446744073709551615}}'), "valid"),
    (action('{"action":"view","target":"t"}', version="18446744073709551617"), "invalid_value"),
    (action('{"action":"view","target":"t","n":1e400}'), "valid"),
    (action('{"action":"view","target":"t","properties":{"n":[-1e400]}}'), "invalid_value"),
    (action('{"action":"view","target":"\\udc00"}'), "invalid_json"),
], ids=["repeated key", "repeated key in a free-form object", "escaped colon and a repeated key", "escaped colon",
        "integers beyond 64 bits", "floats", "version beyond 64 bits", "float beyond double",
        "float beyond double in a free-form object", "lone surrogate"])
def test_the_fast_parser_agrees_with_the_exact_one(validator, line, fate):
    result = validator.validate(line, len(line))
    assert result == exact(validator, line)
    assert (result.reason if isinstance(result, Rejected) else "valid") == fate


FUZZ_PIECES = ('"', "\\", "{", "}", "[", "]", ":", ",", "1", "-", ".", "e", "0", " ", "\\u0000", "\\ud800",
               "\\u00e9", "é", "e\u0301", "\u2028", "\t", "null", "true", "1e400", "9223372036854775808", "1.0",
               '"a":1,', '"event_id":"x",', "\\u003a", "\x00", "😀", "\\ud83d\\ude00", "NaN", '"payload":{},')


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_fast_parser_agrees_with_the_exact_one_on_mutated_events(validator, seed):
    """Sample events with one to three random insertions, deletions or replacements of JSON's own
    characters and edge values: the fast path must give exactly the exact path's result (fate,
    detail, fields) on every line."""
    rng = random.Random(seed)
    events = [json.dumps(e, ensure_ascii=rng.random() < 0.5)
              for e in generate_events(rng, dt.date(2026, 11, 26), 100)]
    differ = []
    for _ in range(2000):
        line = rng.choice(events)
        for _ in range(rng.randint(1, 3)):
            at, piece = rng.randrange(len(line) + 1), rng.choice(FUZZ_PIECES)
            line = rng.choice((line[:at] + piece + line[at:],  # insert
                               line[:at] + line[at + rng.randint(1, 3):],  # delete
                               line[:at] + piece + line[at + 1:]))  # replace
        if validator.validate(line, len(line.encode())) != exact(validator, line):
            differ.append(line)
    assert differ == []


def test_canonical_free_form_text_keeps_integers_beyond_64_bits(validator):
    line = action('{"action":"view","target":"t","properties":{"n":123456789012345678901,"x":1e19}}')
    assert contract._fast_decode(line)["payload"]["properties"]["n"] == 1.2345678901234568e20  # orjson's reading
    result = validator.validate(line, len(line))
    assert result.fields["payload"]["properties"] == {"n": 123456789012345678901, "x": 1e19}


def test_envelope_rejections_are_checked_against_the_envelope(validator):
    result = validator.validate('{"event_id":"e","event_type":"nope","schema_version":1}', 60)
    assert isinstance(result, Rejected)
    assert (result.reason, result.schema_ref) == ("unknown_event_type", "envelope")


def test_equal_content_has_equal_fields_regardless_of_unknown_fields_offsets_and_key_order(validator):
    a = validator.validate(
        '{"event_id":"e","event_type":"user.action","schema_version":1,"occurred_at":"2026-11-26T10:00:00Z",'
        '"user_id":"u","payload":{"action":"view","target":"t"}}', 1)
    b = validator.validate(
        '{"payload":{"target":"t","action":"view","x":1},"user_id":"u","occurred_at":"2026-11-26T11:00:00+01:00",'
        '"schema_version":1,"event_type":"user.action","event_id":"e","extra":true}', 1)
    c = validator.validate(
        '{"event_id":"e","event_type":"user.action","schema_version":1,"occurred_at":"2026-11-26T10:00:01Z",'
        '"user_id":"u","payload":{"action":"view","target":"t"}}', 1)
    assert all(isinstance(result, ValidEvent) for result in (a, b, c))
    assert a.fields == b.fields
    assert a.fields != c.fields


@pytest.mark.parametrize(("text", "micros"), [
    ("1970-01-01T00:00:00Z", 0),
    ("1969-12-31T23:59:59.999999Z", -1),
    ("9999-12-31T23:59:59.999999999Z", 253402300799999999),
    ("0001-01-01T00:00:00Z", -62135596800000000),
])
def test_timestamp_range_edges(text, micros):
    assert parse_timestamp_micros(text) == micros


def test_timestamp_out_of_range_after_offset():
    with pytest.raises(Invalid, match="outside years 0001-9999"):
        parse_timestamp_micros("0001-01-01T00:00:00+01:00")


def test_unsupported_schema_keyword_is_refused():
    with pytest.raises(ValueError, match="unsupported JSON Schema keywords: pattern"):
        contract.compile_schema({"type": "string", "pattern": "^a"})


def test_keywords_no_registered_schema_uses_yet_are_checked_strictly():
    """A later schema version may add a boolean or bounded integer: the compiled checks are ready."""
    check = contract.compile_schema({
        "type": "object", "additionalProperties": False, "required": ["flag", "score"],
        "properties": {"flag": {"type": "boolean"}, "score": {"type": "integer", "minimum": 1, "maximum": 5}},
    })
    assert check({"flag": False, "score": 5}) == {"flag": False, "score": 5}
    for value, reason, detail in [
        ({"flag": 1, "score": 3}, contract.WRONG_TYPE, "flag: expected a boolean, got integer"),
        ({"flag": "true", "score": 3}, contract.WRONG_TYPE, "flag: expected a boolean, got string"),
        ({"flag": True, "score": 6}, contract.INVALID_VALUE, "score: 6 is greater than the maximum 5"),
        ({"flag": True, "score": 0}, contract.INVALID_VALUE, "score: 0 is less than the minimum 1"),
        ({"flag": True, "score": True}, contract.WRONG_TYPE, "score: expected an integer, got boolean"),
    ]:
        with pytest.raises(Invalid) as rejected:
            check(value)
        assert (rejected.value.reason, rejected.value.detail) == (reason, detail)
