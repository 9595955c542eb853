"""The container readers on their own: what they claim, and what they must not (junk after a file,
sizes a live writer left unknown, Ogg streams multiplexed rather than chained)."""

import io

import pytest

from palindrom.media import containers
from pipelines.sample_media import audio_bytes, video_bytes


def box(kind: bytes, body: bytes) -> bytes:
    return (8 + len(body)).to_bytes(4, "big") + kind + body


def test_an_mp4_with_junk_after_its_boxes_is_not_cut():
    """Cameras pad files: bytes that name no box end the walk instead of claiming a size."""
    mp4 = video_bytes(frames=4, fps=4)
    assert containers.container_fault(mp4) is None
    assert containers.container_fault(mp4 + b"\x00" * 7) is None  # shorter than a box header
    assert containers.container_fault(mp4 + b"\xff\xff\xff\xff\x01\x02\x03\x04" + bytes(64)) is None  # no box's name
    assert containers.container_fault(mp4 + bytes(64)) is None  # a size of 0: to the end of the file
    assert containers.container_fault(mp4 + box(b"free", bytes(100))[:50]) == (
        f"truncated: its 'free' ends at byte {len(mp4) + 108}, the file at byte {len(mp4) + 50}")


def test_a_64_bit_box_size_is_read():
    mdat = (1).to_bytes(4, "big") + b"mdat" + (16 + 1000).to_bytes(8, "big") + bytes(400)
    data = box(b"ftyp", b"isom\x00\x00\x02\x00isom") + mdat
    ftyp = 20
    assert containers.container_fault(data) == (
        f"truncated: its 'mdat' ends at byte {ftyp + 1016}, the file at byte {len(data)}")


def live(webm: bytes) -> bytes:
    """The file as a live writer (a browser's MediaRecorder) leaves it: its Segment's and Clusters'
    sizes unknown (every bit of the size set), since it cannot seek back to write them."""
    data = bytearray(webm)
    for element in (b"\x18\x53\x80\x67", b"\x1f\x43\xb6\x75"):  # Segment, Cluster
        at = data.index(element)
        while at >= 0:
            size_at = at + 4
            length = 9 - data[size_at].bit_length()  # of the size: its length marker and every bit after it set
            data[size_at:size_at + length] = bytes([0xFF >> (length - 1)]) + b"\xff" * (length - 1)
            at = data.find(element, size_at)
    return bytes(data)


