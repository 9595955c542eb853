import pytest

from palindrom.config import REPO_ROOT, ConfigError, load_config


@pytest.mark.parametrize(("env", "root"), [
    ("local", f"file:{REPO_ROOT / 'lake'}"),
    ("dev", "s3a://palindrom-data-dev"),
    ("staging", "s3a://palindrom-data-staging"),
    ("prod", "s3a://palindrom-data-prod"),
])
def test_every_environment_loads_with_its_storage_root(env, root):
    config = load_config(env)
    assert config.env == env
    assert config.storage_root == root


def test_root_override_accepts_local_paths_and_s3a(tmp_path):
    assert load_config("local", str(tmp_path)).storage_root == f"file:{tmp_path}"
    assert load_config("local", "s3a://bucket/x/").storage_root == "s3a://bucket/x"


def test_config_is_frozen():
    config = load_config("local")
    with pytest.raises(ValueError, match="frozen"):
        config.env = "prod"


def test_unknown_environment_is_refused():
    with pytest.raises(ConfigError, match="unknown environment 'qa'"):
        load_config("qa")


@pytest.mark.parametrize(("yaml_text", "key"), [
    ("env: local\nstorage: {root: ./lake}\nspark: {shuffle_partitions: 0}\n", "spark.shuffle_partitions"),
    ("env: local\nstorage: {root: ./lake}\ningest: {max_file_bytes: -1}\n", "ingest.max_file_bytes"),
    ("env: local\nstorage: {root: ./lake}\nregistry: {kind: apicurio}\n", "registry"),
    ("env: local\nstorage: {root: ./lake}\nsparkk: {}\n", "sparkk"),
    ("env: local\n", "storage"),
])
def test_bad_value_names_the_file_and_key(tmp_path, monkeypatch, yaml_text, key):
    (tmp_path / "local.yaml").write_text(yaml_text)
    monkeypatch.setenv("PIPELINES_CONFIG_DIR", str(tmp_path))
    with pytest.raises(ConfigError) as error:
        load_config("local")
    assert str(tmp_path / "local.yaml") in str(error.value)
    assert key in str(error.value)
