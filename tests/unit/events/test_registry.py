import json
import shutil

import pytest

from palindrom.events.registry import FileSchemaRegistry, IncompatibleSchema, RegistryError, schema_problems
from tests.unit.events.schema_pairs import EVENT_TYPE, PAIRS, changed_schema


@pytest.fixture
def file_registry(tmp_path, repo_registry):
    """A writable copy holding only conversation.message v1."""
    target = tmp_path / "schemas" / EVENT_TYPE
    target.mkdir(parents=True)
    shutil.copy(repo_registry.directory / EVENT_TYPE / "v1.json", target / "v1.json")
    return FileSchemaRegistry(tmp_path / "schemas")


def test_repository_schemas_are_listed_in_version_order(repo_registry):
    assert repo_registry.event_types() == ["conversation.message", "feedback.rating", "media.uploaded", "user.action"]
    assert repo_registry.versions("conversation.message") == [1, 2]


def test_every_repository_schema_is_valid_and_closed(repo_registry):
    for event_type, versions in repo_registry.snapshot().items():
        for version, schema in versions.items():
            assert schema_problems(event_type, schema) == [], f"{event_type} v{version}"


@pytest.mark.parametrize("pair", PAIRS, ids=[p["name"] for p in PAIRS])
def test_schema_pairs_with_the_file_registry(file_registry, repo_registry, pair):
    base = file_registry.schema(EVENT_TYPE, 1)
    new = changed_schema(base, pair, repo_registry)
    if pair["compatible"]:
        assert file_registry.register(EVENT_TYPE, new) == 2
        assert file_registry.schema(EVENT_TYPE, 2) == new
    else:
        with pytest.raises(IncompatibleSchema) as refused:
            file_registry.register(EVENT_TYPE, new)
        assert refused.value.causes
        assert file_registry.versions(EVENT_TYPE) == [1]


def test_open_schema_is_refused_with_its_path(file_registry):
    schema = file_registry.schema(EVENT_TYPE, 1)
    schema["properties"]["payload"]["additionalProperties"] = True
    with pytest.raises(RegistryError, match="/properties/payload must be closed"):
        file_registry.register(EVENT_TYPE, schema)


def test_broken_schema_file_names_the_file(tmp_path):
    (tmp_path / "x.y").mkdir()
    (tmp_path / "x.y" / "v1.json").write_text("{not json")
    with pytest.raises(RegistryError, match=r"x\.y/v1\.json: not valid JSON"):
        FileSchemaRegistry(tmp_path).snapshot()


def test_new_type_starts_at_version_one(file_registry, repo_registry):
    schema = json.loads(json.dumps(repo_registry.schema("user.action", 1)))
    assert file_registry.register("user.action", schema) == 1
    assert file_registry.event_types() == [EVENT_TYPE, "user.action"]
