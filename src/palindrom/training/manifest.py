"""A release's manifest: everything needed to rebuild it and to answer "which exact data is this?".

Stored as JSON in the release's row of `gold/training_datasets/_releases` (the commit point) and as
`manifest.json` beside the card. Spark-free: the loader, the CLI and the card read it as is.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import subprocess
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from palindrom.config import REPO_ROOT


class _Model(BaseModel):
    # Manifests are kept for ever: a reader ignores fields it does not know (written by a newer builder),
    # and fields added later need defaults, so every old release stays readable.
    model_config = ConfigDict(frozen=True, extra="ignore")


class PinnedInput(_Model):
    table: str  # logical name, e.g. silver.events
    uri: str
    version: int  # the Delta version read
    table_id: str  # the Delta table's id: with the version, it names the data exactly
    digest: str  # sha256 of table id and version (MLflow's dataset digest)


class Stage(_Model):
    stage: str  # "documents" (the builders), then each curation step
    documents_in: int
    documents_out: int
    dropped: dict[str, int]  # reason → documents
    rewritten: int


class Mix(_Model):
    source: str
    target_share: float
    tokens: int
    repeat: float
    capped: bool
    achieved_share: float


class SplitTokens(_Model):
    rows: int
    documents: int  # distinct documents with tokens in these rows (copies counted once)
    tokens: int  # non-padding tokens
    loss_tokens: int  # tokens with loss mask 1


class TokenizerInfo(_Model):
    origin: str  # "trained" (in release `trained_in_release` of this dataset), "file" or "hub"
    reference: str  # file path, hub id@revision, or "bpe:<vocab size>"
    sha256: str
    vocab_size: int
    section_sha256: str  # of the spec's tokenizer section: a trained tokenizer is reused while it is unchanged
    trained_in_release: int | None = None


class Code(_Model):
    package_version: str
    git_commit: str
    sha256: str  # of the builder's source files: a change rebuilds


class Manifest(_Model):
    manifest_version: int = 1
    dataset: str
    release: int
    build_id: str
    created_at: str  # ISO UTC
    build_date: str  # the date relative date ranges were resolved against
    description: str
    kind: str  # chat, text or multimodal
    spec_text: str
    spec_sha256: str
    inputs: list[PinnedInput]
    date_ranges: dict[str, tuple[str, str]]  # source → (first, last) day
    schema_versions: dict[str, list[int]]  # event type → versions seen in the inputs
    embeddings: dict[str, dict[str, str]]  # modality → model_name, model_revision
    tokenizer: TokenizerInfo
    split_rule: str
    code: Code
    sequence_length: int
    packing: str
    stages: list[Stage]
    mix: list[Mix]
    tokens: dict[str, dict[str, SplitTokens]]  # split → source → counts
    length_histogram: dict[str, list[tuple[int, int, int]]]  # split → (from, to, documents), tokens per document
    row_schema: list[tuple[str, str]]  # column, type
    input_digest: str  # order-independent digest of the candidate documents
    fingerprint: str  # inputs + spec + code + tokenizer: an equal one means nothing changed
    content_digest: str  # order-independent digest of the release's rows
    rows: int
    mlflow_tracking_uri: str
    mlflow_experiment_id: str
    mlflow_run_id: str
    files_uri: str  # folder of README.md (the card), the plots, tokenizer.json and manifest.json

    @property
    def card_uri(self) -> str:
        return f"{self.files_uri}/README.md"

    @property
    def total_tokens(self) -> int:
        return sum(t.tokens for per_source in self.tokens.values() for t in per_source.values())


# The modules that decide a release's rows (the card, lineage and this manifest do not).
ROW_MODULES = ("curation", "documents", "mixing", "packing", "sequences", "spec", "splits", "tokenization")


def code_identity() -> Code:
    """The package version, the git commit when run from a checkout, and a hash of the builder's code."""
    try:
        version = importlib.metadata.version("pipelines")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    commit = os.environ.get("PIPELINES_GIT_COMMIT")  # set by the bundle on Databricks: ${bundle.git.commit}
    if not commit:
        try:
            commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                                    check=True, timeout=10).stdout.strip()
            if subprocess.run(["git", "status", "--porcelain", "src"], cwd=REPO_ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip():
                commit += "-dirty"
        except (OSError, subprocess.SubprocessError):
            commit = "unknown (not a git checkout, PIPELINES_GIT_COMMIT unset)"
    here = Path(__file__).resolve().parent
    builder = here.parents[1] / "pipelines" / "gold" / "build_training_data.py"
    digest = hashlib.sha256()
    for path in [*(here / f"{name}.py" for name in ROW_MODULES), builder]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return Code(package_version=version, git_commit=commit, sha256=digest.hexdigest())
