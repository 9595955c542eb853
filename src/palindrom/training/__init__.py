"""Training-dataset building blocks, used by the gold builder (pipelines/gold/build_training_data.py).

Spark-free, so a trainer or a test calls them directly: `spec`, `tokenization`, `packing`, `splits`,
`mixing`, `manifest`, `card`, `lineage`. DataFrame → DataFrame transformations on Spark: `documents`,
`curation`, `sequences` (which run the Spark-free cores in Arrow batches).
"""


class BuildError(RuntimeError):
    """A build cannot produce a release; nothing was committed. The message says why."""


class LostRace(BuildError):
    """Another build committed the release number this one claimed."""
