"""Inspection in a child process: a file that crashes a decoder, or makes one run past the time limit,
gets `decoder_error`; the calling process lives on, and the next file is inspected by a fresh child."""

import io
import logging
import os
import signal

import av
import numpy as np
import pytest

from palindrom.media import decoding
from palindrom.media.isolation import IsolatedInspector
from pipelines.sample_media import audio_bytes, image_bytes

LIMITS = decoding.Limits()


def crash_on_request(media_type, path, data, limits):
    """inspect_media, except that the file named `crash` kills the process as a decoder's fault would."""
    if path == "crash":
        os.kill(os.getpid(), signal.SIGSEGV)
    return decoding.inspect_media(media_type, path, data, limits)


def speak_on_request(media_type, path, data, limits):
    """inspect_media, after writing to stderr as a C decoder does (libmpg123 on a damaged MP3), then
    crashing where the file is named `crash`."""
    os.write(2, f"Note: Illegal Audio-MPEG-Header 0x0 at offset {len(data)}.\nNote: Trying to resync...\n".encode())
    if path == "crash":
        os.kill(os.getpid(), signal.SIGSEGV)
    return decoding.inspect_media(media_type, path, data, limits)


def adx_with_block_size(block_size: int) -> bytes:
    """A CRI ADX file (a games' audio format FFmpeg reads) whose header states another block size than
    the 18 bytes its blocks have: FFmpeg 8's ADX reader divides by zero on it (SIGFPE)."""
    out = io.BytesIO()
    with av.open(out, "w", format="adx") as muxer:
        stream = muxer.add_stream("adpcm_adx", rate=48_000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 4800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 48_000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            muxer.mux(packet)
    data = bytearray(out.getvalue())
    assert data[5] == 18
    data[5] = block_size
    return bytes(data)


def test_facts_and_reasons_come_back_as_the_decoder_gives_them():
    isolated = IsolatedInspector(timeout_s=120)
    try:
        data = image_bytes(seed=3)
        assert isolated.inspect("image", "a.png", data, LIMITS) == decoding.inspect_media("image", "a.png", data)
        with pytest.raises(decoding.MediaRejected) as rejected:
            isolated.inspect("image", "a.png", b"not an image", LIMITS)
        assert rejected.value.reason == decoding.UNRECOGNISED
    finally:
        isolated.close()


def test_a_crashing_decoder_costs_its_file_only():
    isolated = IsolatedInspector(timeout_s=120, target=f"{__name__}:crash_on_request")
    try:
        first = isolated.inspect("audio", "a.wav", audio_bytes(0.5, 16_000), LIMITS)
        with pytest.raises(decoding.MediaRejected) as crashed:
            isolated.inspect("audio", "crash", audio_bytes(0.5, 16_000), LIMITS)
        assert (crashed.value.reason, crashed.value.detail) == (
            decoding.DECODER_ERROR, "a decoder crashed the process (SIGSEGV)")
        assert isolated.inspect("audio", "a.wav", audio_bytes(0.5, 16_000), LIMITS) == first  # a fresh child
    finally:
        isolated.close()


def test_a_decoder_that_does_not_finish_in_time_is_stopped():
    isolated = IsolatedInspector(timeout_s=0.001)  # less than a child takes to start
    try:
        with pytest.raises(decoding.MediaRejected) as stopped:
            isolated.inspect("audio", "a.wav", audio_bytes(0.5, 16_000), LIMITS)
        assert (stopped.value.reason, stopped.value.detail) == (
            decoding.DECODER_ERROR, "decoding did not finish within 0.001 s; stopped")
        isolated.timeout_s = 120
        assert isolated.inspect("audio", "a.wav", audio_bytes(0.5, 16_000), LIMITS).duration_s == 0.5
    finally:
        isolated.close()


def test_a_real_decoder_crash_is_a_reason_not_a_dead_worker():
    """Whatever FFmpeg makes of the damaged ADX file (version 8 crashes), this process lives on."""
    isolated = IsolatedInspector(timeout_s=120)
    try:
        with pytest.raises(decoding.MediaRejected) as rejected:
            isolated.inspect("audio", "game.adx", adx_with_block_size(66), LIMITS)
        assert rejected.value.reason in (decoding.DECODER_ERROR, decoding.CORRUPT)
        assert isolated.inspect("audio", "game.adx", adx_with_block_size(18), LIMITS).codec == "adpcm_adx"
    finally:
        isolated.close()


@pytest.fixture
def palindrom_log():
    """What the `palindrom` logger writes while the test runs (it does not propagate to the root)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("palindrom")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def test_what_a_decoder_writes_to_stderr_is_logged_with_its_file(palindrom_log):
    isolated = IsolatedInspector(timeout_s=120, target=f"{__name__}:speak_on_request")
    try:
        data = audio_bytes(0.5, 16_000)
        assert isolated.inspect("audio", "voice/a.wav", data, LIMITS).duration_s == 0.5
        assert [r.getMessage() for r in palindrom_log] == [
            f"voice/a.wav: the decoders wrote: Note: Illegal Audio-MPEG-Header 0x0 at offset {len(data)}. "
            "| Note: Trying to resync..."]
        with pytest.raises(decoding.MediaRejected):
            isolated.inspect("audio", "crash", b"abc", LIMITS)
        assert palindrom_log[-1].getMessage() == (
            "crash: the decoders wrote: Note: Illegal Audio-MPEG-Header 0x0 at offset 3. | Note: Trying to resync...")
        isolated.target = "palindrom.media.decoding:inspect_media"  # the next child is silent: nothing logged
        isolated.inspect("audio", "b.wav", data, LIMITS)
        assert len(palindrom_log) == 2
    finally:
        isolated.close()
