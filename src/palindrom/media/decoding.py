"""Decode media bytes with real media libraries and report their facts, or refuse them with a reason.

Images: Pillow (EXIF orientation applied, size checked from the header before any pixel is
decoded). PCM/FLAC/Vorbis audio: soundfile (libsndfile); other audio and all video: PyAV (FFmpeg).
MIME types come from the bytes (`filetype`, and the chunked audio containers' signatures it lacks),
never from the file name.
"""

from __future__ import annotations

import io
import math
import mimetypes
import warnings
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import NamedTuple

import filetype
import numpy as np

MEDIA_TYPES = ("image", "audio", "video")

# Reason codes of silver/quarantine/media.
EMPTY = "empty"  # zero bytes
UNRECOGNISED = "unrecognised_format"  # no media format at all (text posing as media, a PDF, random bytes)
WRONG_MEDIA_TYPE = "wrong_media_type"  # a valid file of another media type than its folder's
CORRUPT = "corrupt"  # the format is recognised but the data does not decode (truncated, damaged)
UNSUPPORTED_CODEC = "unsupported_codec"  # the container opens but no decoder exists for its codec
TOO_LARGE = "too_large"  # dimensions, frame count or duration over the configured limits
MISSING_CONTENT = "missing_content"  # a bronze row whose bytes (inline or blob) cannot be found
DECODER_ERROR = "decoder_error"  # a decoder failed in a way none of the above covers (kept apart to be looked at)
REASONS = (EMPTY, UNRECOGNISED, WRONG_MEDIA_TYPE, CORRUPT, UNSUPPORTED_CODEC, TOO_LARGE, MISSING_CONTENT,
           DECODER_ERROR)

SILENCE_DBFS = -50.0  # a 50 ms window quieter than this counts as silence
FLOOR_DBFS = -120.0  # the level reported for digital silence instead of -inf
KEY_FRAME_MAX_SIDE = 512  # key frames are stored as JPEG no larger than this


@dataclass(frozen=True)
class Limits:
    max_pixels: int = 80_000_000
    max_video_frames: int = 200_000
    max_audio_seconds: float = 3600
    key_frames: int = 4


