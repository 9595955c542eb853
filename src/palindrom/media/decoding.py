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

from palindrom.media import containers

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
UNKNOWN_FORMAT = "unknown format"  # what a detail names where neither the bytes nor a decoder name the format

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
    start = containers.id3v2_end(data)
    kind = (start and filetype.guess(data[start:start + 8192])) or filetype.guess(data)
    if kind:
        return kind.mime
    if containers.transport_stream_packet(data):
        return "video/mp2t"
    if containers.is_svg(data):
        return "image/svg+xml"
    return (containers.AUDIO_CONTAINER_MIME.get(containers.audio_container(data))
            or containers.FFMPEG_AUDIO_MAGIC.get(data[:4]) or containers.framed_audio_mime(data))


def extension_mismatch(path: str, mime: str, image_format: str | None = None) -> bool:
    """True when the file name's extension is not one the detected MIME type uses, nor (for an image)
    one Pillow registers for the format it read (`.pcx`, `.ppm`, `.j2k`, `.sgi`, ...)."""
    suffix = PurePosixPath(path).suffix.lower()
    if not suffix:
        return True
    kind = filetype.get_type(mime=mime)
    accepted = set(mimetypes.guess_all_extensions(mime)) | ({f".{kind.extension}"} if kind else set())
    accepted |= _EXTRA_EXTENSIONS.get(mime, set())
    if image_format is not None:
        from PIL import Image

        accepted |= {ext for ext, fmt in Image.registered_extensions().items() if fmt == image_format}
    return suffix not in accepted


