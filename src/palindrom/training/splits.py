"""Train/validation/test by a stable hash of a group key, so a group (conversation, user) is in one split
whatever the order, partitioning or machine. The same rule is written as a Spark expression in
`split_column`; both use the first 15 hex digits of SHA-256("<seed>:<key>") as a fraction of 16^15."""

from __future__ import annotations

import hashlib

SPLITS = ("train", "validation", "test")
_DIGITS = 15


def split_fraction(key: str, seed: int | str) -> float:
    return int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:_DIGITS], 16) / 16**_DIGITS


def assign_split(key: str, seed: int, train: float, validation: float) -> str:
    u = split_fraction(key, seed)
    return "train" if u < train else "validation" if u < train + validation else "test"


def fraction_column(key, seed: int | str):
    """`split_fraction` as a Spark column over the string column `key`: uniform in [0, 1)."""
    from pyspark.sql import functions as F

    digest = F.sha2(F.concat(F.lit(f"{seed}:"), key), 256)
    return F.conv(F.substring(digest, 1, _DIGITS), 16, 10).cast("double") / float(16**_DIGITS)


def split_column(key, seed: int, train: float, validation: float):
    """The same assignment as `assign_split`, as a Spark column over the string column `key`."""
    from pyspark.sql import functions as F

    u = fraction_column(key, seed)
    return F.when(u < train, "train").when(u < train + validation, "validation").otherwise("test")
