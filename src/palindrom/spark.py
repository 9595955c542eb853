"""The one place a SparkSession is built.

On Databricks (detected from the runtime's environment) the cluster's session is used as it is:
its Spark and Delta are the runtime's, and no jars are added. Locally: `local[*]` with Delta's SQL
extension and catalog, the jars that `make setup` resolved into .jars/, and settings for a small
machine; for an s3a:// storage root also Hadoop's S3A connector (.jars/s3/), configured from the
standard AWS environment variables. The session time zone is UTC everywhere, so timestamps never
depend on the machine.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from palindrom.config import REPO_ROOT, SparkConfig

JARS_DIR = Path(os.environ.get("PIPELINES_JARS_DIR", REPO_ROOT / ".jars"))
S3A_JARS_DIR = JARS_DIR / "s3"
LOG_CONFIG = Path(__file__).with_name("spark-log4j2.properties")

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


def s3a_jars() -> list[str]:
    jars = sorted(str(p) for p in S3A_JARS_DIR.glob("*.jar"))
    if not jars:
        raise RuntimeError(f"no S3A jars in {S3A_JARS_DIR}: run `make setup` first")
    return jars


def s3a_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """Hadoop settings for s3a:// from the AWS variables that pyarrow and delta-rs read too.

    AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL: an S3-compatible server (MinIO, s3proxy), addressed by
    path; AWS_REGION or AWS_DEFAULT_REGION: the signing region. Credentials are not copied into the
    configuration: S3A's default provider chain reads AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY itself.
    """
    settings = {}
    endpoint = environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        settings["fs.s3a.endpoint"] = endpoint
        settings["fs.s3a.path.style.access"] = "true"
        settings["fs.s3a.connection.ssl.enabled"] = str(endpoint.startswith("https://")).lower()
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    if region:
        settings["fs.s3a.endpoint.region"] = region
    return settings


def get_spark(config: SparkConfig, app_name: str = "pipelines", storage_root: str | None = None):
    """The SparkSession for this environment (created once per process). Locally, a `storage_root`
    on s3a:// puts the S3A connector on the classpath (only then: the AWS SDK is ~690 MB of jars)."""
    from pyspark.sql import SparkSession

    if on_databricks():
        spark = SparkSession.builder.getOrCreate()
    else:
        # Python workers must run this interpreter (the project's venv), not whatever is on PATH.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        if config.master.startswith("local"):
            # One JVM on this machine: bound to loopback, Spark need not look for the host's address
            # (where the host name resolves to loopback, it warns twice at every start that it did).
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        cores = max(2, os.cpu_count() or 2)
        builder = (
            SparkSession.builder.master(config.master)
            .appName(app_name)
            .config("spark.jars", ",".join(local_jars()))
            .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
            .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
            .config("spark.sql.shuffle.partitions", str(config.shuffle_partitions))
            .config("spark.default.parallelism", str(cores))
            # Spark lists more than 32 paths (a batch of landing files, the folders VACUUM walks) with a
            # task per path, up to 10,000: here each task's start costs more than its listing (200
            # landing files: 1.2-3.7 s; 0.3-0.4 s with a task per core; VACUUM of a small table 17-26 s
            # against 3.6 s).
            .config("spark.sql.sources.parallelPartitionDiscovery.parallelism", str(cores))
            .config("spark.ui.enabled", str(config.ui_enabled).lower())
            .config("spark.driver.memory", config.driver_memory)
            .config("spark.sql.warehouse.dir", str(REPO_ROOT / ".cache" / "spark-warehouse"))
            .config("spark.driver.extraJavaOptions",
                    f"-Dderby.system.home={REPO_ROOT / '.cache'} -Dlog4j2.configurationFile={LOG_CONFIG.as_uri()}")
            # Delta reads its log with 50 tasks by default: far too many for a laptop.
            .config("spark.databricks.delta.snapshotPartitions", str(config.shuffle_partitions))
            .config("spark.ui.showConsoleProgress", "false")
            # Keep every table readable by other Delta clients (delta-rs): no deletion vectors.
            .config("spark.databricks.delta.properties.defaults.enableDeletionVectors", "false")
        )
        if storage_root and storage_root.startswith("s3a://"):
            # On the classpath of the driver (which runs the local executors), not in spark.jars, which
            # every session would copy into its work folder.
            builder = builder.config("spark.driver.extraClassPath", os.pathsep.join(s3a_jars()))
            for key, value in s3a_settings(os.environ).items():
                builder = builder.config(f"spark.hadoop.{key}", value)
        for key, value in config.conf.items():  # the config's own settings win
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
        _skip_local_checksums(spark)
    for key, value in COMMON_CONF.items():
        spark.conf.set(key, value)
    return spark


def _skip_local_checksums(spark) -> None:
    """Local reads skip Hadoop's checksum side files (`.<name>.crc`). Its checksum layer names that
    file as a path of its own, which a name holding a colon makes a URI with a scheme: a landing file
    `events-2026-11-27T10:00:00Z.jsonl` could not be opened at all. The local executors share the
    driver's cached local file system, so this covers every task. Object stores (S3, Databricks) have
    no such files and are not affected; writes still write them."""
    context = spark.sparkContext
    context._jvm.org.apache.hadoop.fs.FileSystem.getLocal(context._jsc.hadoopConfiguration()).setVerifyChecksum(False)
