"""Media inspection in a child process. FFmpeg, libsndfile and Pillow are C, and on some damaged files
they kill the process that calls them (FFmpeg divides by zero on an ADX header whose block size is not
18: SIGFPE) or never return. In a Spark Python worker that fails the task and every retry of it, so a
single upload would stop each later run of the job. Here a long-lived child process inspects the
files one at a time; one that kills it or overruns the time limit gets the reason `decoder_error`, and
the next file a fresh child.
"""

from __future__ import annotations

import functools
import multiprocessing
import signal
from collections.abc import Callable

from palindrom.media import decoding

Inspect = Callable[[str, str, bytes | None, decoding.Limits], decoding.MediaFacts]


class IsolatedInspector:
    """`inspect(media_type, path, data, limits)` as `decoding.inspect_media` gives it, run in a child
    process (started on first use, with `spawn`: the worker may hold threads a fork would copy locked)."""

    def __init__(self, timeout_s: float, inspect: Inspect = decoding.inspect_media):
        self.timeout_s = timeout_s
        self._inspect = inspect
        self._process = self._conn = None

    def inspect(self, media_type: str, path: str, data: bytes | None, limits: decoding.Limits) -> decoding.MediaFacts:
        if self._process is None:
            context = multiprocessing.get_context("spawn")
            self._conn, child_end = context.Pipe()
            self._process = context.Process(target=_serve, args=(child_end, self._inspect), daemon=True,
                                            name="palindrom-media-inspector")
            self._process.start()
            child_end.close()
        self._conn.send((media_type, path, limits, data is not None))
        if data is not None:
            self._conn.send_bytes(data)  # as they are: pickled, a large video would be copied twice more
        if not self._conn.poll(self.timeout_s):  # a crash makes the pipe readable too (end of file)
            self._stop()
            raise decoding.MediaRejected(decoding.DECODER_ERROR,
                                         f"decoding did not finish within {self.timeout_s:g} s; stopped")
        try:
            outcome = self._conn.recv()
        except EOFError:
            raise decoding.MediaRejected(decoding.DECODER_ERROR,
                                         f"a decoder crashed the process ({_exit(self._stop())})") from None
        if outcome[0] == "rejected":
            raise decoding.MediaRejected(outcome[1], outcome[2])
        return outcome[1]

    def close(self) -> None:
        if self._process is not None:
            self._stop()

    def _stop(self) -> int | None:
        """Stops the child (if it still runs) and returns its exit code; the next file starts another."""
        self._process.kill()
        self._process.join()
        code = self._process.exitcode
        self._conn.close()
        self._process = self._conn = None
        return code


def _exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def _serve(conn, inspect: Inspect) -> None:
    """The child: inspects what it is sent until the parent closes its end."""
    while True:
        try:
            media_type, path, limits, has_data = conn.recv()
            data = conn.recv_bytes() if has_data else None
        except EOFError:
            return
        try:
            conn.send(("facts", inspect(media_type, path, data, limits)))
        except decoding.MediaRejected as e:
            conn.send(("rejected", e.reason, e.detail))


@functools.cache
def inspector(timeout_s: float) -> IsolatedInspector:
    """The process's inspector (one child per Spark Python worker, reused for every batch)."""
    return IsolatedInspector(timeout_s)
