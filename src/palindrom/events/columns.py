"""The typed silver columns, derived from the registered schemas (Spark and Arrow types alike).

Envelope fields become top-level columns; each event type's payload becomes one struct column
(`conversation.message` → `conversation_message`) holding the union of its versions' fields, so a
user queries `conversation_message.text` directly. A free-form object (e.g. `user.action`'s
`properties`) is kept as canonical JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

Snapshot = Mapping[str, Mapping[int, Mapping[str, Any]]]

ENVELOPE_FIELDS = ("event_id", "event_type", "schema_version", "occurred_at", "user_id", "session_id", "source")


def payload_column(event_type: str) -> str:
    return event_type.replace(".", "_")


def _arrow_type(node: Mapping[str, Any]) -> pa.DataType:
    kind = node.get("type")
    if kind == "string":
        return pa.timestamp("us", tz="UTC") if node.get("format") == "date-time" else pa.string()
    if kind == "integer":
        return pa.int64()
    if kind == "boolean":
        return pa.bool_()
    if kind == "object":
        if "properties" not in node:
            return pa.string()  # free-form: canonical JSON text
        return pa.struct([pa.field(n, _arrow_type(s)) for n, s in node["properties"].items()])
    raise ValueError(f"no column type for JSON Schema type {kind!r}")


def payload_fields(versions: Mapping[int, Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Union of the payload fields of every version, in order of first appearance."""
    fields: dict[str, Mapping[str, Any]] = {}
    for version in sorted(versions):
        for name, node in versions[version]["properties"]["payload"].get("properties", {}).items():
            fields.setdefault(name, node)
    return fields


class EventColumns:
    """The column layout for a registry snapshot, and conversion of validated fields to it."""

    def __init__(self, snapshot: Snapshot):
        any_schema = next(iter(next(iter(snapshot.values())).values()))
        envelope = any_schema["properties"]
        self.envelope = [pa.field(name, _arrow_type(envelope[name])) for name in ENVELOPE_FIELDS]
        self.payloads = {
            event_type: pa.struct([pa.field(n, _arrow_type(s)) for n, s in payload_fields(versions).items()])
            for event_type, versions in sorted(snapshot.items())
        }
        self._free_form = {  # payload fields kept as JSON text, per type
            event_type: frozenset(n for n, s in payload_fields(versions).items()
                                  if s.get("type") == "object" and "properties" not in s)
            for event_type, versions in snapshot.items()
        }

    def arrow_fields(self) -> list[pa.Field]:
        return [
            *self.envelope,
            pa.field("event_date", pa.date32()),
            *(pa.field(payload_column(t), struct) for t, struct in self.payloads.items()),
        ]

    def payload_value(self, event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
        """A validated payload as its struct column's value: free-form objects as canonical JSON text
        (keys sorted, compact), so that equal objects give equal text, hence equal content hashes."""
        free_form = self._free_form[event_type]
        if not free_form:
            return payload
        return {k: json.dumps(v, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
                if k in free_form else v for k, v in payload.items()}
