import pytest

from palindrom import config as config_module
from palindrom.config import REPO_ROOT, ConfigError, load_config, notebook_parameters


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


def test_root_override_accepts_local_paths_file_uris_and_s3a(tmp_path):
    assert load_config("local", str(tmp_path)).storage_root == f"file:{tmp_path}"
    # The form every command prints (Hadoop's), and the other spellings of a local file: URI.
    for uri in (f"file:{tmp_path}", f"file://{tmp_path}/", f"file://localhost{tmp_path}"):
        assert load_config("local", uri).storage_root == f"file:{tmp_path}"
    assert load_config("local", "s3a://bucket/x/").storage_root == "s3a://bucket/x"


@pytest.mark.parametrize("root", ["s3://bucket/x", "dbfs:/mnt/lake", "lake:v2", "file://host/tmp/lake", "file:",
                                  "s3a:bucket"])
def test_a_root_of_another_scheme_or_host_is_refused_by_name(root):
    with pytest.raises(ConfigError) as error:
        load_config("local", root)
    assert f"storage.root (the root override): {root!r}" in str(error.value)


def test_a_root_with_spaces_signs_and_letters_beyond_ascii_is_taken_as_written(tmp_path):
    folder = tmp_path / "my lake \u00e9 100% & 'quoted'"
    assert load_config("local", str(folder)).storage_root == f"file:{folder}"


@pytest.mark.parametrize(("root", "shown"), [("/data/x[1]", "'['"), ("/data/a|b", "'|'"), ("/data/a^b", "'^'"),
                                             ("/data/a\\b", "'\\\\'"), ("/data/a\tb", "'\\t'"),
                                             ("/data/a%20b", "'%20'"), ("/data/a#1", "'#'"), ("/data/a?", "'?'"),
                                             ("s3a://bucket/k[1]", "'['")])
def test_a_root_delta_rs_cannot_take_is_refused_naming_the_character(root, shown):
    with pytest.raises(ConfigError) as error:
        load_config("local", root)
    assert f"storage.root (the root override): {root!r}: the lake's location" in str(error.value)
    assert f"holds {shown}, which delta-rs" in str(error.value)


def test_a_default_root_inside_a_checkout_delta_rs_cannot_take_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("PIPELINES_CONFIG_DIR", str(REPO_ROOT / "configs"))
    monkeypatch.setattr(config_module, "REPO_ROOT", tmp_path / "checkouts[2]" / "data-pipelines")
    with pytest.raises(ConfigError, match=r"storage\.root: './lake': the lake's location '.*checkouts\[2\]/"
                                          r"data-pipelines/lake' holds '\['"):
        load_config("local")


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


class Widgets:
    """What notebook_parameters uses of Databricks' dbutils.widgets: text(name, default) and get(name)."""

    def __init__(self, **set_by_user: str):
        self.values, self.set_by_user = {}, set_by_user

    def text(self, name: str, default: str) -> None:
        self.values[name] = self.set_by_user.get(name, default)

    def get(self, name: str) -> str:
        return self.values[name]


def test_notebook_parameters_come_from_the_widgets_on_databricks(tmp_path):
    widgets = Widgets(root=str(tmp_path))
    config, parameters = notebook_parameters(widgets, dataset="chat_sft")
    assert widgets.values == {"env": "dev", "root": str(tmp_path), "dataset": "chat_sft"}  # created with defaults
    assert (config.env, config.storage_root, parameters) == ("dev", f"file:{tmp_path}", {"dataset": "chat_sft"})
    config, _ = notebook_parameters(Widgets(env="staging"))  # an empty root widget: the environment's root
    assert config.storage_root == "s3a://palindrom-data-staging"


def test_notebook_parameters_come_from_the_environment_elsewhere(tmp_path, monkeypatch):
    monkeypatch.setenv("PIPELINES_ROOT", str(tmp_path))
    monkeypatch.setenv("PIPELINES_DATASET", "pretrain_text")
    config, parameters = notebook_parameters(None, dataset="chat_sft")
    assert (config.env, config.storage_root, parameters) == ("local", f"file:{tmp_path}", {"dataset": "pretrain_text"})
