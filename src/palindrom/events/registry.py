"""The schema registry: one interface, two implementations.

- `FileSchemaRegistry`: the schema files in the repository (`configs/schemas/events/<type>/v<N>.json`),
  the embedded default for `--env local`; it enforces BACKWARD compatibility itself.
- `ApicurioRegistry`: Apicurio Registry's REST API v3, one artifact per event type in a group, versions
  "1", "2", ... in order, and a BACKWARD compatibility rule on every artifact.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import requests

from palindrom.events.compat import backward_incompatibilities
from palindrom.events.contract import compile_schema

Schema = dict[str, Any]


class RegistryError(RuntimeError):
    """The registry could not be read or written."""


class IncompatibleSchema(RegistryError):
    """A new schema version breaks BACKWARD compatibility; `causes` says how."""

    def __init__(self, event_type: str, causes: list[str]):
        super().__init__(f"{event_type}: not backward compatible: {'; '.join(causes)}")
        self.event_type = event_type
        self.causes = causes


def schema_problems(event_type: str, schema: Mapping[str, Any]) -> list[str]:
    """Why `schema` is not a valid event schema for `event_type` (empty when it is)."""
    try:
        jsonschema.Draft7Validator.check_schema(schema)
    except jsonschema.SchemaError as e:
        return [f"not a valid JSON Schema (draft 7): {e.message}"]
    problems = []
    try:
        compile_schema(schema)
    except ValueError as e:
        problems.append(str(e))
    if schema.get("properties", {}).get("event_type", {}).get("enum") != [event_type]:
        problems.append(f"properties.event_type must be {{'enum': [{event_type!r}]}}")

    def open_objects(node: Mapping[str, Any], path: str) -> list[str]:
        found = []
        if node.get("type") == "object" and "properties" in node:
            if node.get("additionalProperties") is not False:
                found.append(f"{path or '#'} must be closed (additionalProperties: false)")
            for name, sub in node["properties"].items():
                found += open_objects(sub, f"{path}/properties/{name}")
        return found

    return problems + open_objects(schema, "")


class SchemaRegistry(ABC):
    @abstractmethod
    def event_types(self) -> list[str]: ...

    @abstractmethod
    def versions(self, event_type: str) -> list[int]: ...

    @abstractmethod
    def schema(self, event_type: str, version: int) -> Schema: ...

    @abstractmethod
    def register(self, event_type: str, schema: Schema) -> int:
        """Add `schema` as the next version of `event_type`; raises IncompatibleSchema if it breaks BACKWARD."""

    def snapshot(self) -> dict[str, dict[int, Schema]]:
        """Every registered schema: {event_type: {version: schema}}; the validator compiles this."""
        return {t: {v: self.schema(t, v) for v in self.versions(t)} for t in self.event_types()}


class FileSchemaRegistry(SchemaRegistry):
    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def event_types(self) -> list[str]:
        if not self.directory.is_dir():
            raise RegistryError(f"{self.directory}: schema directory does not exist")
        return sorted(p.name for p in self.directory.iterdir() if p.is_dir() and any(p.glob("v*.json")))

    def versions(self, event_type: str) -> list[int]:
        found = []
        for path in (self.directory / event_type).glob("v*.json"):
            try:
                found.append(int(path.stem[1:]))
            except ValueError:
                raise RegistryError(f"{path}: schema files must be named v<N>.json") from None
        return sorted(found)

    def schema(self, event_type: str, version: int) -> Schema:
        path = self.directory / event_type / f"v{version}.json"
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise RegistryError(f"{path}: no such schema") from None
        except json.JSONDecodeError as e:
            raise RegistryError(f"{path}: not valid JSON: {e}") from None

    def register(self, event_type: str, schema: Schema) -> int:
        problems = schema_problems(event_type, schema)
        if problems:
            raise RegistryError(f"{event_type}: invalid schema: {'; '.join(problems)}")
        existing = self.versions(event_type) if (self.directory / event_type).is_dir() else []
        if existing:
            causes = backward_incompatibilities(self.schema(event_type, existing[-1]), schema)
            if causes:
                raise IncompatibleSchema(event_type, causes)
        version = (existing[-1] if existing else 0) + 1
        target = self.directory / event_type / f"v{version}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(schema, indent=2) + "\n")
        os.replace(tmp, target)
        return version


class ApicurioRegistry(SchemaRegistry):
    def __init__(self, url: str, group: str, session: requests.Session | None = None, timeout: float = 30):
        self.base = url.rstrip("/")
        self.group = group
        self.http = session or requests.Session()
        self.timeout = timeout

    def _artifacts_url(self) -> str:
        return f"{self.base}/groups/{self.group}/artifacts"

    def _request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            return self.http.request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as e:
            raise RegistryError(f"Apicurio Registry at {self.base} is unreachable: {e}") from e

    @staticmethod
    def _fail(response: requests.Response, what: str) -> RegistryError:
        try:
            detail = response.json().get("detail") or response.text
        except ValueError:
            detail = response.text
        return RegistryError(f"{what}: HTTP {response.status_code}: {detail}")

    def event_types(self) -> list[str]:
        types, offset = [], 0
        while True:
            r = self._request("GET", self._artifacts_url(), params={"offset": offset, "limit": 100})
            if r.status_code == 404:
                return []
            if not r.ok:
                raise self._fail(r, f"listing artifacts of group {self.group}")
            page = r.json()
            types += [a["artifactId"] for a in page.get("artifacts", [])]
            offset += 100
            if offset >= page.get("count", 0):
                return sorted(types)

    def versions(self, event_type: str) -> list[int]:
        r = self._request("GET", f"{self._artifacts_url()}/{event_type}/versions", params={"limit": 1000})
        if r.status_code == 404:
            return []
        if not r.ok:
            raise self._fail(r, f"listing versions of {event_type}")
        return sorted(int(v["version"]) for v in r.json().get("versions", []))

    def schema(self, event_type: str, version: int) -> Schema:
        r = self._request("GET", f"{self._artifacts_url()}/{event_type}/versions/{version}/content")
        if not r.ok:
            raise self._fail(r, f"reading {event_type} v{version}")
        return r.json()

    def register(self, event_type: str, schema: Schema) -> int:
        problems = schema_problems(event_type, schema)
        if problems:
            raise RegistryError(f"{event_type}: invalid schema: {'; '.join(problems)}")
        existing = self.versions(event_type)
        version = (existing[-1] if existing else 0) + 1
        content = {"content": json.dumps(schema), "contentType": "application/json"}
        if not existing:
            body = {"artifactId": event_type, "artifactType": "JSON",
                    "firstVersion": {"version": str(version), "content": content}}
            r = self._request("POST", self._artifacts_url(), json=body)
            if not r.ok:
                raise self._fail(r, f"creating artifact {event_type}")
            rule = {"ruleType": "COMPATIBILITY", "config": "BACKWARD"}
            r = self._request("POST", f"{self._artifacts_url()}/{event_type}/rules", json=rule)
            if not r.ok:
                raise self._fail(r, f"setting the BACKWARD rule on {event_type}")
            return version
        r = self._request("POST", f"{self._artifacts_url()}/{event_type}/versions",
                          json={"version": str(version), "content": content})
        if r.status_code in (400, 409) and r.json().get("name") == "RuleViolationException":
            causes = [f"{c.get('description')} at {c.get('context')}" for c in r.json().get("causes", [])]
            raise IncompatibleSchema(event_type, causes or [r.json().get("detail", "rule violation")])
        if not r.ok:
            raise self._fail(r, f"registering {event_type} v{version}")
        return version


def registry_from_config(kind: str, url: str | None, group: str, schema_dir: Path) -> SchemaRegistry:
    if kind == "apicurio":
        if not url:
            raise RegistryError("registry.url is required for the Apicurio registry")
        return ApicurioRegistry(url, group)
    return FileSchemaRegistry(schema_dir)
