"""Training-dataset building blocks: dataset specs, documents, splits, tokenizers and packing.

All but `documents` (DataFrame → DataFrame transformations over the silver tables) are Spark-free,
so a trainer or a test can call them directly; the gold builder runs them inside Spark.
"""


class BuildError(RuntimeError):
    """A build cannot produce a release; nothing was committed. The message says why."""


class LostRace(BuildError):
    """Another build committed the release number this one claimed."""
