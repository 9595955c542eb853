import os
import pickle
import socket
import subprocess
import sys

import pytest

from palindrom.lake import tables
from palindrom.lake.native import StorageUnreachable
from palindrom.lake.paths import Lake
from pipelines.bronze import ingest_events


@pytest.fixture
def no_aws_credentials(monkeypatch, tmp_path):
    """Nothing in the AWS default chain: no variables, no files, no instance metadata."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_an_s3_root_without_credentials_is_named_with_what_to_set(no_aws_credentials):
    ref = Lake("s3a://palindrom-data-dev").table("bronze.events_files")
    with pytest.raises(StorageUnreachable) as raised:
        tables.read_small(ref, ["batch_id"])
    message = str(raised.value)
    assert message.startswith("cannot reach the Delta table at s3a://palindrom-data-dev/bronze/_files/events "
                              "(an s3a:// root needs AWS credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    assert "no credentials found in chain" in message  # delta-rs' own account follows
    assert "\x1b[" not in message  # its terminal colours are not
    assert str(pickle.loads(pickle.dumps(raised.value))) == message  # as from a worker process


def test_a_task_on_an_s3_root_without_credentials_fails_naming_the_table(no_aws_credentials):
    # It fails where it first reads the lake (its file record, before Spark starts).
    with pytest.raises(StorageUnreachable, match="s3a://palindrom-data-dev/bronze/_files/events"):
        ingest_events.main(["--env", "dev"])


@pytest.mark.parametrize("rust_log", [None, "warn"])
def test_the_aws_sdks_warnings_are_left_out_unless_rust_log_asks(no_aws_credentials, monkeypatch, rust_log):
    # Instance metadata at a closed local port, as on a laptop: the SDK warns for each probe.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "false")
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", f"http://127.0.0.1:{closed_port}")
    monkeypatch.delenv("RUST_LOG", raising=False)
    if rust_log:
        monkeypatch.setenv("RUST_LOG", rust_log)
    read = ("from palindrom.lake import tables; from palindrom.lake.paths import Lake; "
            "tables.read_small(Lake('s3a://palindrom-data-dev').table('bronze.events_files'), ['batch_id'])")
    stderr = subprocess.run([sys.executable, "-c", read], capture_output=True, text=True, env=os.environ).stderr
    assert "StorageUnreachable: cannot reach the Delta table at s3a://palindrom-data-dev/bronze/_files/events" in stderr
    assert ("WARN  aws_config::imds::region] failed to load region from IMDS" in stderr) == (rust_log == "warn")
