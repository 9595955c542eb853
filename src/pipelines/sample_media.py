"""Real sample media for landing/{images,audio,video}/ (`pipelines sample-data`), broken files included.

Every file is made with the library a producer would use (Pillow, soundfile, PyAV), so decoding
it exercises the real formats: PNG/JPEG/WEBP in RGB, grayscale and RGBA, an EXIF-rotated JPEG,
WAV/FLAC/Ogg Vorbis at several rates, MP4 (H.264) and WebM (VP9) clips; and the dirt: empty,
truncated and text-posing-as-media files, a file of the wrong media type, a decompression bomb, a
file whose extension lies about good bytes, and one content under two paths.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from palindrom.media import containers

LANDING_FOLDERS = {"image": "images", "audio": "audio", "video": "video"}


@dataclass(frozen=True)
class SampleMedia:
    media_type: str
    path: str  # relative to landing/<folder>/, as media.uploaded's file_name
    mime_type: str  # what the producer claims (events carry it); the bytes may disagree
    make: Callable[[], bytes]
    reason: str | None = None  # the quarantine reason expected, None for good media
    caption: str | None = None


# --- images --------------------------------------------------------------------------------------

def image_bytes(size: tuple[int, int] = (320, 200), mode: str = "RGB", fmt: str = "PNG", seed: int = 0,
                orientation: int | None = None) -> bytes:
    """A gradient with a few coloured shapes, so perceptual hashes and histograms differ by seed."""
    from PIL import Image, ImageDraw

    width, height = size
    x = np.linspace(0, 255, width, dtype=np.float64)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float64)[:, None]
    rgb = np.stack([(x + 40 * seed) % 256 + 0 * y, (y + 70 * seed) % 256 + 0 * x, (x + y) / 2 % 256], axis=-1)
    image = Image.fromarray(rgb.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    rng = np.random.default_rng(seed)
    for _ in range(4):
        x0, y0 = int(rng.integers(0, max(1, width // 2))), int(rng.integers(0, max(1, height // 2)))
        draw.ellipse((x0, y0, x0 + width // 3, y0 + height // 3), fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    image = image.convert(mode)
    out = io.BytesIO()
    kwargs = {}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif
    image.save(out, format=fmt, **kwargs)
    return out.getvalue()


def bomb_png(side: int = 20_000) -> bytes:
    """A tiny PNG (a few kB) that would decode to side² pixels."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("1", (side, side)).save(out, format="PNG", optimize=True)
    return out.getvalue()


# --- audio ---------------------------------------------------------------------------------------

def tone(seconds: float, rate: int, channels: int = 1, freq: float = 440.0, silence_s: float = 0.0) -> np.ndarray:
    """A tone followed by `silence_s` of digital silence, float32 [frames, channels]."""
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.5 * np.sin(2 * math.pi * freq * t)
    wave = np.concatenate([wave, np.zeros(int(silence_s * rate))])
    return np.stack([wave * (0.8 ** c) for c in range(channels)], axis=1).astype(np.float32)


def audio_bytes(seconds: float = 1.5, rate: int = 16_000, channels: int = 1, fmt: str = "WAV",
                subtype: str | None = None, freq: float = 440.0, silence_s: float = 0.0) -> bytes:
    import soundfile as sf

    out = io.BytesIO()
    sf.write(out, tone(seconds, rate, channels, freq, silence_s), rate, format=fmt, subtype=subtype)
    return with_ogg_serial(out.getvalue(), OGG_SERIAL) if fmt == "OGG" else out.getvalue()


OGG_SERIAL = 0x70616C69  # the sample's Ogg stream serial number (any fixed one)