class MediaRejected(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass
class MediaFacts:
    media_type: str
    mime_type: str
    extension_mismatch: bool
    codec: str | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None
    mode: str | None = None
    phash: str | None = None
    duration_s: float | None = None
    sample_rate: int | None = None
    channels: int | None = None
    rms_dbfs: float | None = None
    silence_fraction: float | None = None
    fps: float | None = None
    frame_count: int | None = None
    key_frames: list[bytes] = field(default_factory=list)  # JPEG
    key_frame_times_s: list[float] = field(default_factory=list)


def detect_mime(data: bytes) -> str | None:
    # An ID3v2 tag names no format: taggers put one before FLAC too, which `filetype` would call MP3.
    start = _id3v2_end(data)
    kind = (start and filetype.guess(data[start:start + 8192])) or filetype.guess(data)
    return kind.mime if kind else _AUDIO_CONTAINER_MIME.get(_audio_container(data))


def _id3v2_end(data: bytes) -> int:
    """Where a leading ID3v2 tag ends (its size: four 7-bit bytes after a 10-byte header), or 0."""
    if data[:3] != b"ID3" or len(data) < 10:
        return 0
    return 10 + ((data[6] & 0x7F) << 21 | (data[7] & 0x7F) << 14 | (data[8] & 0x7F) << 7 | (data[9] & 0x7F))


def extension_mismatch(path: str, mime: str) -> bool:
    """True when the file name's extension is not one the detected MIME type uses."""
    suffix = PurePosixPath(path).suffix.lower()
    if not suffix:
        return True
    kind = filetype.get_type(mime=mime)
    accepted = set(mimetypes.guess_all_extensions(mime)) | ({f".{kind.extension}"} if kind else set())
    accepted |= _EXTRA_EXTENSIONS.get(mime, set())
    return suffix not in accepted


# Extensions the standard library's table does not tie to the MIME type reported.
_EXTRA_EXTENSIONS = {
    "image/jpeg": {".jpeg", ".jpg"}, "image/tiff": {".tif", ".tiff"}, "image/apng": {".apng", ".png"},
    "image/jpx": {".jp2", ".jpf", ".jpx"}, "image/x-tga": {".tga"}, "image/qoi": {".qoi"},
    "audio/ogg": {".oga", ".ogg", ".opus"}, "audio/x-flac": {".flac"}, "audio/x-wav": {".wav", ".rf64"},
    "audio/x-caf": {".caf"}, "audio/x-w64": {".w64"}, "audio/eac3": {".eac3", ".ec3"}, "audio/x-wavpack": {".wv"},
    "audio/x-tta": {".tta"}, "audio/mp4": {".m4a", ".mp4"}, "audio/webm": {".weba", ".webm"},
    "audio/x-matroska": {".mka", ".mkv"}, "video/mp4": {".3g2", ".3gp", ".m4v", ".mp4"},
    "video/x-matroska": {".mkv"}, "video/webm": {".webm"}, "video/quicktime": {".mov"},
    "video/mp2t": {".ts", ".m2ts", ".mts"}, "video/h264": {".h264", ".264"}, "video/h265": {".h265", ".hevc"},
}


def inspect_media(media_type: str, path: str, data: bytes | None, limits: Limits | None = None) -> MediaFacts:
    """Facts about one object of `media_type`, or MediaRejected with a reason code and detail."""
    if media_type not in MEDIA_TYPES:
        raise ValueError(f"unknown media type {media_type!r}; expected one of {MEDIA_TYPES}")
    if data is None:
        raise MediaRejected(MISSING_CONTENT, "no inline bytes and no readable blob")
    if not data:
        raise MediaRejected(EMPTY, "zero bytes")
    mime = detect_mime(data)
    if mime is not None and mime.split("/")[0] not in MEDIA_TYPES:  # a document, an archive, a font
        raise MediaRejected(UNRECOGNISED, f"the bytes are {mime}, not a media format")
    if mime is not None and mime.split("/")[0] != media_type \
            and not (media_type == "audio" and mime in _AUDIO_IN_VIDEO_CONTAINERS) \
            and not (media_type == "video" and mime in _VIDEO_IN_AUDIO_CONTAINERS):
        raise MediaRejected(WRONG_MEDIA_TYPE, f"the bytes are {mime}, not {media_type}")
    inspect = {"image": _inspect_image, "audio": _inspect_audio, "video": _inspect_video}[media_type]
    try:
        facts = inspect(data, mime, limits or Limits())
    except MediaRejected:
        raise
    except Exception as e:  # bad media never stops a run: an unforeseen decoder failure is a reason too
        raise MediaRejected(DECODER_ERROR, f"{mime or 'unknown format'}: {type(e).__name__}: {e}") from e
    facts.extension_mismatch = extension_mismatch(path, facts.mime_type)
    return facts


# Containers filetype calls video/* that often hold audio only (e.g. .m4a, a browser's .webm voice
# note), with their audio MIME types (QuickTime has none of its own).
_AUDIO_IN_VIDEO_CONTAINERS = {"video/mp4": "audio/mp4", "video/webm": "audio/webm",
                              "video/x-matroska": "audio/x-matroska", "video/quicktime": "video/quicktime"}
# ... and the one it calls audio/* that may hold video (Ogg: Theora or VP8, an .ogv), with its video MIME type.
_VIDEO_IN_AUDIO_CONTAINERS = {"audio/ogg": "video/ogg"}
# MIME types of the video containers `filetype` does not recognise, by FFmpeg's name for the format.
_FFMPEG_VIDEO_FORMATS = {"mpegts": "video/mp2t", "h264": "video/h264", "hevc": "video/h265"}


def _video_mime(mime: str | None, format_name: str) -> str:
    """The MIME type of a container that holds video: `filetype`'s (Ogg's as video), else one from
    FFmpeg's name for the format."""
    if mime is not None:
        return _VIDEO_IN_AUDIO_CONTAINERS.get(mime, mime)
    first = format_name.split(",")[0]
    return _FFMPEG_VIDEO_FORMATS.get(first, f"video/{first}")


def _unrecognised_or(reason: str, mime: str | None, detail: str) -> MediaRejected:
    """A decoder failed: corrupt if the bytes claim a format, unrecognised if they claim none."""
    if mime is None:
        return MediaRejected(UNRECOGNISED, f"not a recognised media format ({detail})")
    return MediaRejected(reason, f"{mime}: {detail}")


# --- images ------------------------------------------------------------------------------------

def open_image(data: bytes, max_pixels: int):
    """A fully decoded, EXIF-oriented Pillow image; the pixel count is checked from the header first."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    mime = detect_mime(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise MediaRejected(TOO_LARGE, f"{width}x{height} pixels; the limit is {max_pixels}")
            image.load()
            return ImageOps.exif_transpose(image), image.format
    except MediaRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise MediaRejected(TOO_LARGE, str(e)) from None
    except UnidentifiedImageError:  # its message names the BytesIO object (an address): left out
        if mime is not None and not _pillow_reads(mime):
            raise MediaRejected(UNSUPPORTED_CODEC, f"{mime}: Pillow has no decoder for this image format") from None
        raise _unrecognised_or(CORRUPT, mime, "Pillow cannot identify it") from None
    except (OSError, SyntaxError, ValueError) as e:  # truncated or damaged data
        raise _unrecognised_or(CORRUPT, mime, f"Pillow: {e}") from None


def _pillow_reads(mime: str) -> bool:
    """Whether one of Pillow's image plugins reads this MIME type (as `filetype` names it). Not so
    for HEIC phone photos (that takes pillow-heif, whose wheels bundle the GPL x265 encoder), JPEG XR,
    camera raw, XCF or DWG."""
    from PIL import Image

    Image.init()
    return {"image/apng": "image/png"}.get(mime, mime) in Image.MIME.values()


def eight_bit(image):
    """The image with 8-bit samples, as a viewer shows it: 16-bit samples (a scanner's or a depth
    camera's grayscale PNG or TIFF) scaled down and float samples in [0, 1] scaled up. Pillow's own
    conversions clip them instead, to nearly all white and all black, which the perceptual hash and
    the embedders would then describe."""
    from PIL import Image

    if image.mode.startswith("I;16"):
        return Image.fromarray((np.asarray(image).astype(np.uint16) >> 8).astype(np.uint8), "L")
    if image.mode == "F":
        samples = np.nan_to_num(np.asarray(image, dtype=np.float32))
        scale = 255 if samples.size and samples.min() >= 0 and samples.max() <= 1 else 1
        return Image.fromarray(np.clip(np.rint(samples * scale), 0, 255).astype(np.uint8), "L")
    return image


def _inspect_image(data: bytes, mime: str | None, limits: Limits) -> MediaFacts:
    import imagehash
    from PIL import Image

    image, fmt = open_image(data, limits.max_pixels)
    return MediaFacts(
        media_type="image", mime_type=mime or Image.MIME.get(fmt, f"image/{fmt.lower()}"), extension_mismatch=False,
        format=fmt, width=image.width, height=image.height, mode=image.mode,
        phash=str(imagehash.phash(eight_bit(image))),
    )


# --- audio -------------------------------------------------------------------------------------

# libsndfile's subtypes by FFmpeg's codec names; the multi-byte PCM ones take their byte order after.
_SOUNDFILE_CODECS = {"PCM_U8": "pcm_u8", "PCM_S8": "pcm_s8", "VORBIS": "vorbis", "OPUS": "opus",
                     "ULAW": "pcm_mulaw", "ALAW": "pcm_alaw", "MPEG_LAYER_III": "mp3", "MPEG_LAYER_II": "mp2",
                     "MPEG_LAYER_I": "mp1"}
_SOUNDFILE_PCM = {"PCM_16": "pcm_s16", "PCM_24": "pcm_s24", "PCM_32": "pcm_s32", "FLOAT": "pcm_f32",
                  "DOUBLE": "pcm_f64"}
_BIG_ENDIAN_FORMATS = ("AIFF", "AU", "CAF")  # libsndfile's formats whose samples are big-endian unless marked
# MIME types of the audio formats FFmpeg reads and neither `filetype` nor _audio_container recognises.
_FFMPEG_AUDIO_FORMATS = {"mp3": "audio/mpeg", "ac3": "audio/ac3", "eac3": "audio/eac3", "wv": "audio/x-wavpack",
                         "tta": "audio/x-tta"}


_SF_UNKNOWN_FRAMES = 2**63 - 1  # libsndfile's frame count where the header gives none (SF_COUNT_MAX)


class DecodedAudio(NamedTuple):
    samples: np.ndarray  # float32 [frames, channels]
    rate: int
    codec: str  # FFmpeg's name
    mime: str | None  # from the bytes, else from the decoder that read them (an AC-3 or MP2 stream)


def decode_audio(data: bytes, max_seconds: float) -> DecodedAudio:
    """soundfile for what libsndfile reads (WAV, FLAC, Ogg Vorbis/Opus, AIFF, an MP3 that states its
    length), PyAV (FFmpeg) for the rest (an MP3 that does not, AAC, M4A, WebM, AC-3, ...). A float
    file with NaN or infinite samples is refused: its level and embedding would be NaN."""
    audio = _decode_any_audio(data, max_seconds)
    if not np.isfinite(audio.samples).all():
        bad = int(np.count_nonzero(~np.isfinite(audio.samples)))
        raise MediaRejected(CORRUPT, f"{audio.mime}: {bad} of {audio.samples.size} samples are NaN or infinite")
    return audio


def _decode_any_audio(data: bytes, max_seconds: float) -> DecodedAudio:
    import soundfile as sf

    mime = detect_mime(data)
    claim = _audio_data_claim(data)
    if claim is not None and claim.declared is not None and claim.present < claim.declared:
        # libsndfile and FFmpeg alike would decode the part that is there, as if it were the whole.
        raise MediaRejected(CORRUPT, f"{mime}: truncated: the header declares {claim.declared} bytes of "
                                     f"samples, {claim.present} follow it")
    if cut := _container_cut(data):  # an M4A, a WebM or Matroska voice note
        raise MediaRejected(CORRUPT, f"{_AUDIO_IN_VIDEO_CONTAINERS.get(mime, mime)}: {cut}")
    try:
        info = sf.info(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError, TypeError):
        return _decode_audio_av(data, mime, max_seconds)
    if not _length_known_to_libsndfile(info, data, claim):
        return _decode_audio_av(data, mime, max_seconds)  # FFmpeg counts as it decodes
    if info.samplerate <= 0 or info.channels <= 0:
        raise MediaRejected(CORRUPT, f"{mime}: header gives {info.samplerate} Hz, {info.channels} channels")
    if info.frames / info.samplerate > max_seconds:
        raise MediaRejected(TOO_LARGE, f"{info.frames / info.samplerate:.0f} s; the limit is {max_seconds:.0f} s")
    try:
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise MediaRejected(CORRUPT, f"{mime}: soundfile: {e}") from None
    if len(samples) < info.frames:  # an MP3 whose Xing header counts more frames than it holds
        raise MediaRejected(CORRUPT, f"{mime}: truncated: the header promises {info.frames} frames, "
                                     f"{len(samples)} decode")
    return DecodedAudio(samples, rate, _soundfile_codec(info), mime)


def _soundfile_codec(info) -> str:
    """FFmpeg's name for the codec of a file libsndfile reads, byte order included (AIFF's pcm_s16be)."""
    if info.format == "FLAC":
        return "flac"
    if info.subtype in _SOUNDFILE_PCM:
        big = info.endian == "BIG" or (info.endian == "FILE" and info.format in _BIG_ENDIAN_FORMATS)
        return _SOUNDFILE_PCM[info.subtype] + ("be" if big else "le")
    return _SOUNDFILE_CODECS.get(info.subtype, info.subtype.lower())


def _length_known_to_libsndfile(info, data: bytes, claim: _DataClaim | None) -> bool:
    """Whether the header gives libsndfile the file's true length, on which the duration limit and the
    truncation check rest. Not so for an MP3 without a Xing/Info header (a VBR stream recorded live:
    libsndfile guesses from its first frames' bit rate, 3 times too long in a test), a chained Ogg, a FLAC streamed
    without its sample count (2**63 - 1 frames), or a container whose writer could not seek back to
    fill in its data's size (_audio_data_claim: unknown; libsndfile reads such a WAV as empty)."""
    if info.frames == _SF_UNKNOWN_FRAMES:
        return False
    if info.subtype.startswith("MPEG_LAYER"):
        return _mpeg_audio_states_its_length(data)
    if info.format == "OGG":
        return not _ogg_is_chained(data)
    return claim is None or claim.declared is not None


def _ogg_is_chained(data: bytes) -> bool:
    """Whether an Ogg file is several streams one after the other (an internet radio's recording, or
    files joined): a page that begins a stream after one that does not. libsndfile reads the first
    alone, and its length as the file's. The pages are walked by their headers' sizes."""
    offset, begun = 0, False
    while offset + 27 <= len(data) and data[offset:offset + 4] == b"OggS":
        segments = data[offset + 26]
        table = data[offset + 27:offset + 27 + segments]
        beginning = bool(data[offset + 5] & 0x02)  # header type: beginning of stream
        if beginning and begun:
            return True
        begun = begun or not beginning
        offset += 27 + segments + sum(table)
    return False


def _mpeg_audio_states_its_length(data: bytes) -> bool:
    """Whether an MP3 (or MP2) carries its frame count: a Xing/Info (LAME) or VBRI header in its first
    frame, looked for after any ID3v2 tag (whose text could hold those letters)."""
    start = _id3v2_end(data)
    first_frame = data[start:start + 2048]  # the largest MPEG audio frame is 1,441 bytes, after some padding
    return any(tag in first_frame for tag in (b"Xing", b"Info", b"VBRI"))


# The chunked audio containers, by their first bytes: each header declares the size of its sample data.
_W64_RIFF = b"riff\x2e\x91\xcf\x11\xa5\xd6\x28\xdb\x04\xc1\x00\x00"  # Sony Wave64's GUIDs
_W64_DATA = b"data\xf3\xac\xd3\x11\x8c\xd1\x00\xc0\x4f\x8e\xdb\x8a"
_AUDIO_CONTAINER_MIME = {"wav": "audio/x-wav", "w64": "audio/x-w64", "aiff": "audio/x-aiff", "au": "audio/basic",
                         "caf": "audio/x-caf"}


def _audio_container(data: bytes) -> str | None:
    """wav (RIFF, and RF64/BW64 for files over 4 GiB), w64, aiff (AIFF and AIFC), au, caf, or None."""
    if data[:4] in (b"RIFF", b"RF64", b"BW64") and data[8:12] == b"WAVE":
        return "wav"
    if data[:16] == _W64_RIFF:
        return "w64"
    if data[:4] == b"FORM" and data[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    return {b".snd": "au", b"caff": "caf"}.get(data[:4])


@dataclass(frozen=True)
class _DataClaim:
    declared: int | None  # bytes of samples the header declares; None where its writer could not say
    present: int  # bytes after the data chunk's header, to the end of the file


def _audio_data_claim(data: bytes) -> _DataClaim | None:
    """What a chunked audio container's header says of its sample data, from its chunks, or None for
    another format or no data chunk. libsndfile (and FFmpeg) read a truncated file as a shorter one,
    for every codec: the bytes declared against the bytes there tell. Unknown (None) where a writer
    that could not seek back left the size unset (a file written to a pipe): 0xFFFFFFFF in a WAV, RF64
    or AU, 0 with samples after it in a WAV or RF64, -1 in a CAF."""
    container = _audio_container(data)
    if container == "au":  # a fixed header: data offset and size
        offset, size = int.from_bytes(data[4:8], "big"), int.from_bytes(data[8:12], "big")
        return _DataClaim(None if size == 0xFFFFFFFF else size, len(data) - offset)
    if container == "wav":
        rf64_size = None  # RF64's data size, in its ds64 chunk (the data chunk's own says 0xFFFFFFFF)
        for chunk, body, size in _chunks(data, 12, 4, "little"):
            if chunk == b"ds64":
                rf64_size = int.from_bytes(data[body + 8:body + 16], "little")
            elif chunk == b"data":
                present = len(data) - body
                if size == 0xFFFFFFFF:
                    size = rf64_size
                return _DataClaim(None if size is None or (size == 0 and present > 0) else size, present)
    elif container == "w64":
        for chunk, body, size in _chunks(data, 40, 16, "little", size_bytes=8, header_counted=True, align=8):
            if chunk == _W64_DATA:
                return _DataClaim(size, len(data) - body)
    elif container == "aiff":
        for chunk, body, size in _chunks(data, 12, 4, "big"):
            if chunk == b"SSND":  # after its offset and block size fields, `offset` bytes before the samples
                skip = 8 + int.from_bytes(data[body:body + 4], "big")
                return _DataClaim(size - skip, len(data) - body - skip)
    elif container == "caf":
        for chunk, body, size in _chunks(data, 8, 4, "big", size_bytes=8, align=1):
            if chunk == b"data":  # after a 4-byte edit count
                return _DataClaim(None if size == -1 else size - 4, len(data) - body - 4)
    return None


def _chunks(data: bytes, offset: int, id_bytes: int, byteorder: str, size_bytes: int = 4,
            header_counted: bool = False, align: int = 2):
    """(id, offset of the body, size of the body) of each chunk from `offset` on: RIFF and AIFF (4-byte
    ids and sizes, even-padded), CAF (signed 8-byte sizes), Wave64 (16-byte ids, sizes counting the
    24-byte header, padded to 8). Stops at a size no chunk can have (only a CAF's last chunk, -1)."""
    while offset + id_bytes + size_bytes <= len(data):
        body = offset + id_bytes + size_bytes
        size = int.from_bytes(data[offset + id_bytes:body], byteorder, signed=size_bytes == 8)
        size -= (id_bytes + size_bytes) if header_counted else 0
        yield data[offset:offset + id_bytes], body, size
        if size < 0:
            return
        offset = body + size + (-size % align)


def _av_error(e: Exception, mime: str | None) -> MediaRejected:
    import av

    # FFmpeg's message alone: str(e) adds the error number and the name of the input ('<none>' here).
    message = getattr(e, "strerror", None) or str(e)
    lowered = message.lower()
    # PatchWelcome: FFmpeg knows the format but not this use of it (a chained Ogg whose rate changes).
    if isinstance(e, av.error.DecoderNotFoundError | av.error.PatchWelcomeError) \
            or ("decoder" in lowered and "not found" in lowered):
        return MediaRejected(UNSUPPORTED_CODEC, f"{mime}: {message}")
    return _unrecognised_or(CORRUPT, mime, f"FFmpeg: {message}")


def _missing_stream(container, wanted: str, mime: str | None) -> MediaRejected:
    """A container that FFmpeg opens without a stream of the `wanted` media type: one of the other
    type (an audio-only MP4 among videos) is of the wrong media type; one with no stream at all was
    cut short or damaged (an MP4 whose index, written last, is missing)."""
    other = "video" if wanted == "audio" else "audio"
    if getattr(container.streams, other):
        first_name = container.format.name.split(",")[0]
        shown = _video_mime(mime, container.format.name) if other == "video" else mime or f"audio/{first_name}"
        return MediaRejected(WRONG_MEDIA_TYPE, f"{shown}: {other} only, no {wanted} stream")
    if not container.streams:
        return _unrecognised_or(CORRUPT, mime, "no stream at all (truncated or damaged)")
    return _unrecognised_or(CORRUPT, mime, f"no {wanted} stream")


def _decode_audio_av(data: bytes, mime: str | None, max_seconds: float) -> DecodedAudio:
    import av

    try:
        with av.open(io.BytesIO(data)) as container:
            if not container.streams.audio:
                raise _missing_stream(container, "audio", mime)
            stream = container.streams.best("audio") or container.streams.audio[0]  # FFmpeg's choice
            if stream.codec_context is None or stream.codec_context.codec is None:
                raise MediaRejected(UNSUPPORTED_CODEC, f"{mime}: no decoder for the audio stream")
            rate, codec = stream.codec_context.sample_rate, stream.codec_context.codec.canonical_name
            format_name = container.format.name
            resampler = av.AudioResampler(format="fltp")
            chunks, frames = [], 0
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    array = out.to_ndarray()
                    chunks.append(array)
                    frames += array.shape[1]
                if rate and frames / rate > max_seconds:
                    raise MediaRejected(TOO_LARGE, f"longer than the limit of {max_seconds:.0f} s")
    except MediaRejected:
        raise
    except (av.error.FFmpegError, ValueError) as e:
        raise _av_error(e, mime) from None
    if not chunks or not rate:
        raise _unrecognised_or(CORRUPT, mime, "no audio frames decode")
    if mime is None:  # decoded whole, so FFmpeg's reading of the format holds
        first = format_name.split(",")[0]
        mime = _FFMPEG_AUDIO_FORMATS.get(first, f"audio/{first}")
    return DecodedAudio(np.concatenate(chunks, axis=1).T.astype(np.float32), rate, codec, mime)


def level_dbfs(samples: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0
    return max(FLOOR_DBFS, 20 * math.log10(rms)) if rms > 0 else FLOOR_DBFS


def silence_fraction(mono: np.ndarray, rate: int) -> float:
    """Share of 50 ms windows whose level is under SILENCE_DBFS."""
    window = max(1, rate // 20)
    n = len(mono) // window
    if n == 0:
        return 1.0 if level_dbfs(mono) < SILENCE_DBFS else 0.0
    frames = mono[: n * window].reshape(n, window).astype(np.float64)
    rms = np.sqrt(np.mean(np.square(frames), axis=1))
    threshold = 10 ** (SILENCE_DBFS / 20)
    return float(np.mean(rms < threshold))


def _inspect_audio(data: bytes, mime: str | None, limits: Limits) -> MediaFacts:
    samples, rate, codec, mime = decode_audio(data, limits.max_audio_seconds)
    mono = samples.mean(axis=1)
    return MediaFacts(
        media_type="audio", mime_type=_AUDIO_IN_VIDEO_CONTAINERS.get(mime, mime) or "application/octet-stream",
        extension_mismatch=False, codec=codec,
        duration_s=len(samples) / rate, sample_rate=int(rate), channels=int(samples.shape[1]),
        rms_dbfs=round(level_dbfs(samples), 3), silence_fraction=round(silence_fraction(mono, rate), 4),
    )


# --- containers that declare their size ---------------------------------------------------------

def _container_cut(data: bytes) -> str | None:
    """Where a file ends before its own top-level structure says it does, or None: the boxes of an
    ISO BMFF file (MP4, MOV, 3GP, M4A), the segment of a Matroska or WebM file, the RIFF chunks of an
    AVI. FFmpeg reads a cut Matroska or AVI as a shorter film, and an MP4 cut in its index as damaged
    or as holding no codec it knows. A size a live writer leaves unknown is no claim."""
    if data[4:8] in _ISO_BMFF_FIRST_BOXES:
        return _cut_in(_iso_boxes(data), len(data))
    if data[:4] == b"RIFF" and data[8:12] == b"AVI ":
        return _cut_in(_chunks(data, 12, 4, "little"), len(data))
    if data[:4] == _EBML_MAGIC:
        return _cut_in(_ebml_segments(data), len(data))
    return None


_ISO_BMFF_FIRST_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")  # older QuickTime files: no ftyp
_EBML_MAGIC, _MATROSKA_SEGMENT = b"\x1a\x45\xdf\xa3", 0x18538067


def _cut_in(parts, length: int) -> str | None:
    """The first of `parts` ((name, start, size): the part's bytes, or its body's) that runs past
    `length`, as a detail. A name that is not printable ASCII is trailing junk, not a part (a
    camera's padding), so it ends the walk; so does a size that is unknown."""
    for name, offset, size in parts:
        if size is None or not all(32 <= c < 127 for c in name):
            return None
        if offset + size > length:
            return f"truncated: its '{name.decode()}' ends at byte {offset + size}, the file at byte {length}"
    return None


def _iso_boxes(data: bytes):
    """(type, offset, size) of each top-level box; a size of 0 runs to the end of the file."""
    offset = 0
    while offset + 8 <= len(data):
        size, name = int.from_bytes(data[offset:offset + 4], "big"), data[offset + 4:offset + 8]
        if size == 1 and offset + 16 <= len(data):
            size = int.from_bytes(data[offset + 8:offset + 16], "big")  # a 64-bit size
        if size == 0:
            return
        if size < 8:  # malformed: FFmpeg will say so
            yield name, offset, None
            return
        yield name, offset, size
        offset += size


def _ebml_segments(data: bytes):
    """(b"Segment", offset of its body, size or None if unknown) of each top-level Segment after the
    EBML header; the walk stops at anything else it cannot size."""
    at = 0
    while at < len(data):
        element, at = _ebml_vint(data, at, keep_marker=True)
        size, at = _ebml_vint(data, at)
        if element is None:
            return
        if element == _MATROSKA_SEGMENT:
            yield b"Segment", at, size
        if size is None:
            return
        at += size


def _ebml_vint(data: bytes, at: int, keep_marker: bool = False) -> tuple[int | None, int]:
    """An EBML variable-length integer at `at`: (value, offset after it). The value is None where
    it is unknown (all its bits set: a live writer's size) or the bytes end."""
    if at >= len(data) or data[at] == 0:
        return None, len(data)
    length = 9 - data[at].bit_length()
    if at + length > len(data):
        return None, len(data)
    value = int.from_bytes(data[at:at + length], "big")
    if keep_marker:  # an element ID keeps its length marker
        return value, at + length
    value &= (1 << (7 * length)) - 1
    return (None if value == (1 << (7 * length)) - 1 else value), at + length


# --- video -------------------------------------------------------------------------------------

def _inspect_video(data: bytes, mime: str | None, limits: Limits) -> MediaFacts:
    """Counts the frames by decoding them all, then decodes again to keep `key_frames` evenly spaced ones.
    As for images after their EXIF orientation, the size is the one displayed: a phone's portrait video
    is stored landscape with a display rotation, which the size and the key frames follow."""
    import av

    if cut := _container_cut(data):
        raise MediaRejected(CORRUPT, f"{mime}: {cut}")
    try:
        with av.open(io.BytesIO(data)) as container:
            if not container.streams.video:
                raise _missing_stream(container, "video", mime)
            # FFmpeg's choice: not a cover picture or thumbnail stream listed before the film.
            stream = container.streams.best("video") or container.streams.video[0]
            ctx = stream.codec_context
            if ctx is None or ctx.codec is None:
                raise MediaRejected(UNSUPPORTED_CODEC, f"{mime}: no decoder for the video stream")
            width, height = ctx.width, ctx.height
            if width * height > limits.max_pixels:
                raise MediaRejected(TOO_LARGE, f"{width}x{height} frames; the limit is {limits.max_pixels} pixels")
            # The codec's name, not its decoder's (mp3, not mp3float; av1, not libdav1d).
            codec, container_format = ctx.codec.canonical_name, container.format.name
            count, rotation, timed = 0, 0, _FrameTimes()
            for frame in container.decode(stream):
                count += 1
                if count == 1 and math.isfinite(frame.rotation):  # NaN: a display matrix with no rotation
                    rotation = round(frame.rotation) % 360  # counter-clockwise, from the display matrix
                if count > limits.max_video_frames:
                    raise MediaRejected(TOO_LARGE, f"more than {limits.max_video_frames} frames")
                timed.add(frame)
            rate = stream.average_rate or stream.guessed_rate
            index = stream.index
        if count == 0:
            raise _unrecognised_or(CORRUPT, mime, "no video frame decodes")
        # The stated rate where the frames' own times agree with it (to 1%: Matroska keeps them to the
        # millisecond); else the times: a variable-rate recording (a browser's, a phone's) in Matroska
        # or WebM states a nominal rate that is not its average.
        span, stated = timed.span(count), (float(rate) if rate else None)
        if stated and (span is None or abs(count / stated - span) <= 0.01 * span):
            fps, duration = stated, count / stated
        else:
            fps, duration = (count / span, span) if span else (None, None)
        wanted = sorted({min(count - 1, int((i + 0.5) * count / limits.key_frames)) for i in range(limits.key_frames)})
        frames, times = _key_frames(data, index, set(wanted), rotation)
        if rotation in (90, 270):
            width, height = height, width
    except MediaRejected:
        raise
    except (av.error.FFmpegError, ValueError) as e:
        raise _av_error(e, mime) from None
    return MediaFacts(
        media_type="video", mime_type=_video_mime(mime, container_format), extension_mismatch=False,
        codec=codec, duration_s=duration, fps=fps, width=width, height=height, frame_count=count,
        key_frames=frames, key_frame_times_s=times,
    )


class _FrameTimes:
    """The span of a video's frames, from their presentation times: the first frame's start to the
    last one's end (its own duration, else the mean interval)."""

    def __init__(self):
        self.first = self.last = self.last_duration = None

    def add(self, frame) -> None:
        if frame.pts is None or frame.time_base is None:
            return
        start = frame.pts * frame.time_base
        self.first = start if self.first is None else min(self.first, start)
        if self.last is None or start >= self.last:
            self.last = start
            self.last_duration = frame.duration * frame.time_base if frame.duration else None

    def span(self, count: int) -> float | None:
        if self.first is None:
            return None
        between = self.last - self.first
        last = self.last_duration if self.last_duration is not None else (between / (count - 1) if count > 1 else 0)
        return float(between + last) or None


def _key_frames(data: bytes, stream_index: int, indices: set[int], rotation: int) -> tuple[list[bytes], list[float]]:
    import av

    frames, times = [], []
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams[stream_index]
        for i, frame in enumerate(container.decode(stream)):
            if i in indices:
                image = frame.to_image().rotate(rotation, expand=True) if rotation else frame.to_image()
                image.thumbnail((KEY_FRAME_MAX_SIDE, KEY_FRAME_MAX_SIDE))
                out = io.BytesIO()
                image.save(out, format="JPEG", quality=90)
                frames.append(out.getvalue())
                times.append(round(float(frame.time), 6) if frame.time is not None else float("nan"))
            if i >= max(indices):
                break
    return frames, times

