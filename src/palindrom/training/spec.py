"""Dataset specs: one YAML file per dataset in configs/datasets/, the dataset's name is the file's stem.

Validated on load into frozen objects; a wrong key or value fails naming the file, the key and the
rule. Dates are absolute (`2026-11-01`) or relative to the build date (`-30d`, `today`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from palindrom.config import configs_dir, validation_problems

NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
RELATIVE_DATE = re.compile(r"^(today|-(\d+)d)$")


class SpecError(ValueError):
    """A dataset spec is invalid; the message names the file, the key and the rule."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DateRange(_Frozen):
    start: str = Field(alias="from")
    end: str = Field(default="today", alias="to")

    @field_validator("start", "end", mode="before")
    @classmethod
    def _date(cls, value: object) -> str:
        if isinstance(value, dt.date):  # YAML reads an unquoted 2026-11-01 as a date
            return value.isoformat()
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is neither an ISO date nor relative ('today', '-30d')")
        if RELATIVE_DATE.match(value):
            return value
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is neither an ISO date nor relative ('today', '-30d')") from None
        return value

    def resolve(self, build_date: dt.date) -> tuple[dt.date, dt.date]:
        """(first, last) UTC dates, both included."""
        def one(value: str) -> dt.date:
            m = RELATIVE_DATE.match(value)
            if not m:
                return dt.date.fromisoformat(value)
            return build_date - dt.timedelta(days=int(m.group(2) or 0))

        first, last = one(self.start), one(self.end)
        if first > last:
            raise SpecError(f"date range {self.start}..{self.end} is empty for build date {build_date}")
        return first, last


class Source(_Frozen):
    name: str = Field(pattern=NAME.pattern)
    table: Literal["silver.events"] = "silver.events"  # documents come from events; media joins in by path
    event_types: tuple[Literal["conversation.message", "feedback.rating", "media.uploaded", "user.action"], ...] = \
        ("conversation.message",)
    dates: DateRange
    weight: float = Field(default=1.0, gt=0, description="share of training tokens, before normalising")
    max_upsample: float = Field(default=1.0, ge=1.0, description="at most this many repetitions of a small source")


class PinnedEmbedding(_Frozen):
    model_name: str = Field(min_length=1)
    model_revision: str = Field(min_length=1)


class Documents(_Frozen):
    kind: Literal["chat", "text", "multimodal"]
    chat_template: str | None = None  # Jinja, over `messages` (role, content); chat only
    drop_negative_feedback: bool = False  # chat: drop conversations with any -1 rating

    @model_validator(mode="after")
    def _template_for_chat(self) -> Documents:
        if self.kind == "chat" and not self.chat_template:
            raise ValueError("documents.chat_template is required for chat documents")
        if self.chat_template:
            from palindrom.training.tokenization import TokenizerError, chat_renderer

            try:
                chat_renderer(self.chat_template)  # compiles, renders each role, inserts the content once
            except TokenizerError as e:
                raise ValueError(str(e)) from None
        return self


class NormalizeWhitespace(_Frozen):
    """Rewrite: runs of whitespace become one space; leading and trailing whitespace go."""
    step: Literal["normalize_whitespace"]


class MinChars(_Frozen):
    """Drop (`too_short`) documents with fewer characters than `min` (chat: over all turns)."""
    step: Literal["min_chars"]
    min: int = Field(ge=1)


class MaxChars(_Frozen):
    """Drop (`too_long`) documents with more characters than `max`."""
    step: Literal["max_chars"]
    max: int = Field(ge=1)


class ExactDedup(_Frozen):
    """Drop (`duplicate`) documents whose text equals an earlier one's (the smallest document_id stays)."""
    step: Literal["exact_dedup"]


# The catalogue of curation steps; each is implemented in palindrom.training.curation.
CurationStep = Annotated[NormalizeWhitespace | MinChars | MaxChars | ExactDedup, Field(discriminator="step")]


class TrainTokenizer(_Frozen):
    type: Literal["bpe"] = "bpe"
    vocab_size: int = Field(ge=300, le=1_000_000)


class Tokenizer(_Frozen):
    path: str | None = None  # a tokenizer.json
    hub_id: str | None = None
    revision: str | None = Field(default=None, pattern=r"^[0-9a-f]{40}$")
    train: TrainTokenizer | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Tokenizer:
        given = [k for k in ("path", "hub_id", "train") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of path, hub_id, train (got {', '.join(given) or 'none'})")
        if self.hub_id and not self.revision:
            raise ValueError("a hub tokenizer needs `revision`: the 40-hex commit to pin")
        return self


class Output(_Frozen):
    sequence_length: int = Field(ge=8, le=1 << 20)
    packing: Literal["concat", "none"] = "concat"


class Splits(_Frozen):
    train: float = Field(gt=0, le=1)
    validation: float = Field(default=0.0, ge=0, le=1)
    test: float = Field(default=0.0, ge=0, le=1)
    group_by: Literal["conversation", "user"] = "conversation"
    seed: int = 0

    @model_validator(mode="after")
    def _sum_to_one(self) -> Splits:
        if abs(self.train + self.validation + self.test - 1.0) > 1e-9:
            raise ValueError(f"train + validation + test must be 1 (got {self.train + self.validation + self.test})")
        return self


class DatasetSpec(_Frozen):
    name: str = Field(pattern=NAME.pattern)
    description: str = Field(min_length=1)
    sources: tuple[Source, ...] = Field(min_length=1)
    embeddings: dict[Literal["image", "audio", "video", "text"], PinnedEmbedding] = Field(default_factory=dict)
    documents: Documents
    curation: tuple[CurationStep, ...] = ()
    tokenizer: Tokenizer
    output: Output
    splits: Splits
    schedule: Literal["daily", "none"] = "none"
    text: str = Field(default="", exclude=True, repr=False)  # the file as written, for the manifest

    @model_validator(mode="after")
    def _consistent(self) -> DatasetSpec:
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"source names must be unique (got {names})")
        if self.documents.kind == "multimodal" and not self.embeddings:
            raise ValueError("multimodal documents need `embeddings` pinned per modality")
        if self.documents.kind == "multimodal" and self.output.packing != "none":
            raise ValueError("multimodal examples carry one embedding each: output.packing must be `none`")
        return self

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def mix(self) -> dict[str, float]:
        """Each source's share of training tokens (weights normalised to 1)."""
        total = sum(s.weight for s in self.sources)
        return {s.name: s.weight / total for s in self.sources}


def specs_dir() -> Path:
    return configs_dir() / "datasets"


def load_spec(name_or_path: str | Path) -> DatasetSpec:
    """A spec by dataset name (configs/datasets/<name>.yaml) or by path; the name is the file's stem."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = specs_dir() / f"{name_or_path}.yaml"
    try:
        text = path.read_text()
    except FileNotFoundError:
        known = ", ".join(sorted(p.stem for p in specs_dir().glob("*.yaml")))
        raise SpecError(f"{path}: no such dataset spec (known: {known or 'none'})") from None
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise SpecError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: a spec is a mapping of keys, not {type(raw).__name__}")
    if "name" in raw:
        raise SpecError(f"{path}: name: not allowed; the dataset's name is the file's stem ({path.stem!r})")
    try:
        return DatasetSpec.model_validate({**raw, "name": path.stem, "text": text})
    except ValidationError as e:
        raise SpecError(f"{path}: {validation_problems(e)}") from None


def all_specs() -> list[DatasetSpec]:
    return [load_spec(p) for p in sorted(specs_dir().glob("*.yaml"))]
