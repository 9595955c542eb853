"""Shared fixtures: one Spark session for the whole run, a fresh storage root per test, the real
Apicurio Registry, an S3 API server (s3proxy) and an MLflow tracking server (all started here, on
free ports), and a sample lake built once by the real jobs (for tests/data_quality, the lake that
--lake-root names instead)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from palindrom.config import REPO_ROOT, PipelineConfig, load_config
from palindrom.events.registry import FileSchemaRegistry

SCHEMA_DIR = REPO_ROOT / "configs" / "schemas" / "events"
BIN = Path(sys.executable).parent
IN_CI = os.environ.get("CI", "").lower() == "true"

# Every JVM the tests start (Spark in this process and in the jobs' processes, Apicurio) runs many
# short jobs: the C1 compiler alone gets them done sooner than C1 + C2 on a 2-core machine. C1 alone
# also shrinks the JIT's code cache to 48 MB by default, which Spark's generated code fills within a
# test run ("CodeCache is full. Compiler has been disabled"): the usual 240 MB is kept.
os.environ.setdefault("JDK_JAVA_OPTIONS", "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=240m")


DATA_QUALITY_TESTS = Path(__file__).parent / "data_quality"
# The folder of the tests' lakes: with a space and a letter beyond ASCII, as a laptop's folders often
# are, so that every test on these lakes runs on such a root (Spark, delta-rs and pyarrow alike).
LAKE_FOLDER = "my lake \u00e9"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--lake-root", metavar="URI", help=(
        "run tests/data_quality over the lake at this root (a path or an s3a:// URI: S3A reads the AWS "
        "variables), only reading it, instead of over the sample lake they build"))
    parser.addoption("--lake-env", metavar="NAME", default="local",
                     help="with --lake-root: the config (local, dev, staging, prod) to read that lake with")


def lake_under_check(pytestconfig: pytest.Config) -> PipelineConfig | None:
    """The config of the lake named by --lake-root; None without it."""
    root = pytestconfig.getoption("lake_root")
    return load_config(pytestconfig.getoption("lake_env"), root) if root else None


def pytest_configure(config: pytest.Config) -> None:
    """With --lake-root only tests/data_quality may run: the other tests write to the lakes they use."""
    if not config.getoption("lake_root"):
        return
    paths = [config.invocation_params.dir / arg.split("::")[0] for arg in config.args]
    if others := [str(p) for p in paths if p.resolve() != DATA_QUALITY_TESTS and DATA_QUALITY_TESTS not in
                  p.resolve().parents]:
        raise pytest.UsageError(f"--lake-root runs tests/data_quality alone, not {', '.join(others)}: "
                                "pass tests/data_quality (or files in it)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Collection order is the order pytest-xdist hands work out: the training group first (its worker
    builds the shared sample lake at once, while the other worker runs the S3 test's jobs and then
    the unit tests), then the rest, the tests that only read the sample lake last."""
    def rank(item: pytest.Item) -> int:
        group = item.get_closest_marker("xdist_group")
        if (group and group.args == ("training",)) or "s3_server" in getattr(item, "fixturenames", ()):
            return 0
        return 2 if "sample_lake" in getattr(item, "fixturenames", ()) else 1

    items.sort(key=rank)


