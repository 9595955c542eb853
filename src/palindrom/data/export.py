"""Export a release to a folder that Hugging Face `datasets` loads: `hf` (`datasets.load_from_disk`),
`parquet` or `jsonl` (`datasets.load_dataset(folder)`: files named `data/<split>-00000-of-00001.<ext>`,
which its default patterns map to splits). The card (README.md), its plots, the tokenizer and the
manifest go with it. Spark-free.

The card carries no `configs` list on purpose: with one, `datasets` 5.2 keys its cache on the
patterns alone, so two exported folders collide and the second loads the first's rows."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from palindrom.data.releases import Release, read_file, read_rows
from palindrom.training import card

FORMATS = ("hf", "parquet", "jsonl")


def export_release(release: Release, fmt: str, out: Path) -> list[Path]:
    """Write the release into `out` (which must be empty or missing); returns the files written."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if fmt != "hf" and {"[", "]"} & set(str(out.absolute())):
        raise ValueError(f"{out}: datasets.load_dataset finds a folder's files through glob patterns, in which "
                         "[ ] make a character class, so it would find none here; choose a folder without them "
                         "(or --format hf)")
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out}: the export folder is not empty; choose a new one")
    import datasets

    out.mkdir(parents=True, exist_ok=True)
    splits = list(release.manifest.tokens)
    tables = {split: read_rows(release, split) for split in splits}
    if fmt == "hf":
        datasets.DatasetDict({s: datasets.Dataset(t, split=s) for s, t in tables.items()}).save_to_disk(str(out))
    else:
        (out / "data").mkdir()
        for split, table in tables.items():
            target = out / "data" / f"{split}-00000-of-00001.{fmt}"
            if fmt == "parquet":
                pq.write_table(table, target)
            else:
                datasets.Dataset(table).to_json(str(target), lines=True)
    for name in ("README.md", "tokenizer.json", "manifest.json", card.SEQUENCE_LENGTHS_PNG, card.SOURCE_MIX_PNG):
        (out / name).write_bytes(read_file(release, name))
    return sorted(p for p in out.rglob("*") if p.is_file())
