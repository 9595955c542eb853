"""The shared table of schema pairs (schema_pairs.json): each pair is conversation.message v1 and a
changed copy, with whether BACKWARD compatibility holds. Both registries must give that answer."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from palindrom.events.registry import SchemaRegistry

PAIRS = json.loads(Path(__file__).with_name("schema_pairs.json").read_text())
EVENT_TYPE = "conversation.message"


def changed_schema(base: dict[str, Any], pair: dict[str, Any], registry: SchemaRegistry) -> dict[str, Any]:
    if "new" in pair:
        event_type, version = pair["new"].rsplit("/v", 1)
        return registry.schema(event_type, int(version))
    schema = copy.deepcopy(base)
    for change in pair["changes"]:
        *parents, leaf = change["path"].strip("/").split("/")
        node = schema
        for key in parents:
            node = node[key]
        if change["op"] == "set":
            node[leaf] = change["value"]
        else:
            del node[leaf]
    return schema