def test_a_matroska_file_of_unknown_sizes_is_held_to_its_blocks():
    """A segment and clusters of unknown size claim nothing themselves; the blocks inside them do."""
    webm = video_bytes(frames=4, fps=4, codec="libvpx-vp9", container="webm")
    assert containers.container_fault(webm[: len(webm) - 10]).startswith("truncated: its 'Segment' ends at byte ")
    recorded = live(webm)
    assert containers.container_fault(recorded) is None
    assert containers.container_fault(recorded + bytes(16)) is None  # a camera's padding
    assert containers.container_fault(recorded[: len(recorded) - 10]).startswith("truncated: its 'Cues' ends at ")
    assert containers.container_fault(recorded[: len(recorded) // 2]).startswith(
        "truncated: its 'SimpleBlock' ends at byte ")


@pytest.mark.parametrize(("fmt", "declared"), [("WAV", 32_000), ("AIFF", 32_000), ("AU", 32_000), ("CAF", 32_000),
                                               ("W64", 32_000), ("RF64", 32_000), ("NIST", 32_000),
                                               ("AVR", 32_000), ("SVX", 32_000)])
def test_the_declared_sample_bytes_of_each_chunked_container(fmt, declared):
    data = audio_bytes(1.0, 16_000, fmt=fmt, subtype="PCM_16")
    claim = containers.audio_data_claim(data)
    assert (claim.declared, claim.present) == (declared, declared)
    assert containers.audio_data_claim(data[:-1000]).present == declared - 1000


def test_a_nist_header_claims_no_size_for_compressed_samples():
    """Shorten-compressed SPHERE files (as some LDC corpora ship) hold fewer bytes than their samples."""
    data = audio_bytes(1.0, 16_000, fmt="NIST", subtype="PCM_16")
    assert b"sample_coding -s3 pcm\n" in data
    shortened = data.replace(b"sample_coding -s3 pcm\n", b"sample_coding -s26 pcm,embedded-shorten-v2.00\n")
    assert containers.audio_data_claim(shortened) is None
    assert containers.audio_data_claim(data.replace(b"sample_count -i 16000\n", b"")) is None


def test_the_blocks_of_a_creative_voice_file():
    data = audio_bytes(1.0, 16_000, fmt="VOC", subtype="PCM_16")
    assert containers.container_fault(data) is None
    assert containers.container_fault(data + b"junk") is None  # after the terminator
    assert containers.container_fault(data[:30]) == (
        "truncated: its 'sound data' ends at byte 32042, the file at byte 30")
    header_cut = data[:int.from_bytes(data[20:22], "little") + 2]  # inside the first block's size
    assert containers.container_fault(header_cut).startswith("truncated: its 'sound data' ends at byte ")


@pytest.mark.parametrize(("options", "unit"), [({}, 188), ({"mpegts_m2ts_mode": "1"}, 192)])
def test_a_transport_stream_is_cut_only_inside_a_packet(options, unit):
    """188-byte packets (a Blu-ray's M2TS: 192, a time code before each): a partial one at the end was
    cut; a cut between two packets cannot be seen, and bytes after the last that begin no packet are junk."""
    import av

    out = io.BytesIO()
    with av.open(out, "w", format="mpegts", options=options) as muxer:
        stream = muxer.add_stream("mpeg2video", rate=12)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for _ in range(12):
            for packet in stream.encode(av.VideoFrame(64, 48, "yuv420p")):
                muxer.mux(packet)
        for packet in stream.encode(None):
            muxer.mux(packet)
    data = out.getvalue()
    assert containers.transport_stream_packet(data) == unit
    assert len(data) % unit == 0
    assert containers.container_fault(data) is None
    assert containers.container_fault(data[:-unit]) is None
    assert containers.container_fault(data + b"\x00" * 50) is None
    assert containers.container_fault(data[:-100]) == (
        f"truncated: its last packet ends at byte {len(data)}, the file at byte {len(data) - 100}")


def test_a_broadcast_asf_states_no_size():
    """Streamed as it was recorded (bit 0 of its File Properties flags), its size field is not valid."""
    data = video_bytes(frames=4, fps=4, codec="wmv2", container="asf")
    properties = data.index(bytes.fromhex("a1dcab8c47a9cf118ee400c00c205365"))
    assert containers.container_fault(data[:-100]).startswith(f"truncated: its header states {len(data)} bytes")
    broadcast = bytearray(data)
    broadcast[properties + 88] |= 1
    assert containers.container_fault(bytes(broadcast[:-100])) is None


@pytest.mark.parametrize("subtype", ["VORBIS", "OPUS"])
def test_an_ogg_page_cut_damaged_or_missing_is_a_fault(subtype):
    """libsndfile and FFmpeg stop at such a page, or skip it, and give the rest as the whole file."""
    data = audio_bytes(3.0, 48_000, fmt="OGG", subtype=subtype)
    pages = [i for i in range(len(data)) if data[i:i + 4] == b"OggS"]
    assert len(pages) >= 4
    assert containers.container_fault(data) is None
    assert containers.container_fault(data + b"TAG" + bytes(125)) is None  # an ID3v1 tag a tagger appended
    assert containers.container_fault(data[:pages[-1]]) is None  # between two pages: cannot be seen
    assert containers.container_fault(data[:-10]) == (
        f"truncated: its 'page' ends at byte {len(data)}, the file at byte {len(data) - 10}")
    flipped = bytearray(data)
    flipped[pages[2] + 100] ^= 0x10
    assert containers.container_fault(bytes(flipped)) == f"damaged: its page at byte {pages[2]} fails its checksum"
    without_page_2 = data[:pages[2]] + data[pages[3]:]
    assert containers.container_fault(without_page_2) == f"damaged: its page at byte {pages[2]} is page 3, after page 1"


def film_with_sound(container: str, picture_codec: str, sound_codec: str, frames: int, fps: int,
                    rate: int, layout: str = "mono", size: tuple[int, int] = (32, 32)) -> bytes:
    """`frames` grey frames and a second of silence, multiplexed as the muxer interleaves them."""
    import av
    import numpy as np

    out = io.BytesIO()
    with av.open(out, "w", format=container) as muxer:
        picture = muxer.add_stream(picture_codec, rate=fps)
        picture.width, picture.height, picture.pix_fmt = *size, "yuv420p"
        sound = muxer.add_stream(sound_codec, rate=rate, layout=layout)
        packets = [p for i in range(frames) for p in picture.encode(av.VideoFrame.from_ndarray(
            np.full((size[1], size[0], 3), i * 40 % 256, np.uint8), format="rgb24").reformat(format="yuv420p"))]
        channels = sound.codec_context.layout.nb_channels
        silence = av.AudioFrame.from_ndarray(np.zeros((channels, rate), np.float32), format="fltp", layout=layout)
        silence.sample_rate, silence.pts = rate, 0
        for packet in [*packets, *picture.encode(None), *sound.encode(silence), *sound.encode(None)]:
            muxer.mux(packet)
    return out.getvalue()


def test_an_ogg_video_with_its_sound_is_multiplexed_not_chained():
    """Video and sound begin together (their first pages come first), which is no chain."""
    ogv = film_with_sound("ogg", "libvpx", "libopus", frames=4, fps=4, rate=48_000)
    assert not containers.ogg_is_chained(ogv)
    assert containers.ogg_is_chained(ogv + ogv)