def service_unavailable(message: str) -> None:
    """A test's service could not be had: under CI that fails the test, elsewhere it skips it."""
    if IN_CI:
        pytest.fail(f"{message} (CI=true: a missing service fails the test)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def spark_session(pytestconfig: pytest.Config):
    from palindrom.config import SparkConfig
    from palindrom.spark import get_spark

    spark = get_spark(SparkConfig(master="local[2]", shuffle_partitions=2), app_name="pipelines-tests",
                      storage_root=pytestconfig.getoption("lake_root"))  # an s3a:// root: S3A on the classpath
    yield spark
    spark.stop()


@pytest.fixture
def lake_config(tmp_path: Path) -> PipelineConfig:
    """The local config with its own empty storage root under the test's temp folder."""
    return load_config("local", str(tmp_path / LAKE_FOLDER))


def lake_path(config: PipelineConfig) -> Path:
    return Path(config.storage_root.removeprefix("file:"))


@pytest.fixture(scope="session")
def repo_registry() -> FileSchemaRegistry:
    return FileSchemaRegistry(SCHEMA_DIR)


def _java_major(java: Path) -> int:
    out = subprocess.run([str(java), "-XshowSettings:properties", "-version"], capture_output=True, text=True).stderr
    m = re.search(r"java\.specification\.version = (\d+)", out)
    return int(m.group(1)) if m else 0


def find_java(minimum: int) -> Path | None:
    candidates = []
    for var in ("APICURIO_JAVA_HOME", "JAVA_HOME"):
        if os.environ.get(var):
            candidates.append(Path(os.environ[var]) / "bin" / "java")
    candidates += sorted(Path("/usr/lib/jvm").glob("*/bin/java"), reverse=True)
    if shutil.which("java"):
        candidates.append(Path(shutil.which("java")))
    return next((c for c in candidates if c.exists() and _java_major(c) >= minimum), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_jar_and_java(name: str, jar_glob: str, java_major: int, java_hint: str = "") -> tuple[Path, Path]:
    """The server's jar that set-up fetched into .cache/ and a Java to run it, or an unavailable service."""
    jar = next((REPO_ROOT / ".cache").glob(jar_glob), None)
    if jar is None:
        service_unavailable(f"{name} is not installed: run `make setup`")
    java = find_java(java_major)
    if java is None:
        service_unavailable(f"{name} needs Java {java_major}+; none found" + (f" ({java_hint})" if java_hint else ""))
    return jar, java


@contextlib.contextmanager
def running_server(name: str, command: list[str], is_up: Callable[[], bool], log: Path, cwd: Path | None = None,
                   timeout_s: float = 120):
    """Start a server process, wait until `is_up()` (a refused connection counts as not yet), yield,
    then stop it. A server that exits or is not up in time is an unavailable service."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if is_up():
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                service_unavailable(f"{name} did not start; see {log}:\n{log.read_text()[-2000:]}")
            time.sleep(0.3)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def apicurio_url(tmp_path_factory: pytest.TempPathFactory):
    """A real Apicurio Registry 3 (in-memory storage) for the session; yields its REST v3 base URL."""
    jar, java = server_jar_and_java("Apicurio Registry", "apicurio/*/quarkus-run.jar", 21, "set APICURIO_JAVA_HOME")
    port = free_port()
    base = f"http://127.0.0.1:{port}/apis/registry/v3"
    # Its management interface (health, metrics) would take port 9000, which a second worker's
    # registry then cannot: a free port for it too.
    command = [str(java), f"-Dquarkus.http.port={port}", "-Dquarkus.http.host=127.0.0.1",
               f"-Dquarkus.management.port={free_port()}", "-Dquarkus.management.host=127.0.0.1", "-jar", str(jar)]
    with running_server("Apicurio Registry", command, lambda: requests.get(f"{base}/system/info", timeout=2).ok,
                        tmp_path_factory.mktemp("apicurio") / "server.log", cwd=jar.parent):
        yield base


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory):
    """A real MLflow tracking server (`mlflow server`: SQLite store, artifacts served through it, as a
    workspace's are) for the session; yields its URL, the tracking URI a remote root's config names."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    url = f"http://127.0.0.1:{free_port()}"
    command = [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
               "--artifacts-destination", str(folder / "artifacts"), "--host", "127.0.0.1",
               "--port", url.rsplit(":", 1)[1], "--workers", "1"]
    with running_server("MLflow tracking server", command, lambda: requests.get(f"{url}/health", timeout=2).ok,
                        folder / "server.log", cwd=folder):
        yield url


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str

    @property
    def env(self) -> dict[str, str]:
        """The standard AWS variables through which Spark's S3A (palindrom.spark), pyarrow and delta-rs
        all reach this server. Under the AWS SDK's default request checksums s3proxy refuses pyarrow's
        uploads (HTTP 400 on UploadPart); with checksums only where the API requires them it takes them."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true",
            "AWS_EC2_METADATA_DISABLED": "true", "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
            "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
        }

    def new_bucket(self) -> str:
        import pyarrow.fs as pafs

        bucket = f"test-{uuid.uuid4().hex[:12]}"
        pafs.S3FileSystem(access_key=self.access_key, secret_key=self.secret_key, endpoint_override=self.endpoint,
                          region="us-east-1", allow_bucket_creation=True).create_dir(bucket)
        return bucket


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory):
    """A real S3 API server for the session: s3proxy with its in-memory store (its filesystem store
    answers a HEAD on a folder's marker as if it were a file, which S3A then refuses)."""
    jar, java = server_jar_and_java("s3proxy", "s3proxy/*/s3proxy.jar", 17)
    port = free_port()
    server = S3Server(f"http://127.0.0.1:{port}", "pipelines-tests", uuid.uuid4().hex)
    folder = tmp_path_factory.mktemp("s3proxy")
    (folder / "s3proxy.properties").write_text("\n".join([
        f"s3proxy.endpoint={server.endpoint}", "s3proxy.authorization=aws-v2-or-v4",
        f"s3proxy.identity={server.access_key}", f"s3proxy.credential={server.secret_key}",
        "jclouds.provider=transient", "",
    ]))
    command = [str(java), "-jar", str(jar), "--properties", str(folder / "s3proxy.properties")]
    # Any answer (403 to an unsigned request) means it is up.
    with running_server("s3proxy", command, lambda: requests.get(server.endpoint, timeout=2) is not None,
                        folder / "server.log", timeout_s=60):
        yield server


def compact_and_vacuum(spark, uri: str) -> None:
    """OPTIMIZE, then VACUUM RETAIN 0 HOURS: the files of earlier commits are gone, and with them the change
    data feed of those commits (what a table's routine maintenance does some days later)."""
    spark.sql(f"OPTIMIZE delta.`{uri}`")
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    try:
        spark.sql(f"VACUUM delta.`{uri}` RETAIN 0 HOURS")
    finally:
        spark.conf.unset("spark.databricks.delta.retentionDurationCheck.enabled")


def remove_data_files(uri: str) -> None:
    """Delete the data files of a local table's latest snapshot, its log kept: a read of its rows fails."""
    import deltalake

    from palindrom.lake import native
    from palindrom.lake.paths import native_uri

    folder = Path(native_uri(uri))
    for name in native.data_files(deltalake.DeltaTable(folder)):
        (folder / name).unlink()


def spark_jobs(call: Callable):
    """call()'s result, and whether it ran a Spark job."""
    from pyspark import SparkContext

    context, group = SparkContext.getOrCreate(), f"test-{uuid.uuid4().hex}"
    context.setJobGroup(group, group)
    try:
        return call(), bool(context.statusTracker().getJobIdsForGroup(group))
    finally:
        context.setLocalProperty("spark.jobGroup.id", None)


def run_cli(*args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(BIN / "pipelines"), *args], capture_output=True, text=True,
                            env={**os.environ, **(env or {})})
    if check and result.returncode != 0:
        raise AssertionError(f"pipelines {' '.join(args)} exited {result.returncode}:\n{result.stderr[-4000:]}")
    return result


def run_job_here(spark, job: str, config: PipelineConfig) -> None:
    """The tasks of a databricks.yml job, in its dependency order, called in this process on this
    session (`pipelines run` starts each in a fresh process: five JVM starts for the sample lake).
    A task's parameters besides --env and --root (`--on-refusal record`) reach its `run` as keywords."""
    import importlib
    from importlib.metadata import entry_points

    from pipelines.workflows import job_tasks, load_bundle, resolve_variables

    scripts = entry_points(group="console_scripts")
    for task in job_tasks(resolve_variables(load_bundle(), "local"), job, {}):
        (script,) = scripts.select(name=task.entry_point)
        given = dict(zip(task.parameters[::2], task.parameters[1::2], strict=True))
        importlib.import_module(script.module).run(spark, config, **{
            name.removeprefix("--").replace("-", "_"): value for name, value in given.items()
            if name not in ("--env", "--root")})


@pytest.fixture(scope="session")
def sample_lake(tmp_path_factory: pytest.TempPathFactory, worker_id: str, spark_session,
                pytestconfig: pytest.Config) -> PipelineConfig:
    """Sample data (`pipelines sample-data`) run through the tasks of the daily_ingestion and then the
    media_processing job, once per test run: pytest-xdist workers share it (the first to ask builds
    it under a lock). Tests that use it only read it. With --lake-root: that lake, as it is."""
    from filelock import FileLock

    if given := lake_under_check(pytestconfig):
        return given
    shared = tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent
    root, done = shared / "sample" / LAKE_FOLDER, shared / "sample" / "built"
    with FileLock(str(shared / "sample.lock")):
        if not done.exists():
            run_cli("sample-data", "--root", str(root), "--date", "2026-11-26", "--users", "600")
            config = load_config("local", str(root))
            for job in ("daily_ingestion", "media_processing"):
                run_job_here(spark_session, job, config)
            done.touch()
    return load_config("local", str(root))


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised CLIP built from the real transformers classes and saved as a
    checkpoint folder, so the production loading path (from_pretrained) is what the tests run."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    folder = tmp_path_factory.mktemp("models") / "tiny-clip"
    layers = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
    config = CLIPConfig(text_config={**layers, "vocab_size": 99, "bos_token_id": 0, "eos_token_id": 1,
                                     "pad_token_id": 1},
                        vision_config={**layers, "image_size": 32, "patch_size": 8}, projection_dim=16)
    import torch

    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_wav2vec2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    folder = tmp_path_factory.mktemp("models") / "tiny-wav2vec2"
    config = Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                            conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=16,
                            num_conv_pos_embedding_groups=2)
    import torch

    torch.manual_seed(0)
    Wav2Vec2Model(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(sampling_rate=16_000).save_pretrained(folder)
    return folder


BUILD_DATE = "2026-11-27"  # the sample lake holds 2026-11-26; the shipped specs look back 30 days


@pytest.fixture(scope="session")
def training_lake(sample_lake: PipelineConfig, spark_session, tmp_path_factory: pytest.TempPathFactory,
                  pytestconfig: pytest.Config):
    """A copy of the sample lake with release 1 of each shipped spec, built in this process, and the
    builds' results. With --lake-root: that lake, as it is, and no builds."""
    import datetime as dt

    from palindrom.training.spec import all_specs
    from pipelines.gold.build_training_data import build

    if lake_under_check(pytestconfig):
        return sample_lake, {}
    root = tmp_path_factory.mktemp("training") / LAKE_FOLDER
    shutil.copytree(lake_path(sample_lake), root)
    config = load_config("local", str(root))
    results = {spec.name: build(spark_session, config, spec, dt.date.fromisoformat(BUILD_DATE))
               for spec in all_specs()}
    return config, results
