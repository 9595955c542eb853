"""Where every table and landing folder lives under a storage root (file:/abs/path or s3a:// URI).

Paths are built here and nowhere else: jobs ask for a table by name.
"""

from __future__ import annotations

from dataclasses import dataclass

# Logical table name → path under the root, as in the data-engineering standard's layout.
TABLE_PATHS = {
    "bronze.events": "bronze/events",
    # ingest_events' record of the landing files it has taken in (blank-only files included).
    "bronze.events_files": "bronze/_files/events",
    # The landing files an ingest refused, and why (see palindrom.lake.refusals); one per ingest task.
    "bronze.events_refusals": "bronze/_refusals/events",
    "bronze.media_refusals": "bronze/_refusals/media",
    "silver.events": "silver/events",
    "silver.quarantine.events": "silver/quarantine/events",
    # clean_events' record of the bronze batches it has finished, with per-batch counts.
    "silver.events_batches": "silver/_batches/events",
    # Lines `pipelines quarantine replay` took out of quarantine, and where each went.
    "silver.quarantine.events_replays": "silver/quarantine/_replays/events",
    # Media files `pipelines quarantine replay --media` took out of quarantine, with the reason they had.
    "silver.quarantine.media_replays": "silver/quarantine/_replays/media",
    "bronze.images": "bronze/images",
    "bronze.audio": "bronze/audio",
    "bronze.video": "bronze/video",
    "silver.media_metadata": "silver/media_metadata",
    "silver.quarantine.media": "silver/quarantine/media",
    "silver.media_embeddings": "silver/media_embeddings",
    # process_media's record of the bronze media batches it has finished, with per-batch counts.
    "silver.media_batches": "silver/_batches/media",
    # process_media's record, per text model, of the silver.events version its texts are embedded up to.
    "silver.text_embeddings_progress": "silver/_progress/text_embeddings",
    # process_media's record, per media type and model, of the silver.media_metadata version whose
    # objects are all embedded.
    "silver.media_embeddings_progress": "silver/_progress/media_embeddings",
    "gold.events_daily": "gold/aggregations/events_daily",
    # aggregate_events' record of the silver version it has aggregated up to.
    "gold.events_daily_progress": "gold/aggregations/_progress/events_daily",
    # The commit point of training-dataset releases: one row per (dataset, release), partitioned by dataset.
    "gold.training_releases": "gold/training_datasets/_releases",
}
LANDING_SOURCES = ("events", "images", "audio", "video")
# Media type → its landing folder and bronze table (the standard names the folders in the plural
# for images only).
MEDIA_FOLDERS = {"image": "images", "audio": "audio", "video": "video"}
BLOBS = "bronze/blobs"  # objects too large to store inline, one file per SHA-256
TRAINING_DATASETS = "gold/training_datasets"  # one table per dataset, named after its spec
LOCKS = "_locks"  # one lock file per task, on local roots (see pipelines.tasks.one_run_at_a_time)


def native_uri(uri: str) -> str:
    """A URI as clients outside the JVM (delta-rs, pyarrow) spell it: file:/x → /x, s3a:// → s3://."""
    if uri.startswith("file:"):
        return "/" + uri.removeprefix("file:").lstrip("/")
    return "s3://" + uri.removeprefix("s3a://") if uri.startswith("s3a://") else uri


@dataclass(frozen=True)
class TableRef:
    name: str
    uri: str

    def __str__(self) -> str:
        return f"{self.name} ({self.uri})"


@dataclass(frozen=True)
class Lake:
    root: str  # a URI: file:///... or s3a://bucket

    def table(self, name: str) -> TableRef:
        try:
            return TableRef(name, f"{self.root}/{TABLE_PATHS[name]}")
        except KeyError:
            raise KeyError(f"unknown table {name!r}; known tables: {', '.join(TABLE_PATHS)}") from None

    def landing(self, source: str) -> str:
        if source not in LANDING_SOURCES:
            raise KeyError(f"unknown landing source {source!r}; known: {', '.join(LANDING_SOURCES)}")
        return f"{self.root}/landing/{source}"

    def blob(self, sha256: str) -> str:
        return f"{self.root}/{BLOBS}/{sha256}"

    def training_dataset(self, name: str) -> TableRef:
        """A training dataset's table: every release's rows, partitioned by `release`."""
        return TableRef(f"gold.training_datasets.{name}", f"{self.root}/{TRAINING_DATASETS}/{name}")

    def release_files(self, name: str, build_id: str) -> str:
        """A build's card, plots, tokenizer and manifest (by build, so a build that loses the race for
        a release number never overwrites the winner's)."""
        return f"{self.root}/{TRAINING_DATASETS}/_files/{name}/{build_id}"

    def task_lock(self, task: str) -> str:
        return f"{self.root}/{LOCKS}/{task}.lock"

    def tables(self) -> list[TableRef]:
        return [self.table(name) for name in TABLE_PATHS]
