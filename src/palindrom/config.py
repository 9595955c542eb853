"""Typed, validated configuration: `configs/<env>.yaml` loaded once into frozen objects.

A bad value fails at start with the key's dotted name. Secrets never live here: they come from
environment variables (on Databricks, from secret scopes mapped into the job's environment).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

REPO_ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ("local", "dev", "staging", "prod")


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names the file and key."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StorageConfig(_Frozen):
    root: str = Field(min_length=1, description="local path or s3a:// URI of the lake")


class SparkConfig(_Frozen):
    master: str = "local[*]"
    shuffle_partitions: int = Field(default=4, ge=1)
    ui_enabled: bool = False
    driver_memory: str = Field(default="4g", pattern=r"^[0-9]+[kmgt]$")
    conf: dict[str, str] = Field(default_factory=dict)


class RegistryConfig(_Frozen):
    kind: Literal["file", "apicurio"] = "file"
    url: str | None = None
    group: str = "palindrom.events"

    @model_validator(mode="after")
    def _url_for_apicurio(self) -> RegistryConfig:
        if self.kind == "apicurio" and not self.url:
            raise ValueError("registry.url is required when registry.kind is 'apicurio'")
        return self


class IngestConfig(_Frozen):
    max_file_bytes: int = Field(default=1 << 30, gt=0)
    max_line_bytes: int = Field(default=10 << 20, gt=0)


class AlertingConfig(_Frozen):
    betterstack: bool = False


class PipelineConfig(_Frozen):
    env: Literal["local", "dev", "staging", "prod"]
    storage: StorageConfig
    spark: SparkConfig = SparkConfig()
    registry: RegistryConfig = RegistryConfig()
    ingest: IngestConfig = IngestConfig()
    alerting: AlertingConfig = AlertingConfig()

    @property
    def storage_root(self) -> str:
        """The root as a URI Spark and Delta accept: s3a:// as is, local paths as file:/abs/path
        (Hadoop's own form, so paths Spark reports back compare equal to the ones we build)."""
        root = self.storage.root
        if "://" in root:
            return root.rstrip("/")
        path = Path(root)
        if not path.is_absolute():
            path = REPO_ROOT / path
        return f"file:{path.resolve()}"


def configs_dir() -> Path:
    """The configs folder: the repository's in a checkout, the copy shipped in the wheel otherwise."""
    override = os.environ.get("PIPELINES_CONFIG_DIR")
    if override:
        return Path(override)
    checkout = REPO_ROOT / "configs"
    if checkout.is_dir():
        return checkout
    import pipelines

    return Path(pipelines.__file__).parent / "_configs"


def load_config(env: str = "local", root: str | None = None) -> PipelineConfig:
    """Load `configs/<env>.yaml`; `root` (a local path or s3a:// URI) overrides the storage root."""
    if env not in ENVIRONMENTS:
        raise ConfigError(f"unknown environment {env!r}: expected one of {', '.join(ENVIRONMENTS)}")
    path = configs_dir() / f"{env}.yaml"
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError as e:
        raise ConfigError(f"{path}: no such configuration file") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    if root:
        raw.setdefault("storage", {})["root"] = root
    try:
        return PipelineConfig.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in e.errors()
        )
        raise ConfigError(f"{path}: {problems}") from e
