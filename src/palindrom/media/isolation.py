"""Media inspection in a child process. FFmpeg, libsndfile and Pillow are C, and on some damaged files
they kill the process that calls them (FFmpeg divides by zero on an ADX header whose block size is not
18: SIGFPE) or never return. In a Spark Python worker that fails the task and every retry of it, so a
single upload would stop each later run of the job. Here a long-lived child process inspects the
files one at a time; one that kills it or overruns the time limit gets the reason `decoder_error`, and
the next file a fresh child. What the decoders write to stderr (libmpg123's "Note: Illegal
Audio-MPEG-Header ...", a C library's last words before a crash) is logged with the file it is about.

The child is `python -m palindrom.media.isolation`, talking over two pipes: multiprocessing's `spawn`
would run the parent's main script again in it (a notebook's, a test runner's), and `fork` would copy
a worker's threads' locks as they are.
"""

from __future__ import annotations

import functools
import importlib
import os
import signal
import subprocess
import sys
import tempfile
from multiprocessing.connection import Connection

from palindrom.logging import logger
from palindrom.media import decoding

# The most of a file's decoder output that is logged (a decoder may write a line per damaged frame).
DECODER_OUTPUT_LOGGED_BYTES = 4096


class IsolatedInspector:
    """`inspect(media_type, path, data, limits)` as `decoding.inspect_media` gives it, run in a child
    process started on first use. `target` ("module:function") is what the child calls instead."""

    def __init__(self, timeout_s: float, target: str = "palindrom.media.decoding:inspect_media"):
        self.timeout_s = timeout_s
        self.target = target
        self._process: subprocess.Popen | None = None
        self._requests = self._replies = None
        self._stderr = None  # the child's stderr: a file, emptied before each request

    def inspect(self, media_type: str, path: str, data: bytes | None, limits: decoding.Limits) -> decoding.MediaFacts:
        if self._process is not None and self._process.poll() is not None:  # ended since (the OOM killer)
            self._stop()
        if self._process is None:
            self._start()
        os.ftruncate(self._stderr.fileno(), 0)
        os.lseek(self._stderr.fileno(), 0, os.SEEK_SET)  # the child's stderr shares this offset
        try:
            self._requests.send((media_type, path, limits, data is not None))
            if data is not None:
                self._requests.send_bytes(data)  # as they are: pickled, a large video would be copied twice more
            if not self._replies.poll(self.timeout_s):  # a crash makes the pipe readable too (its end)
                self._stop()
                raise decoding.MediaRejected(decoding.DECODER_ERROR,
                                             f"decoding did not finish within {self.timeout_s:g} s; stopped")
            outcome = self._replies.recv()
        except (EOFError, OSError):  # the child's ends closed as it died
            raise decoding.MediaRejected(decoding.DECODER_ERROR,
                                         f"a decoder crashed the process ({_exit(self._stop())})") from None
        finally:
            self._log_decoder_output(path)
        if outcome[0] == "rejected":
            raise decoding.MediaRejected(outcome[1], outcome[2])
        return outcome[1]

    def close(self) -> None:
        if self._process is not None:
            self._stop()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def _log_decoder_output(self, path: str) -> None:
        size = os.fstat(self._stderr.fileno()).st_size
        if not size:
            return
        text = os.pread(self._stderr.fileno(), DECODER_OUTPUT_LOGGED_BYTES, 0).decode("utf-8", "replace")
        more = f" ... ({size} bytes in all)" if size > DECODER_OUTPUT_LOGGED_BYTES else ""
        lines = " | ".join(line for line in text.splitlines() if line.strip())
        logger.warning("%s: the decoders wrote: %s%s", path, lines, more)

    def _start(self) -> None:
        if self._stderr is None:
            self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (kept open across files; closed in close())
        replies_read, replies_write = os.pipe()
        requests_read, requests_write = os.pipe()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}  # the parent's imports
        self._process = subprocess.Popen(
            [sys.executable, "-m", __name__, str(requests_read), str(replies_write), self.target],
            pass_fds=(requests_read, replies_write), env=env, stdin=subprocess.DEVNULL, stderr=self._stderr)
        os.close(requests_read)
        os.close(replies_write)
        self._requests = Connection(requests_write, readable=False)
        self._replies = Connection(replies_read, writable=False)

    def _stop(self) -> int | None:
        """Stops the child (if it still runs) and returns its exit code; the next file starts another."""
        self._process.kill()
        code = self._process.wait()
        self._requests.close()
        self._replies.close()
        self._process = self._requests = self._replies = None
        return code


def _exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def _serve(requests: Connection, replies: Connection, target: str) -> None:
    """The child: inspects what it is sent until the parent closes its end."""
    module, function = target.split(":")
    inspect = getattr(importlib.import_module(module), function)
    while True:
        try:
            media_type, path, limits, has_data = requests.recv()
            data = requests.recv_bytes() if has_data else None
        except EOFError:
            return
        try:
            replies.send(("facts", inspect(media_type, path, data, limits)))
        except decoding.MediaRejected as e:
            replies.send(("rejected", e.reason, e.detail))


@functools.cache
def inspector(timeout_s: float) -> IsolatedInspector:
    """The process's inspector (one child per Spark Python worker, reused for every batch)."""
    return IsolatedInspector(timeout_s)


if __name__ == "__main__":
    _serve(Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False), sys.argv[3])
