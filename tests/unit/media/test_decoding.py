"""The Spark-free decoding core on files the tests make with real media libraries."""

import io
import time
import zipfile
from fractions import Fraction

import av
import numpy as np
import pytest
import soundfile as sf

from palindrom.media import containers, decoding
from palindrom.media.decoding import Limits, MediaRejected, inspect_media
from pipelines.sample_media import SAMPLE_MEDIA, audio_bytes, bomb_png, image_bytes, tone, video_bytes


def rejected(media_type, path, data, limits=None) -> MediaRejected:
    with pytest.raises(MediaRejected) as e:
        inspect_media(media_type, path, data, limits)
    return e.value


@pytest.mark.parametrize("item", SAMPLE_MEDIA, ids=lambda m: f"{m.media_type}:{m.path}")
def test_every_sample_file_gets_its_expected_fate(item):
    data = item.make()
    if item.reason is None:
        facts = inspect_media(item.media_type, item.path, data)
        assert facts.media_type == item.media_type
    else:
        assert rejected(item.media_type, item.path, data).reason == item.reason


# --- images ----------------------------------------------------------------------------------

def test_exif_orientation_is_applied_to_the_dimensions():
    # Stored 300x200 with orientation 6 (rotate 90° clockwise to display): displayed 200x300.
    facts = inspect_media("image", "a.jpg", image_bytes((300, 200), fmt="JPEG", orientation=6))
    assert (facts.width, facts.height) == (200, 300)
    plain = inspect_media("image", "b.jpg", image_bytes((300, 200), fmt="JPEG"))
    assert (plain.width, plain.height) == (300, 200)


@pytest.mark.parametrize(("mode", "fmt", "mime"), [
    ("RGB", "PNG", "image/png"), ("L", "PNG", "image/png"), ("RGBA", "PNG", "image/png"),
    ("RGB", "JPEG", "image/jpeg"), ("RGB", "WEBP", "image/webp"), ("P", "GIF", "image/gif"),
    ("RGB", "BMP", "image/bmp"), ("RGB", "TIFF", "image/tiff"),
])
def test_image_facts(mode, fmt, mime):
    facts = inspect_media("image", f"x.{fmt.lower()}", image_bytes((64, 48), mode=mode, fmt=fmt))
    assert (facts.width, facts.height, facts.format, facts.mime_type) == (64, 48, fmt, mime)
    assert facts.mode == mode
    assert len(facts.phash) == 16
    assert int(facts.phash, 16) >= 0


def test_mime_comes_from_the_bytes_and_a_lying_extension_is_flagged():
    facts = inspect_media("image", "holiday.jpg", image_bytes(fmt="PNG"))
    assert facts.mime_type == "image/png"
    assert facts.format == "PNG"
    assert facts.extension_mismatch
    assert not inspect_media("image", "holiday.JPEG", image_bytes(fmt="JPEG")).extension_mismatch
    assert inspect_media("image", "no-extension", image_bytes()).extension_mismatch


@pytest.mark.parametrize(("name", "fmt", "options"), [
    ("anim.png", "PNG", {"save_all": True}),  # an animated PNG: image/apng, named .png
    ("a.jp2", "JPEG2000", {}), ("a.j2k", "JPEG2000", {}), ("a.tga", "TGA", {}), ("a.qoi", "QOI", {}),
    ("a.pcx", "PCX", {}), ("a.ppm", "PPM", {}), ("a.pgm", "PPM", {}), ("a.sgi", "SGI", {}),
    ("a.rgb", "SGI", {}), ("a.dds", "DDS", {}), ("a.dib", "DIB", {}),
])
def test_image_formats_under_their_usual_extensions_are_not_flagged(name, fmt, options):
    """Any extension Pillow registers for the format it read is the format's own."""
    from PIL import Image

    image = Image.open(io.BytesIO(image_bytes((24, 16))))
    out = io.BytesIO()
    image.save(out, fmt, append_images=[image.rotate(90)], **options)
    facts = inspect_media("image", name, out.getvalue())
    assert (facts.format, facts.width, facts.extension_mismatch) == (fmt, 24, False)


def high_depth_twins() -> dict[str, bytes]:
    """One grayscale picture as 8-bit PNG, 16-bit PNG and TIFF (a scanner's), and float TIFF in [0, 1]."""
    from PIL import Image

    gray = np.asarray(Image.open(io.BytesIO(image_bytes((96, 64), seed=3))).convert("L"))
    twins = {}
    for name, array, fmt in (("8.png", gray, "PNG"), ("16.png", gray.astype(np.uint16) * 257, "PNG"),
                             ("16.tif", gray.astype(np.uint16) * 257, "TIFF"),
                             ("f.tif", gray.astype(np.float32) / 255, "TIFF")):
        out = io.BytesIO()
        Image.fromarray(array).save(out, fmt)
        twins[name] = out.getvalue()
    return twins


def test_16_bit_and_float_images_are_seen_as_shown_not_clipped():
    """Pillow's conversion to 8 bits clips: a 16-bit scan turned nearly all white, a float one black."""
    from palindrom.media import embedders

    twins = high_depth_twins()
    facts = {name: inspect_media("image", name, data) for name, data in twins.items()}
    assert [f.mode for f in facts.values()] == ["L", "I;16", "I;16", "F"]
    assert len({f.phash for f in facts.values()}) == 1
    pixels = [np.asarray(image) for image in embedders.as_images(list(twins.values()), 10**6)]
    assert all(np.array_equal(p, pixels[0]) for p in pixels)


