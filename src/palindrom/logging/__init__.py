"""Company logging: `logger` for structured logs and `capture_error` for Better Stack alerts.

`capture_error(e, context={...})` logs the exception with its context and, where a Better Stack
source token is set (`BETTERSTACK_SOURCE_TOKEN`, on Databricks from a secret scope), sends it to
Better Stack's log ingestion endpoint. Alerting must never hide the original failure: a failed
delivery is logged and swallowed, and the caller re-raises.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
import traceback
from typing import Any

import requests

__all__ = ["capture_error", "logger"]

DEFAULT_INGEST_URL = "https://in.logs.betterstack.com"


def _make_logger() -> logging.Logger:
    log = logging.getLogger("palindrom")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)
        log.setLevel(os.environ.get("PALINDROM_LOG_LEVEL", "INFO"))
        log.propagate = False
    return log


logger = _make_logger()


def capture_error(error: BaseException, context: dict[str, Any] | None = None) -> bool:
    """Report `error` with `context`; returns True when Better Stack accepted it."""
    context = dict(context or {})
    logger.error("%s: %s (context: %s)", type(error).__name__, error, context)
    token = os.environ.get("BETTERSTACK_SOURCE_TOKEN")
    if not token:
        return False
    event = {
        "dt": dt.datetime.now(dt.UTC).isoformat(),
        "level": "error",
        "message": f"{type(error).__name__}: {error}",
        "exception": "".join(traceback.format_exception(error)),
        "context": context,
    }
    url = os.environ.get("BETTERSTACK_INGEST_URL", DEFAULT_INGEST_URL)
    try:
        response = requests.post(url, json=event, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        response.raise_for_status()
    except requests.RequestException as delivery_error:
        logger.warning("could not deliver the error to Better Stack at %s: %s", url, delivery_error)
        return False
    return True