# Extensions the standard library's table does not tie to the MIME type reported (images: Pillow's own).
_EXTRA_EXTENSIONS = {
    "audio/ogg": {".oga", ".ogg", ".opus"}, "audio/x-flac": {".flac"}, "audio/x-wav": {".wav", ".rf64"},
    "audio/x-caf": {".caf"}, "audio/x-w64": {".w64"}, "audio/eac3": {".eac3", ".ec3"}, "audio/x-wavpack": {".wv"},
    "audio/x-tta": {".tta"}, "audio/x-nist": {".sph", ".nist"}, "audio/x-avr": {".avr"},
    "audio/x-svx": {".8svx", ".16sv", ".svx", ".iff"}, "audio/x-voc": {".voc"}, "audio/x-ircam": {".sf", ".ircam"},
    "audio/x-htk": {".htk"}, "audio/x-paf": {".paf", ".fap"}, "audio/x-mpc2k": {".snd"}, "audio/x-pvf": {".pvf"},
    "audio/x-sds": {".sds"}, "audio/x-xi": {".xi"}, "audio/x-wve": {".wve"}, "audio/x-mat4": {".mat"},
    "audio/x-mat5": {".mat"}, "audio/mp4": {".m4a", ".mp4"}, "audio/webm": {".weba", ".webm"},
    "audio/x-matroska": {".mka", ".mkv"}, "video/mp4": {".3g2", ".3gp", ".m4v", ".mp4"},
    "video/x-matroska": {".mkv"}, "video/webm": {".webm"}, "video/quicktime": {".mov"},
    "video/mp2t": {".ts", ".m2ts", ".mts"}, "video/mpeg": {".mpg", ".mpeg", ".vob", ".m1v", ".m2v", ".m4v"},
    "video/h264": {".h264", ".264"}, "video/h265": {".h265", ".hevc"}, "video/h263": {".h263", ".263"},
    "video/h261": {".h261"},
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
        raise MediaRejected(DECODER_ERROR, f"{mime or UNKNOWN_FORMAT}: {type(e).__name__}: {e}") from e
    image_format = facts.format if media_type == "image" else None
    facts.extension_mismatch = extension_mismatch(path, facts.mime_type, image_format)
    return facts


# Containers the bytes show to be video/* that often hold audio only (e.g. .m4a, a browser's .webm voice
# note), with their audio MIME types (QuickTime and MPEG-TS have none of their own).
_AUDIO_IN_VIDEO_CONTAINERS = {"video/mp4": "audio/mp4", "video/webm": "audio/webm",
                              "video/x-matroska": "audio/x-matroska", "video/quicktime": "video/quicktime",
                              "video/mp2t": "video/mp2t"}
# ... and the one it calls audio/* that may hold video (Ogg: Theora or VP8, an .ogv), with its video MIME type.
_VIDEO_IN_AUDIO_CONTAINERS = {"audio/ogg": "video/ogg"}
# MIME types by FFmpeg's name for the format, for the video containers `filetype` does not recognise
# and for those it no longer recognises in a file whose signature is damaged (a changed byte in
# Matroska's DocType or MP4's `ftyp`) but which FFmpeg still reads: not FFmpeg's own names
# ("video/matroska", "video/mov").
_FFMPEG_VIDEO_FORMATS = {"mpegts": "video/mp2t", "h264": "video/h264", "hevc": "video/h265",
                         "matroska": "video/x-matroska", "mov": "video/mp4", "avi": "video/x-msvideo",
                         "flv": "video/x-flv", "asf": "video/x-ms-asf", "mpeg": "video/mpeg", "ogg": "video/ogg",
                         "mpegvideo": "video/mpeg", "m4v": "video/mpeg"}
# ... and of the audio formats FFmpeg reads, likewise (a transport stream of audio is video/mp2t, as its
# packets name it).
_FFMPEG_AUDIO_FORMATS = {"mp3": "audio/mpeg", "ac3": "audio/ac3", "eac3": "audio/eac3", "wv": "audio/x-wavpack",
                         "tta": "audio/x-tta", "mpegts": "video/mp2t", "matroska": "audio/x-matroska",
                         "mov": "audio/mp4", "ogg": "audio/ogg", "flac": "audio/x-flac", "aac": "audio/aac",
                         # containers.audio_container's names for these are FFmpeg's too
                         **{name: containers.AUDIO_CONTAINER_MIME[name]
                            for name in ("wav", "aiff", "caf", "w64", "au")}}


def _video_mime(mime: str | None, format_name: str) -> str:
    """The MIME type of a container that holds video: `filetype`'s (Ogg's as video), else one from
    FFmpeg's name for the format."""
    if mime is not None:
        return _VIDEO_IN_AUDIO_CONTAINERS.get(mime, mime)
    first = format_name.split(",")[0]
    return _FFMPEG_VIDEO_FORMATS.get(first, f"video/{first}")


def _audio_mime(mime: str | None, format_name: str) -> str:
    """The MIME type of a container that holds audio: the one from the bytes, else one from FFmpeg's
    name for the format (an AC-3 or MP2 stream, which `filetype` does not recognise)."""
    if mime is not None:
        return mime
    first = format_name.split(",")[0]
    return _FFMPEG_AUDIO_FORMATS.get(first, f"audio/{first}")


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
# libsndfile's formats whose samples are big-endian unless marked (its NIST, IRCAM, PAF and MAT files say).
_BIG_ENDIAN_FORMATS = ("AIFF", "AU", "CAF", "AVR", "SVX", "HTK", "PVF")


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
    claim = containers.audio_data_claim(data)
    if claim is not None and claim.declared is not None and claim.present < claim.declared:
        # libsndfile and FFmpeg alike would decode the part that is there, as if it were the whole.
        raise MediaRejected(CORRUPT, f"{mime}: truncated: the header declares {claim.declared} bytes of "
                                     f"samples, {claim.present} follow it")
    if fault := containers.container_fault(data):  # an MP3, an Ogg; an M4A, a WebM or Matroska voice note
        raise MediaRejected(CORRUPT, f"{_AUDIO_IN_VIDEO_CONTAINERS.get(mime, mime) or UNKNOWN_FORMAT}: {fault}")
    try:
        info = sf.info(_SoundfileBytes(data))
    except (sf.LibsndfileError, RuntimeError, TypeError):
        return _decode_audio_av(data, mime, max_seconds)
    if not _length_known_to_libsndfile(info, data, claim):
        return _decode_audio_av(data, mime, max_seconds)  # FFmpeg counts as it decodes
    # A format read by libsndfile alone (HTK, IRCAM, MPC2K, ...): GStreamer's naming, "audio/x-" and its name.
    mime = mime or f"audio/x-{info.format.lower()}"
    if info.samplerate <= 0 or info.channels <= 0:
        raise MediaRejected(CORRUPT, f"{mime}: header gives {info.samplerate} Hz, {info.channels} channels")
    if info.frames / info.samplerate > max_seconds:
        raise MediaRejected(TOO_LARGE, f"{info.frames / info.samplerate:.0f} s; the limit is {max_seconds:.0f} s")
    try:
        samples, rate = sf.read(_SoundfileBytes(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise MediaRejected(CORRUPT, f"{mime}: soundfile: {e}") from None
    if len(samples) < info.frames:  # an MP3 whose Xing header counts more frames than it holds
        raise MediaRejected(CORRUPT, f"{mime}: truncated: the header promises {info.frames} frames, "
                                     f"{len(samples)} decode")
    return DecodedAudio(samples, rate, _soundfile_codec(info), mime)


class _SoundfileBytes(io.BytesIO):
    """The bytes as libsndfile's virtual file. A damaged header can make libsndfile seek before the
    start, which BytesIO refuses with an exception that soundfile's callback can only print to
    stderr (a worker's log, once per such file); here the position stays put instead, and libsndfile
    sees its seek fail."""

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        start = {io.SEEK_SET: 0, io.SEEK_CUR: self.tell(), io.SEEK_END: len(self.getbuffer())}[whence]
        return super().seek(offset, whence) if start + offset >= 0 else self.tell()


def _soundfile_codec(info) -> str:
    """FFmpeg's name for the codec of a file libsndfile reads, byte order included (AIFF's pcm_s16be)."""
    if info.format == "FLAC":
        return "flac"
    if info.subtype in _SOUNDFILE_PCM:
        big = info.endian == "BIG" or (info.endian == "FILE" and info.format in _BIG_ENDIAN_FORMATS)
        return _SOUNDFILE_PCM[info.subtype] + ("be" if big else "le")
    return _SOUNDFILE_CODECS.get(info.subtype, info.subtype.lower())


def _length_known_to_libsndfile(info, data: bytes, claim: containers.DataClaim | None) -> bool:
    """Whether the header gives libsndfile the file's true length, on which the duration limit and the
    truncation check rest. Not so for an MP3 without a Xing/Info header (a VBR stream recorded live:
    libsndfile guesses from its first frames' bit rate, 3 times too long in a test), a chained Ogg, a FLAC streamed
    without its sample count (2**63 - 1 frames), or a container whose writer could not seek back to
    fill in its data's size (containers.audio_data_claim: unknown; libsndfile reads such a WAV as empty)."""
    if info.frames == _SF_UNKNOWN_FRAMES:
        return False
    if info.subtype.startswith("MPEG_LAYER"):
        return containers.mpeg_audio_states_its_length(data)
    if info.format == "OGG":
        return not containers.ogg_is_chained(data)
    return claim is None or claim.declared is not None


def _open_av(data: bytes):
    """FFmpeg's reading of the bytes. Its tags (a title, an encoder) are decoded with replacement
    characters where they are not UTF-8, as an old camera's Latin-1 title is not: PyAV refuses the
    whole file otherwise, and no fact taken here comes from a tag."""
    import av

    container = av.open(io.BytesIO(data), metadata_errors="replace")
    if containers.raw_video_misread(container.format.name, data):
        container.close()
        raise _unrecognised_or(CORRUPT, detect_mime(data), f"FFmpeg would read it as a raw {container.format.name} "
                                                           "stream, which it does not begin as")
    return container


def _av_error(e: Exception, mime: str | None) -> MediaRejected:
    import av

    # FFmpeg's message alone: str(e) adds the error number and the name of the input ('<none>' here).
    message = getattr(e, "strerror", None) or str(e)
    lowered = message.lower()
    # PatchWelcome: FFmpeg knows the format but not this use of it (a chained Ogg whose rate changes).
    if isinstance(e, av.error.DecoderNotFoundError | av.error.PatchWelcomeError) \
            or ("decoder" in lowered and "not found" in lowered):
        return MediaRejected(UNSUPPORTED_CODEC, f"{mime or UNKNOWN_FORMAT}: {message}")
    return _unrecognised_or(CORRUPT, mime, f"FFmpeg: {message}")


def _missing_stream(container, wanted: str, mime: str | None) -> MediaRejected:
    """A container that FFmpeg opens without a stream of the `wanted` media type: one of the other
    type (an audio-only MP4 among videos) is of the wrong media type; one with no stream at all was
    cut short or damaged (an MP4 whose index, written last, is missing)."""
    other = "video" if wanted == "audio" else "audio"
    if getattr(container.streams, other):
        shown = (_video_mime if other == "video" else _audio_mime)(mime, container.format.name)
        return MediaRejected(WRONG_MEDIA_TYPE, f"{shown}: {other} only, no {wanted} stream")
    if not container.streams:
        return _unrecognised_or(CORRUPT, mime, "no stream at all (truncated or damaged)")
    return _unrecognised_or(CORRUPT, mime, f"no {wanted} stream")


def _decode_audio_av(data: bytes, mime: str | None, max_seconds: float) -> DecodedAudio:
    import av

    try:
        with _open_av(data) as container:
            if not container.streams.audio:
                raise _missing_stream(container, "audio", mime)
            stream = container.streams.best("audio") or container.streams.audio[0]  # FFmpeg's choice
            if stream.codec_context is None or stream.codec_context.codec is None:
                raise MediaRejected(UNSUPPORTED_CODEC,
                                    f"{_audio_mime(mime, container.format.name)}: no decoder for the audio stream")
            rate, codec = stream.codec_context.sample_rate, stream.codec_context.codec.canonical_name
            format_name = container.format.name
            stated = _samples_an_edit_list_plays(container, stream, rate)
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
    mime = _audio_mime(mime, format_name)  # decoded whole, so FFmpeg's reading of the format holds
    return DecodedAudio(np.concatenate(chunks, axis=1).T[:stated].astype(np.float32), rate, codec, mime)


def _samples_an_edit_list_plays(container, stream, rate: int) -> int | None:
    """How many samples an MP4/M4A/MOV says its audio plays (its edit list's length), or None.
    FFmpeg skips the encoder's priming at the start that the edit list leaves out, but decodes the
    padding of the last frame (up to 1,023 samples of AAC), so a second of AAC would last 1.02 s.
    Other containers state no exact length (an ADTS stream's is an estimate from its bit rate)."""
    if "mp4" not in container.format.name.split(",") or not stream.duration:
        return None
    return round(stream.duration * stream.time_base * rate)


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


# --- video -------------------------------------------------------------------------------------

def _inspect_video(data: bytes, mime: str | None, limits: Limits) -> MediaFacts:
    """Counts the frames by decoding them all, then decodes again to keep `key_frames` evenly spaced ones.
    As for images after their EXIF orientation, the size is the one displayed: a phone's portrait video
    is stored landscape with a display rotation, which the size and the key frames follow."""
    import av

    if fault := containers.container_fault(data):
        raise MediaRejected(CORRUPT, f"{mime or UNKNOWN_FORMAT}: {fault}")
    try:
        with _open_av(data) as container:
            if not container.streams.video:
                raise _missing_stream(container, "video", mime)
            # FFmpeg's choice: not a cover picture or thumbnail stream listed before the film.
            stream = container.streams.best("video") or container.streams.video[0]
            ctx = stream.codec_context
            if ctx is None or ctx.codec is None:
                raise MediaRejected(UNSUPPORTED_CODEC,
                                    f"{_video_mime(mime, container.format.name)}: no decoder for the video stream")
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
            sound = container.streams.best("audio")  # FFmpeg's choice, as for the picture; None: silent
            sound_ctx = sound.codec_context if sound is not None else None
            sample_rate, channels = (sound_ctx.sample_rate or None, sound_ctx.channels or None) if sound_ctx \
                else (None, None)
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
        key_frames=frames, key_frame_times_s=times, sample_rate=sample_rate, channels=channels,
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

    frames, times = [], []
    with _open_av(data) as container:
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