def with_ogg_serial(data: bytes, serial: int) -> bytes:
    """An Ogg file (one logical stream) with `serial` as its stream serial number, each page's checksum
    recomputed. libsndfile draws the serial number at random, so without this a seeded sample would
    differ from run to run in those bytes (and so in its SHA-256, and in every digest downstream)."""
    out, pos = bytearray(data), 0
    while pos < len(out):
        if out[pos:pos + 4] != b"OggS":
            raise ValueError(f"not an Ogg page at byte {pos}")
        segments = out[pos + 26]
        end = pos + 27 + segments + sum(out[pos + 27:pos + 27 + segments])
        out[pos + 14:pos + 18] = serial.to_bytes(4, "little")
        out[pos + 22:pos + 26] = containers.ogg_page_checksum(bytes(out[pos:end])).to_bytes(4, "little")
        pos = end
    return bytes(out)


# --- video ---------------------------------------------------------------------------------------

def video_bytes(frames: int = 48, fps: int = 24, size: tuple[int, int] = (96, 64), codec: str = "libx264",
                container: str = "mp4", rotation: int = 0, title: str | None = None) -> bytes:
    """A moving square on a colour ramp (blue growing to the right), encoded with FFmpeg through PyAV,
    with a display rotation (degrees counter-clockwise, as a phone records portrait) where `rotation`
    is not 0 and a title tag where `title` is given; the same bytes on every call.
    Bit-exact muxing leaves out the random ids (WebM's segment and track UIDs) and version strings;
    x264's macroblock-tree rate control is off: with it, the same frames came out encoded differently
    from one call to the next in a process (B-frames stay, as in the usual encoder settings)."""
    import av

    width, height = size
    out = io.BytesIO()
    with av.open(out, mode="w", format=container, options={"fflags": "+bitexact"}) as muxer:
        if title:
            muxer.metadata["title"] = title
        stream = muxer.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        options = {"flags": "+bitexact"}
        if codec == "libx264":
            options |= {"threads": "1", "x264-params": "mbtree=0"}
        stream.options = options
        for i in range(frames):
            pixels = np.zeros((height, width, 3), np.uint8)
            pixels[..., 0] = int(255 * i / max(1, frames - 1))
            pixels[..., 2] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
            x = (i * 3) % (width - 16)
            pixels[height // 4: height // 4 + 16, x: x + 16] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                muxer.mux(packet)
        for packet in stream.encode():
            muxer.mux(packet)
    return out.getvalue()


def _truncated(make: Callable[[], bytes], keep: float) -> Callable[[], bytes]:
    return lambda: (data := make())[: int(len(data) * keep)]


SAMPLE_MEDIA: tuple[SampleMedia, ...] = (
    SampleMedia("image", "photos/sunset.png", "image/png", lambda: image_bytes(seed=1), caption="A sunset over hills"),
    SampleMedia("image", "photos/sunset-copy.png", "image/png", lambda: image_bytes(seed=1),
                caption="The same sunset, uploaded again"),
    SampleMedia("image", "photos/cat.jpg", "image/jpeg", lambda: image_bytes((400, 300), fmt="JPEG", seed=2),
                caption="Ein Kater auf dem Sofa"),
    SampleMedia("image", "photos/rotated.jpg", "image/jpeg",
                lambda: image_bytes((300, 200), fmt="JPEG", seed=3, orientation=6), caption="Portrait shot"),
    SampleMedia("image", "scans/page-gray.png", "image/png", lambda: image_bytes((240, 320), mode="L", seed=4),
                caption="Scanned page"),
    SampleMedia("image", "stickers/logo-rgba.png", "image/png", lambda: image_bytes((128, 128), mode="RGBA", seed=5),
                caption="Logo with transparency"),
    SampleMedia("image", "photos/beach.webp", "image/webp", lambda: image_bytes((256, 160), fmt="WEBP", seed=6),
                caption="La plage en été"),
    SampleMedia("image", "photos/lying-extension.jpg", "image/jpeg", lambda: image_bytes((200, 100), seed=7),
                caption="A PNG named .jpg"),
    SampleMedia("image", "broken/empty.png", "image/png", lambda: b"", reason="empty"),
    SampleMedia("image", "broken/truncated.jpg", "image/jpeg",
                _truncated(lambda: image_bytes((400, 300), fmt="JPEG", seed=8), 0.4), reason="corrupt"),
    SampleMedia("image", "broken/notes.png", "image/png", lambda: b"these are meeting notes, not a picture\n",
                reason="unrecognised_format"),
    SampleMedia("image", "broken/song.png", "image/png", lambda: audio_bytes(0.5), reason="wrong_media_type"),
    SampleMedia("image", "broken/bomb.png", "image/png", bomb_png, reason="too_large"),
    SampleMedia("audio", "voice/hello-16k.wav", "audio/wav", lambda: audio_bytes(1.5, 16_000, silence_s=0.5),
                caption="Hello, can you hear me?"),
    SampleMedia("audio", "music/chord-44k.flac", "audio/flac",
                lambda: audio_bytes(2.0, 44_100, channels=2, fmt="FLAC", freq=261.6),
                caption="Ein Akkord auf dem Klavier"),
    SampleMedia("audio", "voice/note-22k.ogg", "audio/ogg",
                lambda: audio_bytes(1.0, 22_050, fmt="OGG", subtype="VORBIS", freq=660.0),
                caption="Une note de musique"),
    SampleMedia("audio", "voice/quiet-8k.wav", "audio/wav",
                lambda: audio_bytes(0.5, 8_000, subtype="PCM_U8", freq=300.0, silence_s=1.5),
                caption="Mostly silence"),
    SampleMedia("audio", "broken/empty.wav", "audio/wav", lambda: b"", reason="empty"),
    SampleMedia("audio", "broken/truncated.flac", "audio/flac",
                _truncated(lambda: audio_bytes(2.0, 44_100, fmt="FLAC"), 0.5), reason="corrupt"),
    SampleMedia("audio", "broken/readme.wav", "audio/wav", lambda: b"RIFF? no: plain text\n" * 20,
                reason="unrecognised_format"),
    SampleMedia("audio", "broken/photo.wav", "audio/wav", lambda: image_bytes((64, 64)), reason="wrong_media_type"),
    SampleMedia("video", "clips/bounce.mp4", "video/mp4", lambda: video_bytes(48, 24), caption="A bouncing square"),
    SampleMedia("video", "clips/fade.webm", "video/webm",
                lambda: video_bytes(30, 10, (80, 48), codec="libvpx-vp9", container="webm"), caption="Un fundido"),
    SampleMedia("video", "broken/empty.mp4", "video/mp4", lambda: b"", reason="empty"),
    SampleMedia("video", "broken/truncated.mp4", "video/mp4", _truncated(lambda: video_bytes(48, 24), 0.5),
                reason="corrupt"),
    SampleMedia("video", "broken/not-a-video.mp4", "video/mp4", lambda: b"<html>404 not found</html>\n",
                reason="unrecognised_format"),
)


def write_landing_file(path: Path, content: bytes) -> bool:
    """Put `content` at `path` whole, as the landing contract asks (written under a hidden name, then
    renamed into place); False where the same bytes are there already, left as they are. A landing
    file never changes once written (an ingest may have taken it as it was), so other bytes under its
    name fail, naming it."""
    if path.exists():
        if path.read_bytes() == content:
            return False
        raise FileExistsError(f"{path} is already in landing with other content, and a landing file never "
                              "changes once written (an ingest may have taken it): write into another root "
                              "(--root) or day (--date), or remove the file first")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(content)
    os.replace(tmp, path)
    return True


def write_sample_media(landing: Path) -> list[SampleMedia]:
    """Write every sample file under landing/<folder>/ (write_landing_file); returns the catalogue."""
    for item in SAMPLE_MEDIA:
        write_landing_file(landing / LANDING_FOLDERS[item.media_type] / item.path, item.make())
    return list(SAMPLE_MEDIA)
