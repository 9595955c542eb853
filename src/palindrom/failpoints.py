"""Named points where a test can stop a job for real, to prove a crash there loses nothing.

`PIPELINES_FAILPOINTS=clean_events.after_quarantine_commit` makes the job announce the point on
stderr and wait there until it is killed; unset (always, in production) it costs one lookup.
"""

from __future__ import annotations

import os
import sys
import time

ENV_VAR = "PIPELINES_FAILPOINTS"


def failpoint(name: str) -> None:
    if name in os.environ.get(ENV_VAR, "").split(","):
        print(f"FAILPOINT {name} reached: waiting to be killed", file=sys.stderr, flush=True)
        while True:
            time.sleep(3600)
