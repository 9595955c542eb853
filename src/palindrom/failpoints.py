"""Named points where a test can stop a job for real, to prove a crash or a race there loses nothing.

`PIPELINES_FAILPOINTS=clean_events.after_quarantine_commit` makes the job announce the point on
stderr and wait there until it is killed. With `PIPELINES_FAILPOINT_GATE=<file>` as well, it leaves
`<file>.reached.<pid>-<thread>` and waits only until `<file>` exists, then goes on: a test lines two
builds up at one point (counting the marks) and lets them go together. Unset (always, in
production) it costs one lookup.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

ENV_VAR = "PIPELINES_FAILPOINTS"
GATE_VAR = "PIPELINES_FAILPOINT_GATE"


def failpoint(name: str) -> None:
    if name not in os.environ.get(ENV_VAR, "").split(","):
        return
    gate = os.environ.get(GATE_VAR)
    print(f"FAILPOINT {name} reached: waiting {'for ' + gate if gate else 'to be killed'}", file=sys.stderr,
          flush=True)
    if gate:
        Path(f"{gate}.reached.{os.getpid()}-{threading.get_ident()}").touch()
    while not (gate and Path(gate).exists()):
        time.sleep(0.2 if gate else 3600)
    print(f"FAILPOINT {name} passed", file=sys.stderr, flush=True)
