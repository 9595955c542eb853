"""Shared data processing, as the data-engineering standard shows it:

    from palindrom.data import AudioProcessor, VideoProcessor, ImageProcessor, TextProcessor
    from palindrom.data import load_training_dataset      # a release as a Hugging Face Dataset

Names are imported on first use, so code that needs only the Spark-free parts (a training box
with no JVM) never imports pyspark.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "AudioProcessor": "palindrom.data.processors",
    "ImageProcessor": "palindrom.data.processors",
    "VideoProcessor": "palindrom.data.processors",
    "TextProcessor": "palindrom.data.processors",
    "load_training_dataset": "palindrom.data.releases",
    "list_releases": "palindrom.data.releases",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'palindrom.data' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
