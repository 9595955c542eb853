"""Training-dataset releases read without a JVM: delta-rs and pyarrow only, so a training box with
no Spark loads a release, and the `pipelines dataset` commands answer in a second.

A release is visible only once its row is in gold/training_datasets/_releases (the builder's commit
point); its rows are those of the dataset's table with that release and build_id.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from palindrom.config import PipelineConfig, load_config
from palindrom.lake import objects
from palindrom.lake.native import read_table
from palindrom.lake.paths import Lake
from palindrom.training.manifest import Manifest


class ReleaseNotFound(LookupError):
    """No such dataset or release; the message lists what there is."""


@dataclass(frozen=True)
class Release:
    dataset: str
    release: int
    table_uri: str
    table_version: int  # the dataset table's version when the release was committed (for lineage)
    manifest: Manifest


def list_releases(config: PipelineConfig, dataset: str | None = None) -> list[Release]:
    """Committed releases, by dataset then release number."""
    lake = Lake(config.storage_root)
    rows = read_table(lake.table("gold.training_releases").uri, partition=("dataset", dataset) if dataset else None,
                      columns=["dataset", "release", "table_version", "manifest"])
    if rows is None:
        return []
    out = [Release(r["dataset"], r["release"], lake.training_dataset(r["dataset"]).uri, r["table_version"],
                   Manifest.model_validate_json(r["manifest"])) for r in rows.to_pylist()]
    return sorted(out, key=lambda r: (r.dataset, r.release))


def resolve(config: PipelineConfig, dataset: str, release: int | str | None = None) -> Release:
    """A committed release: a number, or None / "latest" for the newest."""
    releases = list_releases(config, dataset)
    if not releases:
        known = sorted({r.dataset for r in list_releases(config)})
        raise ReleaseNotFound(f"dataset {dataset!r} has no release under {config.storage_root} "
                              f"(datasets with releases: {', '.join(known) or 'none'}; build one with "
                              f"`pipelines dataset build {dataset}`)")
    if release is None or release == "latest":
        return releases[-1]
    try:
        number = int(release)
    except ValueError:
        raise ReleaseNotFound(f"release {release!r}: expected a number or 'latest'") from None
    for r in releases:
        if r.release == number:
            return r
    numbers = ", ".join(str(r.release) for r in releases)
    raise ReleaseNotFound(f"{dataset} has no release {number} (releases: {numbers})")


def parse_reference(reference: str) -> tuple[str, str | None]:
    """NAME, NAME@RELEASE or NAME@latest → (name, release or None)."""
    name, _, release = reference.partition("@")
    return name, release or None


def read_rows(release: Release, split: str | None = None, columns: list[str] | None = None) -> pa.Table:
    """The release's rows (its partition, this build only), optionally one split, without a JVM."""
    condition = (pc.field("release") == release.release) & (pc.field("build_id") == release.manifest.build_id)
    if split:
        if split not in release.manifest.tokens:
            raise ReleaseNotFound(f"{release.dataset}@{release.release} has no split {split!r} "
                                  f"(splits: {', '.join(release.manifest.tokens)})")
        condition &= pc.field("split") == split
    names = columns or [c for c, _ in release.manifest.row_schema]
    # The latest snapshot, not the release's own version: old versions go with Delta's log retention,
    # while a committed build's rows are never rewritten or deleted (only uncommitted builds' are).
    rows = read_table(release.table_uri, partition=("release", release.release), columns=names, row_filter=condition)
    if rows is None:
        raise ReleaseNotFound(f"{release.table_uri}: the table of {release.dataset} is missing")
    return rows.sort_by("example_id")


def read_file(release: Release, name: str) -> bytes:
    """A file beside the release: README.md (the card), tokenizer.json, manifest.json, the plots."""
    return objects.read_bytes(f"{release.manifest.files_uri}/{name}")


def load_training_dataset(name: str, release: int | str | None = None, split: str = "train", *,
                          env: str = "local", root: str | None = None, config: PipelineConfig | None = None):
    """A release's split as a Hugging Face `datasets.Dataset` (release None or "latest": the newest).

    Reads through delta-rs, so no Spark or JVM is needed; logs the release as an input of the
    active MLflow run, if there is one, so lineage runs from the training run to the silver data.

        from palindrom.data import load_training_dataset
        train = load_training_dataset("chat_sft", split="train")
    """
    import datasets

    config = config or load_config(env, root)
    found = resolve(config, name, release)
    rows = read_rows(found, split)
    from palindrom.training.lineage import log_training_input

    log_training_input(name, found.release, found.table_uri, found.table_version, found.manifest.content_digest,
                       split)
    info = datasets.DatasetInfo(description=found.manifest.description, dataset_name=name,
                                version=f"{found.release}.0.0")
    return datasets.Dataset(rows, info=info, split=split)
