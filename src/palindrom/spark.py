"""The one place a SparkSession is built.

On Databricks (detected from the runtime's environment) the cluster's session is used as it is:
its Spark and Delta are the runtime's, and no jars are added. Locally: `local[*]` with Delta's SQL
extension and catalog, the jars that `make setup` resolved into .jars/, and settings for a small
machine. The session time zone is UTC everywhere, so timestamps never depend on the machine.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from palindrom.config import REPO_ROOT, SparkConfig

JARS_DIR = Path(os.environ.get("PIPELINES_JARS_DIR", REPO_ROOT / ".jars"))

# Settings both locally and on Databricks: UTC, Arrow batches small enough that rows carrying
# whole files or long lines cannot exhaust a Python worker's memory.
COMMON_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.maxRecordsPerBatch": "2000",
    "spark.sql.execution.arrow.maxBytesPerBatch": str(64 << 20),
    "spark.sql.execution.pythonUDF.arrow.enabled": "true",
}


def on_databricks() -> bool:
    return "DATABRICKS_RUNTIME_VERSION" in os.environ


def local_jars() -> list[str]:
    jars = sorted(str(p) for p in JARS_DIR.glob("*.jar"))
    if not jars:
        raise RuntimeError(f"no Delta jars in {JARS_DIR}: run `make setup` first")
    return jars


def get_spark(config: SparkConfig, app_name: str = "pipelines"):
    """The SparkSession for this environment (created once per process)."""
    from pyspark.sql import SparkSession

    if on_databricks():
        spark = SparkSession.builder.getOrCreate()
    else:
        # Python workers must run this interpreter (the project's venv), not whatever is on PATH.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = (
            SparkSession.builder.master(config.master)
            .appName(app_name)
            .config("spark.jars", ",".join(local_jars()))
            .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
            .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
            .config("spark.sql.shuffle.partitions", str(config.shuffle_partitions))
            .config("spark.default.parallelism", str(max(2, os.cpu_count() or 2)))
            .config("spark.ui.enabled", str(config.ui_enabled).lower())
            .config("spark.driver.memory", config.driver_memory)
            .config("spark.sql.warehouse.dir", str(REPO_ROOT / ".cache" / "spark-warehouse"))
            .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={REPO_ROOT / '.cache'}")
            # Delta reads its log with 50 tasks by default: far too many for a laptop.
            .config("spark.databricks.delta.snapshotPartitions", str(config.shuffle_partitions))
            .config("spark.ui.showConsoleProgress", "false")
            # Keep every table readable by other Delta clients (delta-rs): no deletion vectors.
            .config("spark.databricks.delta.properties.defaults.enableDeletionVectors", "false")
        )
        for key, value in config.conf.items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("WARN")
    for key, value in COMMON_CONF.items():
        spark.conf.set(key, value)
    return spark