@pytest.mark.parametrize("media_type", decoding.MEDIA_TYPES)
def test_documents_and_archives_are_no_media_format(media_type):
    """Not `corrupt` (nothing is damaged), nor an image format Pillow lacks."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("photo.txt", "not a photo")
    for data, mime in ((b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "application/pdf"),
                       (archive.getvalue(), "application/zip")):
        error = rejected(media_type, "upload.bin", data)
        assert (error.reason, error.detail) == (decoding.UNRECOGNISED, f"the bytes are {mime}, not a media format")


@pytest.mark.parametrize("svg", [
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
    b'\xef\xbb\xbf<?xml version="1.0" encoding="UTF-8"?>\n<!-- Generator: a drawing program -->\n'
    b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n'
    b'<svg version="1.1" xmlns="http://www.w3.org/2000/svg"></svg>',
])
def test_an_svg_is_an_image_no_decoder_here_reads(svg):
    """A logo or an icon drawn as vectors: unsupported among images (convert it), of the wrong type elsewhere."""
    error = rejected("image", "logo.svg", svg)
    assert (error.reason, error.detail) == (
        decoding.UNSUPPORTED_CODEC, "image/svg+xml: Pillow has no decoder for this image format")
    assert rejected("video", "logo.svg", svg).detail == "the bytes are image/svg+xml, not video"
    assert not containers.is_svg(b"<html><body><svg></svg></body></html>")  # a page that holds one


def test_similar_images_have_close_perceptual_hashes():
    import imagehash

    a = imagehash.hex_to_hash(inspect_media("image", "a.png", image_bytes(seed=1)).phash)
    a_jpeg = imagehash.hex_to_hash(inspect_media("image", "a.jpg", image_bytes(seed=1, fmt="JPEG")).phash)
    b = imagehash.hex_to_hash(inspect_media("image", "b.png", image_bytes(seed=4)).phash)
    assert a - a_jpeg <= 4 < a - b


def test_decompression_bomb_is_refused_from_the_header():
    data = bomb_png(20_000)
    assert len(data) < 200_000  # tiny on disk, 400 Mpixel decoded
    started = time.perf_counter()
    error = rejected("image", "bomb.png", data)
    assert error.reason == decoding.TOO_LARGE
    assert time.perf_counter() - started < 2  # refused before decoding 400 M pixels
    small_limit = rejected("image", "big.png", image_bytes((200, 200)), Limits(max_pixels=10_000))
    assert small_limit.reason == decoding.TOO_LARGE
    assert "200x200" in small_limit.detail


@pytest.mark.parametrize(("data", "reason"), [
    (b"", decoding.EMPTY),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, decoding.CORRUPT),  # a PNG signature, then nothing valid
    (b"GIF89a garbage", decoding.CORRUPT),
    (bytes(range(256)) * 4, decoding.UNRECOGNISED),
    (b"ceci n'est pas une pipe", decoding.UNRECOGNISED),
])
def test_broken_images(data, reason):
    error = rejected("image", "x.png", data)
    assert error.reason == reason
    assert " at 0x" not in error.detail  # the same detail on every run: no object address


def test_ffmpegs_refusal_is_told_in_its_own_words():
    data = video_bytes(frames=5, fps=5)
    never_indexed = data[:data.index(b"moov") - 4]  # whole boxes, but the index was never written
    error = rejected("video", "v.mp4", never_indexed)
    assert (error.reason, error.detail) == (decoding.CORRUPT,
                                            "video/mp4: FFmpeg: Invalid data found when processing input")


def test_an_image_format_pillow_cannot_decode_is_unsupported_not_corrupt():
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)  # an iPhone photo's header
    error = rejected("image", "IMG_0001.HEIC", heic)
    assert (error.reason, error.detail) == (decoding.UNSUPPORTED_CODEC,
                                            "image/heic: Pillow has no decoder for this image format")


def test_media_of_another_type_is_refused_with_what_it_is():
    error = rejected("image", "x.png", audio_bytes(0.2))
    assert error.reason == decoding.WRONG_MEDIA_TYPE
    assert "audio/x-wav" in error.detail
    assert rejected("video", "x.mp4", image_bytes()).reason == decoding.WRONG_MEDIA_TYPE


def test_missing_content_is_its_own_reason():
    assert rejected("audio", "x.wav", None).reason == decoding.MISSING_CONTENT


# --- audio -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("fmt", "subtype", "rate", "channels", "codec"), [
    ("WAV", "PCM_16", 16_000, 1, "pcm_s16le"),
    ("WAV", "FLOAT", 48_000, 2, "pcm_f32le"),
    ("FLAC", None, 44_100, 2, "flac"),
    ("OGG", "VORBIS", 22_050, 1, "vorbis"),
])
def test_audio_facts(fmt, subtype, rate, channels, codec):
    facts = inspect_media("audio", f"a.{fmt.lower()}", audio_bytes(1.25, rate, channels, fmt, subtype))
    assert (facts.sample_rate, facts.channels, facts.codec) == (rate, channels, codec)
    assert facts.duration_s == pytest.approx(1.25, abs=0.01)


def test_mp3():
    import av

    out = io.BytesIO()
    with av.open(out, "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=22_050, layout="mono")
        samples = tone(2.0, 22_050)[:, 0]
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="fltp", layout="mono")
        frame.sample_rate = 22_050
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    facts = inspect_media("audio", "a.mp3", out.getvalue())
    assert facts.codec == "mp3"
    assert facts.mime_type == "audio/mpeg"
    assert facts.sample_rate == 22_050
    assert facts.duration_s == pytest.approx(2.0, abs=0.1)


def test_a_flac_streamed_without_its_sample_count_decodes_whole():
    data = bytearray(audio_bytes(1.5, 16_000, fmt="FLAC"))
    assert data[:4] == b"fLaC"
    streaminfo = 8  # after the marker and the block header; the 36-bit total starts at its 109th bit
    data[streaminfo + 13] &= 0xF0
    data[streaminfo + 14: streaminfo + 18] = bytes(4)
    assert sf.info(io.BytesIO(bytes(data))).frames == 2**63 - 1  # libsndfile: unknown
    facts = inspect_media("audio", "live.flac", bytes(data))
    assert (facts.codec, facts.sample_rate, facts.duration_s) == ("flac", 16_000, 1.5)


def test_a_truncated_mp3_that_states_its_length_is_corrupt():
    import av

    out = io.BytesIO()
    with av.open(out, "w", format="mp3") as container:  # LAME's Info header states the frame count
        stream = container.add_stream("libmp3lame", rate=44_100, layout="mono")
        frame = av.AudioFrame.from_ndarray(tone(3.0, 44_100)[:, 0][None, :], format="fltp", layout="mono")
        frame.sample_rate = 44_100
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    data = out.getvalue()
    assert inspect_media("audio", "a.mp3", data).duration_s == pytest.approx(3.0, abs=0.05)
    at_a_frames_end = containers.id3v2_end(data)
    while at_a_frames_end < len(data) // 2:
        at_a_frames_end += containers._mpeg_frame_bytes(data[at_a_frames_end:at_a_frames_end + 4])
    error = rejected("audio", "a.mp3", data[:at_a_frames_end])  # whole frames: only the Xing count tells
    assert error.reason == decoding.CORRUPT
    assert error.detail.startswith("audio/mpeg: truncated: the header promises 132300 frames")


@pytest.mark.parametrize(("muxer", "encoder", "rate", "mime"), [
    ("adts", "aac", 44_100, "audio/aac"), ("ac3", "ac3", 48_000, "audio/ac3"), ("ac3", "ac3", 44_100, "audio/ac3"),
    ("ac3", "ac3", 32_000, "audio/ac3"), ("eac3", "eac3", 48_000, "audio/eac3"),
])
def test_a_framed_audio_stream_cut_inside_a_frame_is_corrupt(muxer, encoder, rate, mime):
    """Raw AAC (ADTS), AC-3 and E-AC-3 state no length, and FFmpeg drops a partial last frame; each
    frame's header gives its length (AC-3's from its bit and sample rates: 44.1 kHz frames alternate)."""
    import av

    out = io.BytesIO()
    with av.open(out, "w", format=muxer) as container:
        stream = container.add_stream(encoder, rate=rate, layout="stereo")
        frame = av.AudioFrame.from_ndarray(np.tile(tone(2.0, rate)[:, 0], (2, 1)), format="fltp", layout="stereo")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    data = out.getvalue()
    assert inspect_media("audio", f"a.{muxer}", data).mime_type == mime
    assert containers.container_fault(data + b"TAG" + bytes(125)) is None  # walked to its end, then a tag
    error = rejected("audio", f"a.{muxer}", data[:-3])
    assert error.reason == decoding.CORRUPT
    assert error.detail == (f"{mime}: truncated: its last frame ends at byte {len(data)}, "
                            f"the file at byte {len(data) - 3}")


@pytest.mark.parametrize("rate", [44_100, 22_050, 8_000])  # MPEG-1, MPEG-2 and MPEG-2.5 layer III
def test_an_mp3_cut_inside_a_frame_is_corrupt_without_a_frame_count(rate):
    """Most MP3s state no length (no Xing header: CBR from older encoders); FFmpeg drops a partial
    last frame silently, but each frame's header gives its size."""
    import av

    out = io.BytesIO()
    with av.open(out, "w", format="mp3", options={"write_xing": "0"}) as container:
        stream = container.add_stream("libmp3lame", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(tone(3.0, rate)[:, 0][None, :], format="fltp", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    data = out.getvalue()
    whole = inspect_media("audio", "a.mp3", data).duration_s
    assert whole == pytest.approx(3.0, abs=0.2)  # with the encoder's delay: 3.17 s at 8 kHz
    assert inspect_media("audio", "a.mp3", data + b"TAG" + bytes(125)).duration_s == whole  # an ID3v1 tag after
    error = rejected("audio", "a.mp3", data[: len(data) // 2 + 7])
    assert error.reason == decoding.CORRUPT
    assert error.detail.startswith("audio/mpeg: truncated: its last frame ends at byte ")


def test_a_vbr_mp3_without_its_frame_count_header_decodes_whole():
    """No Xing/Info header (a stream recorded live): libsndfile guesses the length from the first,
    silent and so cheap, frames at 13 s; the file holds 4 s, which once was 'truncated'."""
    import av

    out = io.BytesIO()
    with av.open(out, "w", format="mp3", options={"write_xing": "0"}) as container:
        stream = container.add_stream("libmp3lame", rate=44_100, layout="mono")
        stream.codec_context.qscale = 4
        stream.codec_context.flags |= av.codec.context.Flags.qscale  # variable bit rate
        samples = np.zeros(4 * 44_100, np.float32)
        samples[44_100:] = np.random.default_rng(0).normal(0, 0.3, 3 * 44_100)
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="fltp", layout="mono")
        frame.sample_rate = 44_100
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    data = out.getvalue()
    assert b"Xing" not in data
    assert b"Info" not in data
    assert sf.info(io.BytesIO(data)).duration > 10  # libsndfile's guess
    facts = inspect_media("audio", "live.mp3", data)
    assert (facts.codec, facts.sample_rate) == ("mp3", 44_100)
    assert facts.duration_s == pytest.approx(4.0, abs=0.1)
    assert rejected("audio", "live.mp3", data, Limits(max_audio_seconds=3)).reason == decoding.TOO_LARGE


def test_audio_level_and_silence():
    # 1 s of a 0.5-amplitude sine then 3 s of silence: a quarter sounds, at -9 dBFS over the tone.
    facts = inspect_media("audio", "a.wav", audio_bytes(1.0, 16_000, silence_s=3.0, subtype="FLOAT"))
    assert facts.silence_fraction == pytest.approx(0.75, abs=0.02)
    expected = 20 * np.log10(np.sqrt(np.mean(tone(1.0, 16_000, silence_s=3.0) ** 2)))
    assert facts.rms_dbfs == pytest.approx(expected, abs=0.01)
    silent = inspect_media("audio", "s.wav", audio_bytes(0.0, 8_000, silence_s=1.0))
    assert silent.silence_fraction == 1.0
    assert silent.rms_dbfs == decoding.FLOOR_DBFS


@pytest.mark.parametrize(("fmt", "subtype", "channels", "mime", "codec"), [
    ("WAV", "PCM_16", 1, "audio/x-wav", "pcm_s16le"), ("WAV", "PCM_24", 1, "audio/x-wav", "pcm_s24le"),
    ("WAVEX", "PCM_16", 2, "audio/x-wav", "pcm_s16le"), ("WAV", "FLOAT", 1, "audio/x-wav", "pcm_f32le"),
    ("WAV", "ULAW", 1, "audio/x-wav", "pcm_mulaw"), ("WAV", "IMA_ADPCM", 1, "audio/x-wav", "ima_adpcm"),
    ("WAV", "GSM610", 1, "audio/x-wav", "gsm610"), ("RF64", "PCM_16", 1, "audio/x-wav", "pcm_s16le"),
    ("W64", "PCM_16", 2, "audio/x-w64", "pcm_s16le"), ("AIFF", "PCM_16", 1, "audio/x-aiff", "pcm_s16be"),
    ("AIFF", "FLOAT", 1, "audio/x-aiff", "pcm_f32be"), ("AU", "PCM_24", 1, "audio/basic", "pcm_s24be"),
    ("CAF", "PCM_16", 1, "audio/x-caf", "pcm_s16be"), ("CAF", "ALAC_16", 1, "audio/x-caf", "alac_16"),
    ("NIST", "PCM_16", 1, "audio/x-nist", "pcm_s16le"), ("NIST", "PCM_24", 2, "audio/x-nist", "pcm_s24le"),
    ("NIST", "ULAW", 1, "audio/x-nist", "pcm_mulaw"), ("AVR", "PCM_16", 2, "audio/x-avr", "pcm_s16be"),
    ("SVX", "PCM_16", 1, "audio/x-svx", "pcm_s16be"),
])
def test_truncated_chunked_audio_is_corrupt_not_shorter(fmt, subtype, channels, mime, codec):
    """libsndfile (and FFmpeg) read a cut WAV, AIFF, AU, CAF, Wave64, NIST SPHERE, AVR or 8SVX file as a
    shorter one, for every codec: the size its header declares for the samples tells."""
    out = io.BytesIO()
    sf.write(out, tone(1.0, 16_000).repeat(channels, axis=1), 16_000, format=fmt, subtype=subtype)
    data = out.getvalue()
    name = f"a.{ {'WAVEX': 'wav', 'RF64': 'wav', 'AIFF': 'aiff', 'NIST': 'sph', 'SVX': '8svx'}.get(fmt, fmt.lower())}"
    facts = inspect_media("audio", name, data)
    assert (facts.mime_type, facts.codec, facts.extension_mismatch) == (mime, codec, False)
    assert facts.duration_s == pytest.approx(1.0, abs=0.02)  # ADPCM pads its last block
    error = rejected("audio", name, data[: len(data) * 6 // 10])
    assert error.reason == decoding.CORRUPT
    assert error.detail.startswith(f"{mime}: truncated: the header declares ")


@pytest.mark.parametrize("subtype", ["VORBIS", "OPUS"])
def test_a_cut_or_damaged_ogg_is_corrupt_not_shorter(subtype):
    """A messenger's voice note (Opus in Ogg) cut short, or with one bit changed: libsndfile gave the
    pages before the fault as the whole recording (a cut Vorbis file as 0 s)."""
    data = audio_bytes(3.0, 48_000, fmt="OGG", subtype=subtype)
    assert inspect_media("audio", "note.ogg", data).duration_s == pytest.approx(3.0)
    error = rejected("audio", "note.ogg", data[: len(data) // 2])
    assert (error.reason, error.detail[:35]) == (decoding.CORRUPT, "audio/ogg: truncated: its 'page' en")
    damaged = bytearray(data)
    damaged[len(data) // 2] ^= 0x01
    error = rejected("audio", "note.ogg", bytes(damaged))
    assert error.reason == decoding.CORRUPT
    assert error.detail.endswith("fails its checksum")


def test_a_cut_creative_voice_file_is_corrupt_not_shorter():
    data = audio_bytes(1.0, 16_000, channels=2, fmt="VOC", subtype="PCM_16")
    facts = inspect_media("audio", "a.voc", data)
    assert (facts.mime_type, facts.codec, facts.channels, facts.extension_mismatch) == (
        "audio/x-voc", "pcm_s16le", 2, False)
    error = rejected("audio", "a.voc", data[:-1000])
    assert error.reason == decoding.CORRUPT
    assert error.detail == (f"audio/x-voc: truncated: its 'sound data' ends at byte {len(data) - 1}, "
                            f"the file at byte {len(data) - 1000}")


@pytest.mark.parametrize(("fmt", "name", "mime", "codec"), [
    ("HTK", "a.htk", "audio/x-htk", "pcm_s16be"), ("PVF", "a.pvf", "audio/x-pvf", "pcm_s16be"),
    ("IRCAM", "a.sf", "audio/x-ircam", "pcm_s16le"), ("PAF", "a.paf", "audio/x-paf", "pcm_s16be"),
    ("MPC2K", "a.snd", "audio/x-mpc2k", "pcm_s16le"), ("MAT5", "a.mat", "audio/x-mat5", "pcm_s16le"),
])
def test_formats_only_libsndfile_reads_are_named_by_it_with_their_byte_order(fmt, name, mime, codec):
    """No magic numbers of theirs are known before decoding: libsndfile's name for the format gives the
    MIME type (GStreamer's naming), and the byte order is the format's own where the header does not say."""
    facts = inspect_media("audio", name, audio_bytes(1.0, 16_000, fmt=fmt, subtype="PCM_16"))
    assert (facts.mime_type, facts.codec, facts.extension_mismatch) == (mime, codec, False)
    assert facts.duration_s == pytest.approx(1.0)


@pytest.mark.parametrize(("muxer", "encoder", "name", "mime"), [
    ("ac3", "ac3", "a.ac3", "audio/ac3"), ("eac3", "eac3", "a.ec3", "audio/eac3"),
    ("mp2", "mp2", "a.mp2", "audio/mpeg"), ("wv", "wavpack", "a.wv", "audio/x-wavpack"),
    ("tta", "tta", "a.tta", "audio/x-tta"),
])
def test_audio_formats_filetype_does_not_know_are_named(muxer, encoder, name, mime):
    """`filetype` knows none of these: AC-3, E-AC-3 and MP2 are named from their frames' headers,
    WavPack and TTA from their first bytes; FFmpeg reads them all (MP2 without a Xing header too)."""
    import av

    out = io.BytesIO()
    with av.open(out, "w", format=muxer) as container:
        stream = container.add_stream(encoder, rate=48_000)
        layout = stream.codec_context.layout
        wave = np.tile(tone(1.0, 48_000)[:, 0], (layout.nb_channels, 1))
        frame = av.AudioFrame.from_ndarray(wave, format="fltp", layout=layout.name)
        frame.sample_rate = 48_000
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout=layout.name, rate=48_000)
        for packet in [p for f in resampler.resample(frame) for p in stream.encode(f)] + list(stream.encode(None)):
            container.mux(packet)
    assert decoding.detect_mime(out.getvalue()) == mime
    facts = inspect_media("audio", name, out.getvalue())
    assert (facts.mime_type, facts.codec, facts.extension_mismatch) == (mime, encoder, False)
    assert facts.duration_s == pytest.approx(1.0, abs=0.05)


def test_a_flac_behind_an_id3_tag_is_flac_not_mp3():
    """Taggers put ID3v2 tags before FLAC too; the tag names no format (`filetype` says MP3)."""
    frame = b"TIT2" + (6).to_bytes(4, "big") + b"\x00\x00\x00title"
    tag = b"ID3\x03\x00\x00" + bytes([0, 0, 0, len(frame)]) + frame
    facts = inspect_media("audio", "tagged.flac", tag + audio_bytes(1.5, 16_000, fmt="FLAC"))
    assert (facts.mime_type, facts.codec, facts.duration_s, facts.extension_mismatch) == (
        "audio/x-flac", "flac", 1.5, False)


def test_little_endian_aiff_is_named_so():
    out = io.BytesIO()
    sf.write(out, tone(0.5, 8_000), 8_000, format="AIFF", subtype="PCM_16", endian="LITTLE")  # AIFC 'sowt'
    assert inspect_media("audio", "a.aifc", out.getvalue()).codec == "pcm_s16le"


@pytest.mark.parametrize("declared", [0, 0xFFFFFFFF], ids=["zero", "unknown"])
def test_a_wav_streamed_without_its_sizes_decodes_whole(declared):
    """A writer that cannot seek back (FFmpeg to a pipe) leaves the RIFF and data sizes unset."""
    data = bytearray(audio_bytes(1.5, 16_000))
    data[4:8] = declared.to_bytes(4, "little")
    at = data.index(b"data") + 4
    data[at:at + 4] = declared.to_bytes(4, "little")
    facts = inspect_media("audio", "live.wav", bytes(data))
    assert (facts.duration_s, facts.sample_rate, facts.codec) == (1.5, 16_000, "pcm_s16le")


@pytest.mark.parametrize(("fmt", "codec"), [("AU", "pcm_s16be"), ("CAF", "pcm_s16be")])
def test_au_and_caf_streamed_without_their_sizes_decode_whole(fmt, codec):
    data = bytearray(audio_bytes(1.5, 16_000, fmt=fmt, subtype="PCM_16"))
    if fmt == "AU":
        data[8:12] = b"\xff" * 4  # the data size: unknown
    else:
        at = data.index(b"data") + 4
        data[at:at + 8] = b"\xff" * 8  # -1: to the end of the file
    facts = inspect_media("audio", f"live.{fmt.lower()}", bytes(data))
    assert (facts.duration_s, facts.sample_rate, facts.codec) == (1.5, 16_000, codec)


@pytest.mark.parametrize(("subtype", "rate"), [("VORBIS", 16_000), ("OPUS", 48_000)])
def test_a_chained_ogg_is_decoded_whole_not_as_its_first_stream(subtype, rate):
    """Two Ogg streams one after the other (a radio recording; files joined): libsndfile reads the first."""
    first, second = (audio_bytes(s, rate, fmt="OGG", subtype=subtype, freq=f) for s, f in ((1.0, 440.0), (2.0, 660.0)))
    assert sf.info(io.BytesIO(first + second)).duration < 2.5  # libsndfile's length is one stream's
    facts = inspect_media("audio", "radio.ogg", first + second)
    assert (facts.codec, facts.sample_rate) == (subtype.lower(), rate)
    assert facts.duration_s == pytest.approx(3.0, abs=0.05)  # Vorbis pads where the streams meet
    assert inspect_media("audio", "one.ogg", first).duration_s == pytest.approx(1.0, abs=0.01)


def test_a_chained_ogg_whose_rate_changes_is_unsupported_not_corrupt():
    joined = audio_bytes(1.0, 44_100, fmt="OGG") + audio_bytes(1.0, 16_000, fmt="OGG")
    error = rejected("audio", "joined.ogg", joined)
    assert (error.reason, error.detail) == (decoding.UNSUPPORTED_CODEC,
                                            "audio/ogg: Not yet implemented in FFmpeg, patches welcome")


def test_an_empty_wav_is_described_as_empty():
    facts = inspect_media("audio", "empty.wav", audio_bytes(0.0, 16_000))
    assert (facts.duration_s, facts.sample_rate, facts.channels) == (0.0, 16_000, 1)


def test_float_audio_with_nan_or_infinite_samples_is_corrupt():
    samples = np.sin(np.arange(16_000, dtype=np.float32) / 5)
    samples[100:200], samples[300] = np.nan, np.inf
    out = io.BytesIO()
    sf.write(out, samples, 16_000, format="WAV", subtype="FLOAT")
    error = rejected("audio", "nan.wav", out.getvalue())
    assert (error.reason, error.detail) == (decoding.CORRUPT, "audio/x-wav: 101 of 16000 samples are NaN or infinite")


def test_overlong_audio_is_refused_before_decoding():
    out = io.BytesIO()
    sf.write(out, np.zeros((8_000 * 5, 1), np.float32), 8_000, format="WAV")
    assert rejected("audio", "long.wav", out.getvalue(), Limits(max_audio_seconds=2)).reason == decoding.TOO_LARGE


# --- video -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("codec", "container", "mime", "expected_codec"), [
    ("libx264", "mp4", "video/mp4", "h264"),
    ("libvpx-vp9", "webm", "video/webm", "vp9"),
    ("mpeg4", "matroska", "video/x-matroska", "mpeg4"),
])
def test_video_facts_count_the_frames(codec, container, mime, expected_codec):
    data = video_bytes(frames=37, fps=12, size=(64, 48), codec=codec, container=container)
    facts = inspect_media("video", f"v.{'mkv' if container == 'matroska' else container}", data)
    assert facts.frame_count == 37
    assert (facts.width, facts.height, facts.codec, facts.mime_type) == (64, 48, expected_codec, mime)
    assert facts.fps == pytest.approx(12)
    assert facts.duration_s == pytest.approx(37 / 12, abs=0.01)
    assert not facts.extension_mismatch


@pytest.mark.parametrize(("codec", "container", "name"), [
    ("libvpx-vp9", "webm", "screen.webm"), ("libx264", "matroska", "screen.mkv"), ("libx264", "mp4", "phone.mp4"),
])
def test_a_variable_frame_rate_video_lasts_as_long_as_its_frames(codec, container, name):
    """A recording's frames come when they come (33 ms, then 100 ms, ...): Matroska and WebM state a
    nominal 30 fps, which over 40 frames would make 1.33 s of 2.6."""
    import av

    out = io.BytesIO()
    with av.open(out, "w", format=container) as muxer:
        stream = muxer.add_stream(codec, rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        at = 0
        for i in range(40):
            pixels = np.full((48, 64, 3), i * 6, np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = at, Fraction(1, 1000)
            at += 33 if i % 2 == 0 else 100
            for packet in stream.encode(frame):
                muxer.mux(packet)
        for packet in stream.encode(None):
            muxer.mux(packet)
    facts = inspect_media("video", name, out.getvalue())
    assert facts.frame_count == 40
    assert facts.duration_s == pytest.approx(2.56 + 0.033, abs=0.002)  # the last frame's start, plus its 33 ms
    assert facts.fps == pytest.approx(40 / facts.duration_s)


@pytest.mark.parametrize(("container", "name"), [("mp4", "old.mp4"), ("matroska", "old.mkv")])
def test_a_video_whose_tags_are_not_utf8_is_described(container, name):
    """An old camera's Latin-1 title: PyAV refused the whole file ('utf-8' codec can't decode)."""
    data = video_bytes(frames=6, fps=6, container=container, title="holiday-MARKER")
    data = data.replace(b"MARKER", b"\xe9t\xe9\xbc\xbc!")
    facts = inspect_media("video", name, data)
    assert (facts.frame_count, facts.width) == (6, 96)


@pytest.mark.parametrize("rotation", [90, 270])
def test_a_video_recorded_portrait_is_described_and_sampled_upright(rotation):
    from PIL import Image

    data = video_bytes(frames=8, fps=8, size=(96, 64), rotation=rotation)
    facts = inspect_media("video", "portrait.mp4", data)
    assert (facts.width, facts.height, facts.frame_count) == (64, 96, 8)  # as displayed
    frame = np.asarray(Image.open(io.BytesIO(facts.key_frames[0])).convert("RGB"), dtype=float)
    assert frame.shape[:2] == (96, 64)
    # The stored frame's blue grows to the right; turned 90° counter-clockwise the right edge is on
    # top, turned 270° at the bottom.
    top, bottom = frame[:8, :, 2].mean(), frame[-8:, :, 2].mean()
    assert (top > bottom + 100) if rotation == 90 else (bottom > top + 100)


def test_the_film_is_described_not_a_cover_picture_listed_before_it():
    import av

    out = io.BytesIO()
    with av.open(out, "w", format="matroska") as muxer:
        cover = muxer.add_stream("mjpeg", rate=1)
        cover.width, cover.height, cover.pix_fmt = 16, 16, "yuvj420p"
        film = muxer.add_stream("libx264", rate=10)
        film.width, film.height, film.pix_fmt = 32, 24, "yuv420p"
        picture = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
        packets = [*cover.encode(picture), *cover.encode(None)]
        for i in range(6):
            frame = av.VideoFrame.from_ndarray(np.full((24, 32, 3), 40 * i, np.uint8), format="rgb24")
            packets += film.encode(frame)
        for packet in [*packets, *film.encode(None)]:
            muxer.mux(packet)
    facts = inspect_media("video", "with-cover.mkv", out.getvalue())
    assert (facts.codec, facts.frame_count, facts.width, facts.height) == ("h264", 6, 32, 24)
    assert len(facts.key_frames) == 4


@pytest.mark.parametrize(("name", "container", "codec", "mime"), [
    ("clip.ogv", "ogg", "libvpx", "video/ogg"),  # filetype calls any Ogg audio/ogg
    ("segment.ts", "mpegts", "libx264", "video/mp2t"),  # containers filetype does not recognise
    ("camera.h264", "h264", "libx264", "video/h264"),
])
def test_video_containers_named_by_their_contents(name, container, codec, mime):
    facts = inspect_media("video", name, video_bytes(frames=6, fps=6, codec=codec, container=container))
    assert (facts.mime_type, facts.frame_count, facts.extension_mismatch) == (mime, 6, False)
    as_audio = rejected("audio", name, video_bytes(frames=6, fps=6, codec=codec, container=container))
    assert (as_audio.reason, as_audio.detail) == (decoding.WRONG_MEDIA_TYPE, f"{mime}: video only, no audio stream")


@pytest.mark.parametrize(("name", "container", "codec", "size", "mime"), [
    ("clip.h263", "h263", "h263", (176, 144), "video/h263"),
    ("clip.h261", "h261", "h261", (176, 144), "video/h261"),
    ("clip.m4v", "m4v", "mpeg4", (64, 48), "video/mpeg"),  # filetype's name for an MPEG start code
    ("clip.m2v", "mpeg2video", "mpeg2video", (64, 48), "video/mpeg"),
])
def test_raw_video_streams_are_read(name, container, codec, size, mime):
    facts = inspect_media("video", name, video_bytes(frames=6, fps=6, codec=codec, container=container, size=size))
    assert (facts.mime_type, facts.frame_count, facts.extension_mismatch) == (mime, 6, False)


def test_a_damaged_recording_is_not_taken_for_a_raw_video_stream():
    """FFmpeg's H.263 probe counts picture start codes anywhere in the bytes: a u-law recording whose
    header is damaged passed for a one-frame 1408x1152 video, and among audio for a video without sound."""
    wav = audio_bytes(0.5, 16_000, fmt="WAV", subtype="ULAW")
    damaged = wav[:10] + b"\xbe" + wav[11:30] + b"\xf6\x15" + wav[30:]  # its WAVE magic, its format chunk
    for media_type in ("video", "audio"):
        error = rejected(media_type, "voice.wav", damaged)
        assert (error.reason, error.detail) == (decoding.UNRECOGNISED, "not a recognised media format (FFmpeg "
                                                "would read it as a raw h263 stream, which it does not begin as)")


@pytest.mark.parametrize(("container", "signature", "damaged", "mime"), [
    ("matroska", b"matroska", b"matr\xadska", "video/x-matroska"),  # its DocType
    ("mp4", b"ftyp", b"fty\x10", "video/mp4"),
])
def test_a_container_whose_signature_is_damaged_is_named_by_ffmpegs_reading(container, signature, damaged, mime):
    """`filetype` no longer knows the bytes, FFmpeg still reads them: named as the container's MIME type,
    not by FFmpeg's name for it ("video/matroska", "video/mov")."""
    data = video_bytes(frames=6, fps=6, container=container)
    assert decoding.detect_mime(data.replace(signature, damaged, 1)) is None
    facts = inspect_media("video", f"v.{container}", data.replace(signature, damaged, 1))
    assert (facts.mime_type, facts.frame_count) == (mime, 6)


def test_audio_in_a_transport_stream_whose_first_packet_is_damaged_is_still_video_mp2t():
    out = io.BytesIO()
    with av.open(out, "w", format="mpegts") as muxer:
        stream = muxer.add_stream("aac", rate=44_100, layout="mono")
        frame = av.AudioFrame.from_ndarray(tone(1.0, 44_100).T, format="flt", layout="mono")
        frame.sample_rate = 44_100
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            muxer.mux(packet)
    damaged = b"\x93" + out.getvalue()[1:]  # its first sync byte: the packets are no longer found from the start
    assert decoding.detect_mime(damaged) is None
    assert inspect_media("audio", "radio.ts", damaged).mime_type == "video/mp2t"


def test_ogg_audio_is_not_a_video():
    error = rejected("video", "note.ogg", audio_bytes(0.5, fmt="OGG", subtype="VORBIS"))
    assert (error.reason, error.detail) == (decoding.WRONG_MEDIA_TYPE, "audio/ogg: audio only, no video stream")


def test_key_frames_are_evenly_spaced_jpegs():
    from PIL import Image

    facts = inspect_media("video", "v.mp4", video_bytes(frames=40, fps=10), Limits(key_frames=4))
    assert facts.key_frame_times_s == pytest.approx([0.5, 1.5, 2.5, 3.5])
    frames = [Image.open(io.BytesIO(f)) for f in facts.key_frames]
    assert [f.format for f in frames] == ["JPEG"] * 4
    assert frames[0].size == (96, 64)
    # The red ramp rises over the clip: later key frames are redder.
    reds = [np.asarray(f.convert("RGB"))[..., 0].mean() for f in frames]
    assert reds == sorted(reds)


def test_short_video_gives_as_many_key_frames_as_it_has():
    facts = inspect_media("video", "v.mp4", video_bytes(frames=2, fps=10), Limits(key_frames=8))
    assert facts.frame_count == 2
    assert len(facts.key_frames) == 2


def test_video_limits():
    data = video_bytes(frames=30, fps=10)
    assert rejected("video", "v.mp4", data, Limits(max_video_frames=10)).reason == decoding.TOO_LARGE
    assert rejected("video", "v.mp4", data, Limits(max_pixels=1000)).reason == decoding.TOO_LARGE


def audio_in(container_format: str, codec: str, rate: int) -> bytes:
    """One second of a tone in a container filetype calls video/*, as phones and browsers record voice."""
    import av

    out = io.BytesIO()
    with av.open(out, "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(tone(1.0, rate)[:, 0][None, :], format="fltp", layout="mono")
        frame.sample_rate, frame.pts = rate, 0  # timed, as a recorder's are: MP4 then has an edit list
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return out.getvalue()


def test_audio_only_container_is_not_a_video():
    data = audio_in("mp4", "aac", 16_000)
    error = rejected("video", "voice.mp4", data)  # an MP4 with no video stream ...
    assert (error.reason, error.detail) == (decoding.WRONG_MEDIA_TYPE, "video/mp4: audio only, no video stream")
    facts = inspect_media("audio", "voice.m4a", data)  # ... which is fine as audio
    assert facts.codec == "aac"
    assert facts.duration_s == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize(("container", "codec"), [("mp4", "aac"), ("mp4", "libmp3lame"), ("mov", "aac"),
                                                  ("ipod", "alac")])
def test_an_mp4s_audio_lasts_what_its_edit_list_says(container, codec):
    """Not what the last frame's padding adds: FFmpeg decodes it (a second of AAC: 1.02 s)."""
    facts = inspect_media("audio", "voice.m4a", audio_in(container, codec, 44_100))
    assert facts.duration_s == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize(("container", "codec", "rate", "names", "mime"), [
    ("mp4", "aac", 16_000, ("voice.m4a", "voice.mp4"), "audio/mp4"),
    ("webm", "libopus", 48_000, ("voice.weba", "voice.webm"), "audio/webm"),  # a browser's MediaRecorder
    ("matroska", "libopus", 48_000, ("voice.mka",), "audio/x-matroska"),
    ("mpegts", "aac", 48_000, ("radio.ts",), "video/mp2t"),  # a broadcast's sound: the container's own type
])
def test_audio_in_a_video_container_is_named_as_audio(container, codec, rate, names, mime):
    data = audio_in(container, codec, rate)
    for name in names:
        facts = inspect_media("audio", name, data)
        assert (facts.mime_type, facts.extension_mismatch) == (mime, False), name
    assert inspect_media("audio", "voice.wav", data).extension_mismatch


def test_audio_among_videos_is_named_as_the_audio_path_names_it():
    """An MP2 stream after junk, which only FFmpeg finds (its format: "mp3"), is named by one table on
    both paths: audio/mpeg."""
    data = bytes(100) + audio_in("mp2", "mp2", 48_000)
    assert decoding.detect_mime(data) is None
    assert inspect_media("audio", "a.mp2", data).mime_type == "audio/mpeg"
    error = rejected("video", "a.mp2", data)
    assert (error.reason, error.detail) == (decoding.WRONG_MEDIA_TYPE, "audio/mpeg: audio only, no video stream")


def test_a_videos_sound_is_described_by_its_rate_and_channels():
    """For datasets that need both picture and sound: null where the video is silent."""
    from tests.unit.media.test_containers import film_with_sound

    data = film_with_sound("mp4", "libx264", "aac", frames=12, fps=12, rate=44_100, layout="stereo", size=(64, 48))
    facts = inspect_media("video", "v.mp4", data)
    assert (facts.codec, facts.frame_count, facts.sample_rate, facts.channels) == ("h264", 12, 44_100, 2)
    silent = inspect_media("video", "v.mp4", video_bytes(frames=12, fps=12))
    assert (silent.sample_rate, silent.channels) == (None, None)


def test_a_video_with_no_audio_is_not_audio():
    error = rejected("audio", "clip.m4a", video_bytes(frames=5, fps=5))
    assert (error.reason, error.detail) == (decoding.WRONG_MEDIA_TYPE, "video/mp4: video only, no audio stream")


def test_a_fault_in_a_file_nothing_names_is_said_of_an_unknown_format():
    """A damaged first box size: `filetype` no longer calls it an MP4; the detail says so, not "None"."""
    data = bytearray(video_bytes(frames=6, fps=6))
    data[0:4] = (0x4F0020).to_bytes(4, "big")
    assert decoding.detect_mime(bytes(data)) is None
    error = rejected("video", "v.mp4", bytes(data))
    assert error.reason == decoding.CORRUPT
    assert error.detail == (
        f"unknown format: truncated: its 'ftyp' ends at byte {0x4F0020}, the file at byte {len(data)}")


def test_an_mp4_cut_or_damaged_in_its_index_is_corrupt():
    data = video_bytes(frames=5, fps=5)
    index = data.index(b"moov")
    assert index > data.index(b"mdat")  # the index (which names the streams) is written after the frames
    error = rejected("video", "v.mp4", data[:index + 4])
    assert (error.reason, error.detail) == (
        decoding.CORRUPT, f"video/mp4: truncated: its 'moov' ends at byte {len(data)}, the file at byte {index + 4}")
    zeroed = data[:index + 4] + bytes(len(data) - index - 4)
    error = rejected("video", "v.mp4", zeroed)
    assert (error.reason, error.detail) == (decoding.CORRUPT, "video/mp4: no stream at all (truncated or damaged)")


@pytest.mark.parametrize(("codec", "container", "name", "mime"), [
    ("mpeg4", "avi", "v.avi", "video/x-msvideo"), ("ffv1", "matroska", "v.mkv", "video/x-matroska"),
    ("libvpx-vp9", "webm", "v.webm", "video/webm"),
    ("h263", "3gp", "v.3gp", "video/mp4"), ("flv", "flv", "v.flv", "video/x-flv"),
    ("libx264", "flv", "v.flv", "video/x-flv"), ("wmv2", "asf", "v.wmv", "video/x-ms-wmv"),
    ("mpeg2video", "mpeg", "v.mpg", "video/mpeg"), ("mpeg2video", "vob", "v.vob", "video/mpeg"),
    ("libx264", "mpegts", "v.ts", "video/mp2t"),
])
def test_a_cut_video_container_is_corrupt_not_shorter(codec, container, name, mime):
    """FFmpeg reads these cut as a shorter film; the sizes they give their parts tell."""
    size = (176, 144) if codec == "h263" else (64, 48)
    data = video_bytes(frames=24, fps=12, size=size, codec=codec, container=container)
    facts = inspect_media("video", name, data)
    assert (facts.mime_type, facts.frame_count, facts.extension_mismatch) == (mime, 24, False)
    # +1: not between two packets, where a program or transport stream cut cannot be told from a whole one
    error = rejected("video", name, data[: len(data) * 6 // 10 + 1])
    assert error.reason == decoding.CORRUPT
    assert error.detail.startswith(f"{mime}: truncated: its ")


def test_a_webm_recorded_live_is_taken_as_long_as_it_is_and_cut_is_corrupt():
    """A browser's MediaRecorder cannot seek back: its segment's and clusters' sizes are 'unknown',
    which claims nothing; the blocks in them are held to the file's length."""
    from tests.unit.media.test_containers import live

    data = live(video_bytes(frames=24, fps=12, codec="libvpx-vp9", container="webm"))
    assert inspect_media("video", "live.webm", data).frame_count == 24
    error = rejected("video", "live.webm", data[: len(data) * 6 // 10])
    assert error.reason == decoding.CORRUPT
    assert error.detail.startswith("video/webm: truncated: its 'SimpleBlock' ends at byte ")


@pytest.mark.parametrize(("container", "name", "mime"), [
    ("matroska", "note.mka", "audio/x-matroska"), ("mp4", "note.m4a", "audio/mp4"),
])
def test_a_cut_voice_note_is_corrupt_not_shorter(container, name, mime):
    data = audio_in(container, "libopus" if container == "matroska" else "aac", 48_000)
    assert inspect_media("audio", name, data).duration_s == pytest.approx(1.0, abs=0.03)
    error = rejected("audio", name, data[: len(data) * 6 // 10])
    assert error.reason == decoding.CORRUPT
    assert error.detail.startswith(f"{mime}: truncated: its ")


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")  # Pillow's word on a damaged JPEG it still reads
def test_damaged_media_get_a_reason_from_the_decoders_never_a_crash():
    """Every good sample file, and files of the other containers handled here, with bytes changed,
    cut out or put in (seeded): each gets its facts or a foreseen reason, never decoder_error."""
    import random

    rng = random.Random(29)
    corpus = [(m.media_type, m.path, m.make()) for m in SAMPLE_MEDIA if m.reason is None]
    corpus += [("audio", f"a.{fmt.lower()}", audio_bytes(0.5, 16_000, fmt=fmt, subtype=subtype))
               for fmt, subtype in (("AIFF", "PCM_16"), ("CAF", "PCM_16"), ("AU", "PCM_16"), ("W64", "PCM_16"),
                                    ("RF64", "PCM_16"), ("WAV", "IMA_ADPCM"), ("MP3", "MPEG_LAYER_III"),
                                    ("NIST", "PCM_16"), ("AVR", "PCM_16"), ("SVX", "PCM_16"), ("VOC", "PCM_16"))]
    corpus += [("video", f"v.{container}", video_bytes(frames=6, fps=6, codec=codec, container=container))
               for codec, container in (("mpeg4", "avi"), ("libx264", "matroska"), ("libx264", "mov"),
                                        ("flv", "flv"), ("wmv2", "asf"), ("mpeg2video", "vob"),
                                        ("libx264", "mpegts"))]
    outcomes, unforeseen = set(), []
    for _ in range(800):
        media_type, path, data = rng.choice(corpus)
        damaged = bytearray(data)
        for _ in range(rng.choice((1, 4, 16))):
            at = rng.randrange(min(len(damaged), 256) if rng.random() < 0.5 else len(damaged))  # headers often
            change = rng.random()
            if change < 0.8:
                damaged[at] = rng.randrange(256)
            elif change < 0.9:
                del damaged[at:at + rng.randrange(1, 64)]
            else:
                damaged[at:at] = rng.randbytes(rng.randrange(1, 16))
        try:
            inspect_media(media_type, path, bytes(damaged))
            outcomes.add("described")
        except MediaRejected as e:
            outcomes.add(e.reason)
            if e.reason == decoding.DECODER_ERROR:
                unforeseen.append((path, e.detail))
    assert unforeseen == []
    assert {"described", decoding.CORRUPT, decoding.UNRECOGNISED} <= outcomes


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_a_header_that_sends_libsndfile_before_the_start_is_corrupt_and_quiet():
    """An AIFF whose sample chunk's id is damaged: libsndfile seeks to -1, which BytesIO refused with an
    exception soundfile's callback could only print ("Exception ignored from cffi callback")."""
    data = audio_bytes(0.5, 16_000, fmt="AIFF", subtype="PCM_16").replace(b"SSND", b"S\x9eND")
    error = rejected("audio", "a.aiff", data)
    assert (error.reason, error.detail) == (decoding.CORRUPT, "audio/x-aiff: no audio frames decode")


def test_an_unforeseen_decoder_failure_is_a_reason_not_a_crash(monkeypatch):
    def explode(data, mime, limits):
        raise ZeroDivisionError("inside the decoder")

    monkeypatch.setattr(decoding, "_inspect_image", explode)
    error = rejected("image", "x.png", image_bytes())
    assert error.reason == decoding.DECODER_ERROR
    assert "ZeroDivisionError: inside the decoder" in error.detail


@pytest.mark.parametrize(("size", "mode", "fmt"), [
    ((1, 1), "RGB", "PNG"), ((3000, 1), "L", "PNG"), ((40, 30), "CMYK", "JPEG"), ((40, 30), "I;16", "PNG"),
    ((40, 30), "LA", "PNG"), ((40, 30), "1", "BMP"),
])
def test_awkward_images_are_described(size, mode, fmt):
    from palindrom.media.embedders import SignalImageEmbedder

    data = image_bytes(size, mode=mode, fmt=fmt)
    facts = inspect_media("image", f"x.{fmt.lower()}", data)
    assert (facts.width, facts.height) == size
    assert SignalImageEmbedder().embed([data]).shape == (1, 112)
