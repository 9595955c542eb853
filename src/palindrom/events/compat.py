"""BACKWARD compatibility of JSON Schemas, as the file-backed registry enforces it.

BACKWARD: a consumer using the new schema can read every event valid under the old one. For the
closed schemas we register (`additionalProperties: false`), that means: no new required field, no
removed or retyped field, no narrowed enum, length or range. A new optional field is fine, because
old events cannot have carried it. The rules mirror what Apicurio's checker reports; the shared
table in tests/unit/events/schema_pairs.json holds both implementations to the same answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Schema = Mapping[str, Any]


def _closed(node: Schema) -> bool:
    return node.get("additionalProperties", True) is False


def _lower_bound_raised(old: Schema, new: Schema, key: str) -> bool:
    return key in new and (key not in old or new[key] > old[key])


def _upper_bound_lowered(old: Schema, new: Schema, key: str) -> bool:
    return key in new and (key not in old or new[key] < old[key])


def backward_incompatibilities(old: Schema, new: Schema, path: str = "#") -> list[str]:
    """Every reason the new schema cannot read data valid under the old one (empty: compatible)."""
    problems: list[str] = []
    if old.get("type") != new.get("type"):
        return [f"{path}: type changed from {old.get('type')!r} to {new.get('type')!r}"]
    if "enum" in new and not set(map(repr, old.get("enum", [object()]))) <= set(map(repr, new["enum"])):
        problems.append(f"{path}: enum narrowed")
    for key in ("minLength", "minimum"):
        if _lower_bound_raised(old, new, key):
            problems.append(f"{path}: {key} raised")
    for key in ("maxLength", "maximum"):
        if _upper_bound_lowered(old, new, key):
            problems.append(f"{path}: {key} lowered")
    if new.get("format") not in (None, old.get("format")):
        problems.append(f"{path}: format changed to {new['format']!r}")
    if new.get("type") == "object":
        problems += _object_incompatibilities(old, new, path)
    return problems


def _object_incompatibilities(old: Schema, new: Schema, path: str) -> list[str]:
    problems = []
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    if _closed(new) and not _closed(old):
        problems.append(f"{path}: closed to additional properties")
    added_required = set(new.get("required", ())) - set(old.get("required", ()))
    for name in sorted(added_required):
        problems.append(f"{path}/properties/{name}: a new required property was added")
    for name, old_sub in old_props.items():
        if name not in new_props:
            if _closed(new):
                problems.append(f"{path}/properties/{name}: property removed from a closed schema")
            continue
        problems += backward_incompatibilities(old_sub, new_props[name], f"{path}/properties/{name}")
    if not _closed(old):
        for name in sorted(set(new_props) - set(old_props)):
            problems.append(f"{path}/properties/{name}: property added to an open schema")
    return problems
