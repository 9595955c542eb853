"""Delta tables read without a JVM: for the Spark-free commands, for training boxes, and for the
jobs' small bookkeeping tables (`tables.read_small`), which are also written here (`append`).

delta-rs lists a snapshot's files (pruned to one partition); pyarrow reads them with its own
filesystems. Reading through delta-rs' own pyarrow dataset instead can abort the interpreter at
exit ("terminate called without an active exception", delta-io/delta-rs#2184): seen here with
deltalake 1.6.6, intermittently.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from palindrom.lake.objects import filesystem
from palindrom.lake.paths import native_uri

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")

# delta-rs logs through env_logger, which reads RUST_LOG when deltalake is first imported (only here):
# its warnings stay, the AWS SDK's do not (without credentials, three long lines on the region from
# instance metadata before StorageUnreachable says what is missing). A RUST_LOG of one's own is kept.
os.environ.setdefault("RUST_LOG", "warn,aws_config=error")


class StorageUnreachable(OSError):
    """delta-rs could not reach a table's storage (no credentials, no such bucket, no network)."""


def _unreachable(uri: str, error: OSError) -> StorageUnreachable:
    """The table named, delta-rs' account of why without its terminal colours, and for an s3a:// root
    without credentials what to set."""
    cause = "\n".join(line.rstrip() for line in ANSI_ESCAPE.sub("", str(error)).splitlines() if line.strip())
    hint = ""
    if uri.startswith("s3") and "credential" in cause:
        hint = (" (an s3a:// root needs AWS credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a "
                "profile or an instance profile; AWS_ENDPOINT_URL for an S3-compatible server)")
    return StorageUnreachable(f"cannot reach the Delta table at {uri}{hint}:\n{cause}")


def _open(uri: str, version: int | None = None):
    """The delta-rs table at `uri` (its latest snapshot, or `version`); None if there is no table."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        return DeltaTable(native_uri(uri), version=version)
    except TableNotFoundError:
        return None
    except OSError as e:
        raise _unreachable(uri, e) from e


def commits(uri: str, limit: int) -> list[dict] | None:
    """The table's newest `limit` commits, newest first (version, operation, userMetadata, ...), read
    from the log alone; None if there is no table."""
    table = _open(uri)
    return None if table is None else table.history(limit)


def table_id(uri: str) -> str | None:
    """The table's id, from its metadata (None if there is no table)."""
    table = _open(uri)
    return None if table is None else table.metadata().id


def not_null_columns(uri: str) -> set[str]:
    """The table's top-level NOT NULL columns (none where there is no table)."""
    table = _open(uri)
    return set() if table is None else {f.name for f in table.schema().fields if not f.nullable}


def file_statistics(uri: str) -> pa.Table | None:
    """One row per data file of the latest snapshot, with its Delta statistics as `min.<column>`,
    `max.<column>`, `null_count.<column>` and `num_records` (absent where the writer kept none); None
    if there is no table. Read from the log alone: no data file is opened."""
    table = _open(uri)
    return None if table is None else pa.table(table.get_add_actions(flatten=True))


def logged_row_count(uri: str) -> int | None:
    """The table's row count as its Delta log states it (the sum of its data files' record counts): no
    data file is opened. None where the log cannot tell: no table, a file written without statistics,
    or deletion vectors (rows a file still counts may be deleted)."""
    table = _open(uri)
    if table is None or "deletionVectors" in (table.protocol().reader_features or ()):
        return None
    counts = pa.table(table.get_add_actions(flatten=True)).column("num_records").to_pylist()
    return None if None in counts else sum(counts)


def read_table(uri: str, *, version: int | None = None, partition: tuple[str, object] | None = None,
               columns: list[str] | None = None, row_filter: ds.Expression | None = None) -> pa.Table | None:
    """Rows of a Delta table's snapshot (the latest, or `version`), optionally of one partition
    (column, value), with pyarrow column selection and filter; None if there is no table."""
    table = _open(uri, version)
    if table is None:
        return None
    schema = pa.schema(table.schema().to_arrow())
    partition_columns = table.metadata().partition_columns
    files = data_files(table, partition)
    if not files:
        return schema.empty_table().select(columns) if columns else schema.empty_table()
    fs, root = filesystem(uri)
    dataset = ds.dataset([f"{root}/{f}" for f in files], format="parquet", filesystem=fs, schema=schema,
                         partition_base_dir=root,
                         partitioning=ds.partitioning(pa.schema([schema.field(c) for c in partition_columns]),
                                                      flavor="hive"))
    return dataset.to_table(columns=columns, filter=row_filter)


def data_files(table, partition: tuple[str, object] | None = None) -> list[str]:
    """The snapshot's data files (of one partition: column, value), as paths relative to the table's
    folder. Not delta-rs' `file_uris`: it percent-encodes the table's own path (a root with a space or
    a non-ASCII letter then names no file), while the log's paths are URIs relative to the table that
    decode once to the files' names (the Delta protocol's rule)."""
    actions = pa.table(table.get_add_actions(flatten=True))
    if partition:
        column, value = partition
        actions = actions.filter(pc.equal(actions[f"partition.{column}"].cast(pa.string()), str(value)))
    return [unquote(path) for path in actions.column("path").to_pylist()]


def append(uri: str, rows: pa.Table, properties: Mapping[str, str]) -> None:
    """Append `rows` to the table at `uri` in one commit; where there is no table yet, that commit
    creates it with the rows' schema (non-nullable fields are NOT NULL) and `properties`."""
    from deltalake import write_deltalake
    from deltalake.exceptions import DeltaError

    try:
        write_deltalake(native_uri(uri), rows, mode="append", configuration=dict(properties))
    except DeltaError as e:
        raise DeltaError(f"{uri}: {rows.num_rows} rows not appended: {e}") from e
    except OSError as e:
        raise _unreachable(uri, e) from e
