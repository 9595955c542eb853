import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from palindrom.logging import capture_error, logger


@pytest.fixture
def better_stack(monkeypatch):
    """A local HTTP endpoint standing in for Better Stack's ingestion host (the network is closed here)."""
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.headers["Authorization"], json.loads(body)))
            self.send_response(202)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("BETTERSTACK_INGEST_URL", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("BETTERSTACK_SOURCE_TOKEN", "test-token")
    yield received
    server.shutdown()


def test_capture_error_sends_the_error_and_context(better_stack):
    error = ValueError("bad line 7")
    try:
        raise error
    except ValueError:
        delivered = capture_error(error, context={"job": "daily_ingestion", "layer": "bronze"})
    assert delivered is True
    (auth, event), = better_stack
    assert auth == "Bearer test-token"
    assert event["message"] == "ValueError: bad line 7"
    assert event["context"] == {"job": "daily_ingestion", "layer": "bronze"}
    assert "in test_capture_error_sends_the_error_and_context" in event["exception"]  # the traceback


def test_without_a_token_it_only_logs(monkeypatch, caplog):
    monkeypatch.delenv("BETTERSTACK_SOURCE_TOKEN", raising=False)
    logger.propagate = True
    try:
        assert capture_error(RuntimeError("boom"), {"job": "x"}) is False
    finally:
        logger.propagate = False
    assert "RuntimeError: boom" in caplog.text


def test_delivery_failure_never_hides_the_error(monkeypatch):
    monkeypatch.setenv("BETTERSTACK_SOURCE_TOKEN", "t")
    monkeypatch.setenv("BETTERSTACK_INGEST_URL", "http://127.0.0.1:9")  # nothing listens there
    assert capture_error(RuntimeError("boom")) is False
