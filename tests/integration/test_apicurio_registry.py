"""The Apicurio Registry implementation against a real Apicurio Registry 3 server."""

import uuid

import pytest

from palindrom.config import REPO_ROOT
from palindrom.events.contract import EventValidator
from palindrom.events.registry import ApicurioRegistry, IncompatibleSchema
from tests.conftest import run_cli
from tests.unit.events.conformance import MAX_LINE_BYTES, check_case, load_cases
from tests.unit.events.schema_pairs import EVENT_TYPE, PAIRS, changed_schema

pytestmark = [pytest.mark.integration, pytest.mark.apicurio]


def fresh_registry(url: str) -> ApicurioRegistry:
    return ApicurioRegistry(url, f"test-{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def loaded(apicurio_url, repo_registry):
    """An Apicurio group holding every schema of the repository, registered in version order."""
    registry = fresh_registry(apicurio_url)
    for event_type, versions in repo_registry.snapshot().items():
        for version, schema in sorted(versions.items()):
            assert registry.register(event_type, schema) == version
    return registry


def test_registered_schemas_read_back_identical(loaded, repo_registry):
    assert loaded.snapshot() == repo_registry.snapshot()
    assert loaded.versions("conversation.message") == [1, 2]


def test_incompatible_version_is_refused_with_apicurios_explanation(loaded, repo_registry):
    schema = repo_registry.schema("conversation.message", 2)
    schema["properties"]["payload"]["required"] = [*schema["properties"]["payload"]["required"], "language"]
    with pytest.raises(IncompatibleSchema) as refused:
        loaded.register("conversation.message", schema)
    assert refused.value.causes == ["A new required property was added at /properties/payload/required"]
    assert loaded.versions("conversation.message") == [1, 2]


@pytest.mark.parametrize("pair", PAIRS, ids=[p["name"] for p in PAIRS])
def test_schema_pairs_agree_with_the_file_registry(apicurio_url, repo_registry, pair):
    registry = fresh_registry(apicurio_url)
    base = repo_registry.schema(EVENT_TYPE, 1)
    registry.register(EVENT_TYPE, base)
    new = changed_schema(base, pair, repo_registry)
    if pair["compatible"]:
        assert registry.register(EVENT_TYPE, new) == 2
    else:
        with pytest.raises(IncompatibleSchema):
            registry.register(EVENT_TYPE, new)
        assert registry.versions(EVENT_TYPE) == [1]


def test_conformance_with_the_apicurio_registry(loaded):
    validator = EventValidator(loaded.snapshot(), MAX_LINE_BYTES)
    problems = [p for case in load_cases() for p in check_case(validator, case)]
    assert problems == []


def test_schemas_register_command_brings_a_registry_up_to_date(apicurio_url, tmp_path):
    group = f"cli-{uuid.uuid4().hex[:8]}"
    config_dir = tmp_path / "configs"
    config_dir.mkdir()
    (config_dir / "dev.yaml").write_text(
        f"env: dev\nstorage: {{root: {tmp_path}}}\n"
        f"registry: {{kind: apicurio, url: '{apicurio_url}', group: {group}}}\n"
    )
    (config_dir / "schemas").symlink_to(REPO_ROOT / "configs" / "schemas")
    env = {"PIPELINES_CONFIG_DIR": str(config_dir)}
    first = run_cli("schemas", "register", "--env", "dev", env=env)
    assert "registered conversation.message v2" in first.stdout
    again = run_cli("schemas", "register", "--env", "dev", env=env)
    assert "registered" not in again.stdout.replace("registry up to date", "")
    listed = run_cli("schemas", "list", "--env", "dev", env=env)
    assert "conversation.message     v1, v2" in listed.stdout
