"""What media files say of themselves, read from their bytes without decoding: the sizes the audio
containers declare for their samples (WAV, RF64, Wave64, AIFF, AU, CAF, NIST SPHERE, AVR, Amiga
8SVX/16SV) and the blocks of a Creative Voice File; the sizes the video containers give their parts
(ISO BMFF, Matroska/WebM, AVI, FLV, ASF, MPEG program and transport streams); the frames of MPEG
audio, ADTS, AC-3 and E-AC-3 streams and MP3 frame count headers; Ogg pages (their checksums,
sequence, chained streams); ID3v2 tags; the signatures of formats `filetype` does not know (SVG,
WavPack, TTA) and how raw video streams begin. `decoding` holds the decoders to them: libsndfile and
FFmpeg read a cut file as a shorter one, libsndfile a chained Ogg as its first stream, and FFmpeg
start codes found anywhere as a raw video stream."""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import NamedTuple


def id3v2_end(data: bytes) -> int:
    """Where a leading ID3v2 tag ends (its size: four 7-bit bytes after a 10-byte header), or 0."""
    if data[:3] != b"ID3" or len(data) < 10:
        return 0
    return 10 + ((data[6] & 0x7F) << 21 | (data[7] & 0x7F) << 14 | (data[8] & 0x7F) << 7 | (data[9] & 0x7F))


def _ends_past(part: str, end: int, length: int) -> str:
    """The detail for a file cut inside one of its parts."""
    return f"truncated: its {part} ends at byte {end}, the file at byte {length}"


# How each raw video elementary stream that FFmpeg reads begins, by FFmpeg's name for the format: a
# start code (00 00 01, after any zero bytes) or an H.261/H.263 picture start code. FFmpeg's probes
# for these look for such codes anywhere in the bytes, so damaged or headerless media (zeros in a PCM
# recording) can pass for a one-frame H.263 video.
_START_CODE = re.compile(rb"\x00{2,}\x01")
_RAW_VIDEO_STARTS = {
    **dict.fromkeys(("h264", "hevc", "vvc", "m4v", "mpegvideo", "cavsvideo", "avs2", "avs3"),
                    lambda data: _START_CODE.match(data) is not None),
    "h263": lambda data: data[:2] == b"\0\0" and len(data) > 2 and data[2] & 0xFC == 0x80,
    "h261": lambda data: data[:2] == b"\0\x01" and len(data) > 2 and data[2] & 0xF0 == 0,
}


def raw_video_misread(format_name: str, data: bytes) -> bool:
    """Whether FFmpeg took the bytes for a raw video elementary stream (`format_name`) that they do
    not begin as."""
    starts = _RAW_VIDEO_STARTS.get(format_name.split(",")[0])
    return starts is not None and not starts(data)


# An SVG document's start: an optional BOM, XML declaration, comments and doctype, then its root.
_SVG_START = re.compile(rb"(?:\xef\xbb\xbf)?\s*(?:<\?xml[^>]*>\s*)?(?:(?:<!--.*?-->|<!DOCTYPE[^>]*>)\s*)*<svg[\s>]",
                        re.DOTALL)


def is_svg(data: bytes) -> bool:
    """Whether the bytes are an SVG image (XML text, which `filetype` does not look at): a vector
    image that no decoder here rasterises."""
    return _SVG_START.match(data[:4096]) is not None


class _OggPage(NamedTuple):
    offset: int
    size: int  # header, segment table and body
    flags: int  # the header type: 0x02 begins a stream
    serial: bytes  # the stream's


def _ogg_pages(data: bytes):
    """Each page of an Ogg file, walked by the sizes in their headers, up to bytes that begin no page
    (the end, or a tag a tagger appended); a cut last page comes out whole, ending past the file."""
    offset = 0
    while data[offset:offset + 4] == b"OggS":
        header = data[offset:offset + 27].ljust(27, b"\x00")
        segments = header[26]
        size = 27 + segments + sum(data[offset + 27:offset + 27 + segments])
        yield _OggPage(offset, size, header[5], header[14:18])
        offset += size


def ogg_is_chained(data: bytes) -> bool:
    """Whether an Ogg file is several streams one after the other (an internet radio's recording, or
    files joined): a page that begins a stream after one that does not. libsndfile reads the first
    alone, and its length as the file's."""
    begun = False
    for page in _ogg_pages(data):
        beginning = bool(page.flags & 0x02)
        if beginning and begun:
            return True
        begun = begun or not beginning
    return False


# Ogg's page checksum is CRC-32 with zlib's polynomial unreflected, from 0 and without a final XOR:
# zlib's (reflected) CRC of the bytes with their bits reversed is that checksum with its bits reversed.
_BITS_REVERSED = bytes(int(f"{byte:08b}"[::-1], 2) for byte in range(256))


def ogg_page_checksum(page: bytes) -> int:
    """The checksum of an Ogg page, computed with its own checksum field (bytes 22-25) zeroed."""
    page = page[:22] + bytes(4) + page[26:]
    reflected = zlib.crc32(page.translate(_BITS_REVERSED), 0xFFFFFFFF) ^ 0xFFFFFFFF  # from 0, no final XOR
    return int(f"{reflected:032b}"[::-1], 2)


def _ogg_fault(data: bytes) -> str | None:
    """The first page of an Ogg file that was cut short, fails its checksum or comes out of sequence
    in its stream (pages missing). libsndfile and FFmpeg skip or stop at such a page without a word,
    and give what they decoded as the whole: a second of a three-second voice note."""
    sequence: dict[bytes, int] = {}
    for page in _ogg_pages(data):
        if page.offset + page.size > len(data):
            return _ends_past("'page'", page.offset + page.size, len(data))
        raw = data[page.offset:page.offset + page.size]
        if ogg_page_checksum(raw) != int.from_bytes(raw[22:26], "little"):
            return f"damaged: its page at byte {page.offset} fails its checksum"
        number = int.from_bytes(raw[18:22], "little")
        restarts = page.flags & 0x02  # a chained stream's first page (its serial may be the last one's)
        if page.serial in sequence and not restarts and number != sequence[page.serial] + 1:
            return f"damaged: its page at byte {page.offset} is page {number}, after page {sequence[page.serial]}"
        sequence[page.serial] = number
    return None


# MPEG audio frame headers: kbit/s by (MPEG-1 or not, layer) and bit-rate index; Hz by version.
_MPEG_KBPS = {
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MPEG_HZ = {3: (44_100, 48_000, 32_000), 2: (22_050, 24_000, 16_000), 0: (11_025, 12_000, 8_000)}


def _mpeg_frame_bytes(header: bytes) -> int | None:
    """The length of the MPEG audio frame this 4-byte header begins, or None if it is not one."""
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return None
    version, layer = (header[1] >> 3) & 3, 4 - ((header[1] >> 1) & 3)  # layer: 1, 2 or 3 (4: reserved)
    rate_index, hz_index, padding = header[2] >> 4, (header[2] >> 2) & 3, (header[2] >> 1) & 1
    if version == 1 or layer == 4 or rate_index in (0, 15) or hz_index == 3:  # reserved, or free format
        return None
    bits = _MPEG_KBPS[(version == 3, layer)][rate_index] * 1000
    hz = _MPEG_HZ[version][hz_index]
    if layer == 1:
        return (12 * bits // hz + padding) * 4
    return (144 if layer == 2 or version == 3 else 72) * bits // hz + padding


def _adts_frame_bytes(header: bytes) -> int | None:
    """The length of the AAC frame this ADTS header begins (13 bits of it, the header included), or None."""
    if len(header) < 7 or header[0] != 0xFF or header[1] & 0xF6 != 0xF0:  # sync, then layer 0
        return None
    size = (header[3] & 0x03) << 11 | header[4] << 3 | header[5] >> 5
    return size if size >= 7 else None


_AC3_KBPS = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 576, 640)


def _ac3_frame_bytes(header: bytes) -> int | None:
    """The length of the AC-3 or E-AC-3 frame this sync information begins, or None: AC-3's from its
    bit rate and sample rate (1,536 samples a frame; 44.1 kHz frames alternate by one word), E-AC-3's
    stated in 16-bit words."""
    if len(header) < 6 or header[:2] != b"\x0b\x77":
        return None
    bsid = header[5] >> 3
    if bsid <= 10:
        fscod, code = header[4] >> 6, header[4] & 0x3F
        if fscod == 3 or code >= 2 * len(_AC3_KBPS):
            return None
        kbps = _AC3_KBPS[code >> 1]
        return 2 * (2 * kbps, kbps * 320 // 147 + (code & 1), 3 * kbps)[fscod]  # 48, 44.1, 32 kHz
    if bsid <= 16:
        return 2 * (((header[2] & 0x07) << 8 | header[3]) + 1)
    return None


# Audio streams that are frames one after another, each header giving its frame's length, with the
# bytes their headers take and their MIME type: MPEG audio (MP3, MP2), AAC in ADTS, AC-3 and E-AC-3.
_FRAMED_AUDIO = ((_mpeg_frame_bytes, 4, "audio/mpeg"), (_adts_frame_bytes, 7, "audio/aac"),
                 (_ac3_frame_bytes, 6, "audio/ac3"))


def _framing(data: bytes):
    """((frame_bytes, header_bytes, mime), offset) of the framed audio whose header begins the bytes
    after any ID3v2 tag, or None. The kinds' headers exclude one another (0xFFE.. with a layer,
    0xFFF with layer 0, 0x0B77)."""
    offset = id3v2_end(data)
    for kind in _FRAMED_AUDIO:
        if kind[0](data[offset:offset + kind[1]]) is not None:
            return kind, offset
    return None


def framed_audio_mime(data: bytes) -> str | None:
    """The MIME type of a stream of audio frames (after any ID3v2 tag), or None: its first two frames'
    headers must parse, as one alone could by chance. `filetype` knows MP3 and ADTS but not MP2 or AC-3."""
    if (framing := _framing(data)) is None:
        return None
    (frame_bytes, header_bytes, mime), offset = framing
    size = frame_bytes(data[offset:offset + header_bytes])
    if frame_bytes(data[offset + size:offset + size + header_bytes]) is None:
        return None
    return "audio/eac3" if mime == "audio/ac3" and data[offset + 5] >> 3 > 10 else mime


def _framed_audio_cut(data: bytes) -> str | None:
    """Where a stream of audio frames ends inside its last frame, or None. Nothing states such a
    stream's length (but an MP3's Xing header), and its decoders drop a partial last frame silently;
    each frame's header gives its size, though, so a file cut at any byte but a frame's end shows.
    The walk starts after an ID3v2 tag and stops at whatever is not a frame (an ID3v1 or APE tag at
    the end)."""
    if (framing := _framing(data)) is None:
        return None
    (frame_bytes, header_bytes, _), offset = framing
    while (size := frame_bytes(data[offset:offset + header_bytes])) is not None:
        if offset + size > len(data):
            return _ends_past("last frame", offset + size, len(data))
        offset += size
    return None


def mpeg_audio_states_its_length(data: bytes) -> bool:
    """Whether an MP3 (or MP2) carries its frame count: a Xing/Info (LAME) or VBRI header in its first
    frame, looked for after any ID3v2 tag (whose text could hold those letters)."""
    start = id3v2_end(data)
    first_frame = data[start:start + 2048]  # the largest MPEG audio frame is 1,441 bytes, after some padding
    return any(tag in first_frame for tag in (b"Xing", b"Info", b"VBRI"))


# The audio containers libsndfile reads whose headers declare the size of their samples (a VOC file's
# blocks do), by their first bytes. The rarer ones' MIME types are GStreamer's ("audio/x-" and a name).
_W64_RIFF = b"riff\x2e\x91\xcf\x11\xa5\xd6\x28\xdb\x04\xc1\x00\x00"  # Sony Wave64's GUIDs
_W64_DATA = b"data\xf3\xac\xd3\x11\x8c\xd1\x00\xc0\x4f\x8e\xdb\x8a"
_VOC_MAGIC = b"Creative Voice File\x1a"
AUDIO_CONTAINER_MIME = {"wav": "audio/x-wav", "w64": "audio/x-w64", "aiff": "audio/x-aiff", "au": "audio/basic",
                        "caf": "audio/x-caf", "nist": "audio/x-nist", "avr": "audio/x-avr", "svx": "audio/x-svx",
                        "voc": "audio/x-voc"}


# Audio formats only FFmpeg reads here, by their first bytes: named so that a damaged one is corrupt,
# not an unrecognised format.
FFMPEG_AUDIO_MAGIC = {b"wvpk": "audio/x-wavpack", b"TTA1": "audio/x-tta"}


def audio_container(data: bytes) -> str | None:
    """wav (RIFF, and RF64/BW64 for files over 4 GiB), w64, aiff (AIFF and AIFC), au, caf, nist (NIST
    SPHERE: the speech corpora's format), avr (Audio Visual Research), svx (Amiga IFF 8SVX/16SV), voc
    (Creative Voice File), or None."""
    if data[:4] in (b"RIFF", b"RF64", b"BW64") and data[8:12] == b"WAVE":
        return "wav"
    if data[:16] == _W64_RIFF:
        return "w64"
    if data[:4] == b"FORM" and data[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if data[:4] == b"FORM" and data[8:12] in (b"8SVX", b"16SV"):
        return "svx"
    if data[:20] == _VOC_MAGIC:
        return "voc"
    if data[:8] == b"NIST_1A\n":
        return "nist"
    return {b".snd": "au", b"caff": "caf", b"2BIT": "avr"}.get(data[:4])


@dataclass(frozen=True)
class DataClaim:
    declared: int | None  # bytes of samples the header declares; None where its writer could not say
    present: int  # bytes after the data chunk's header, to the end of the file


def audio_data_claim(data: bytes) -> DataClaim | None:
    """What a chunked audio container's header says of its sample data, from its chunks, or None for
    another format or no data chunk. libsndfile (and FFmpeg) read a truncated file as a shorter one,
    for every codec: the bytes declared against the bytes there tell. Unknown (None) where a writer
    that could not seek back left the size unset (a file written to a pipe): 0xFFFFFFFF in a WAV, RF64
    or AU, 0 with samples after it in a WAV or RF64, -1 in a CAF."""
    container = audio_container(data)
    if container == "au":  # a fixed header: data offset and size
        offset, size = int.from_bytes(data[4:8], "big"), int.from_bytes(data[8:12], "big")
        return DataClaim(None if size == 0xFFFFFFFF else size, len(data) - offset)
    if container == "wav":
        rf64_size = None  # RF64's data size, in its ds64 chunk (the data chunk's own says 0xFFFFFFFF)
        for chunk, body, size in _chunks(data, 12, 4, "little"):
            if chunk == b"ds64":
                rf64_size = int.from_bytes(data[body + 8:body + 16], "little")
            elif chunk == b"data":
                present = len(data) - body
                if size == 0xFFFFFFFF:
                    size = rf64_size
                return DataClaim(None if size is None or (size == 0 and present > 0) else size, present)
    elif container == "w64":
        for chunk, body, size in _chunks(data, 40, 16, "little", size_bytes=8, header_counted=True, align=8):
            if chunk == _W64_DATA:
                return DataClaim(size, len(data) - body)
    elif container == "aiff":
        for chunk, body, size in _chunks(data, 12, 4, "big"):
            if chunk == b"SSND":  # after its offset and block size fields, `offset` bytes before the samples
                skip = 8 + int.from_bytes(data[body:body + 4], "big")
                return DataClaim(size - skip, len(data) - body - skip)
    elif container == "caf":
        for chunk, body, size in _chunks(data, 8, 4, "big", size_bytes=8, align=1):
            if chunk == b"data":  # after a 4-byte edit count
                return DataClaim(None if size == -1 else size - 4, len(data) - body - 4)
    elif container == "svx":
        for chunk, body, size in _chunks(data, 12, 4, "big"):
            if chunk == b"BODY":
                return DataClaim(size, len(data) - body)
    elif container == "avr":  # a 128-byte header: 0xFFFF for stereo, bits a sample, sample frames
        channels = 2 if data[12:14] == b"\xff\xff" else 1
        bits, frames = int.from_bytes(data[14:16], "big"), int.from_bytes(data[26:30], "big")
        return DataClaim(frames * channels * (bits // 8), max(0, len(data) - 128))
    elif container == "nist":
        return _nist_claim(data)
    return None


def _nist_claim(data: bytes) -> DataClaim | None:
    """A NIST SPHERE header is text: "NIST_1A", its own size, then `name -type value` lines up to
    "end_head". Its samples are sample_count x channel_count x sample_n_bytes bytes, unless they are
    compressed (shorten, wavpack: no decoder here reads those), where no size is claimed."""
    lines = data[:64].split(b"\n")
    if len(lines) < 3 or not lines[1].strip().isdigit():
        return None
    header = int(lines[1])
    fields = {}
    for line in data[:header].split(b"\n")[2:]:
        parts = line.split(maxsplit=2)
        if parts == [b"end_head"]:
            break
        if len(parts) == 3:
            fields[parts[0]] = parts[2]
    coding = fields.get(b"sample_coding", b"pcm")
    if not all(fields.get(k, b"").isdigit() for k in (b"sample_count", b"channel_count", b"sample_n_bytes")) \
            or coding.split(b",")[0] not in (b"pcm", b"ulaw", b"mu-law", b"alaw") or b"," in coding:
        return None
    declared = int(fields[b"sample_count"]) * int(fields[b"channel_count"]) * int(fields[b"sample_n_bytes"])
    return DataClaim(declared, max(0, len(data) - header))


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


def container_fault(data: bytes) -> str | None:
    """Where a file ends before its own structure says it does, or None: the top-level boxes of an
    ISO BMFF file (MP4, MOV, 3GP, M4A), the segment of a Matroska or WebM file, the RIFF chunks of an
    AVI, the tags of an FLV, an ASF's (WMV, WMA) stated size, the packs and packets of an MPEG
    program stream (MPG, VOB), the packets of an MPEG transport stream, the frames of an MP3, MP2,
    AAC (ADTS), AC-3 or E-AC-3 stream, the blocks of a Creative Voice File; and the pages of an Ogg
    file, whose checksums and sequence numbers also show one damaged or missing. FFmpeg reads each
    of these cut as a shorter one, except an MP4 cut in its index: damaged, or holding no codec it
    knows. A size a live writer leaves unknown is no claim. A file cut exactly between two frames,
    packets or pages cannot be told from a whole one."""
    if data[4:8] in _ISO_BMFF_FIRST_BOXES:
        return _cut_in(_iso_boxes(data), len(data))
    if data[:4] == b"RIFF" and data[8:12] == b"AVI ":
        return _cut_in(_chunks(data, 12, 4, "little"), len(data))
    if data[:4] == _EBML_MAGIC:
        return _cut_in(_ebml_elements(data), len(data))
    if (cut := _framed_audio_cut(data)) is not None:
        return cut
    if data[:20] == _VOC_MAGIC:
        return _cut_in(_voc_blocks(data), len(data))
    if data[:4] == b"OggS":
        return _ogg_fault(data)
    if data[:4] == b"FLV\x01":
        return _cut_in(_flv_tags(data), len(data))
    if data[:16] == _ASF_HEADER:
        return _asf_cut(data)
    if data[:4] == b"\x00\x00\x01\xba":
        return _cut_in(_program_stream_packets(data), len(data))
    return _transport_stream_cut(data)


_FLV_TAGS = {8: b"audio tag", 9: b"video tag", 18: b"script tag"}


def _flv_tags(data: bytes):
    """(name, offset, size) of each tag of an FLV file: an 11-byte header, its data, then the 4-byte
    size of the tag before the next (FFmpeg writes one after the last tag too)."""
    offset = int.from_bytes(data[5:9], "big") + 4  # the file header, then the size of "tag 0"
    while offset < len(data) and (name := _FLV_TAGS.get(data[offset] & 0x1F)) is not None:
        size = 11 + int.from_bytes(data[offset + 1:offset + 4], "big") + 4
        yield name, offset, size
        offset += size


_ASF_HEADER = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")  # the GUIDs of ASF's header object
_ASF_FILE_PROPERTIES = bytes.fromhex("a1dcab8c47a9cf118ee400c00c205365")  # ... and its file properties


def _asf_cut(data: bytes) -> str | None:
    """An ASF file's header object holds a File Properties object that states the file's size, except
    where it was broadcast (bit 0 of its flags: the size is then not known) or left 0."""
    header_end = int.from_bytes(data[16:24], "little")
    if header_end > len(data):
        return _ends_past("'Header'", header_end, len(data))
    offset = 30  # the header object's own 16-byte id, 8-byte size, 4-byte count and 2 reserved bytes
    while offset + 24 <= header_end:
        size = int.from_bytes(data[offset + 16:offset + 24], "little")
        if data[offset:offset + 16] == _ASF_FILE_PROPERTIES and size >= 92 and offset + 92 <= len(data):
            stated, flags = int.from_bytes(data[offset + 40:offset + 48], "little"), data[offset + 88]
            if stated > len(data) and not flags & 1:
                return f"truncated: its header states {stated} bytes, the file has {len(data)}"
            return None
        if size < 24:
            return None
        offset += size
    return None


def _program_stream_packets(data: bytes):
    """(name, offset, size) of each pack header, system header and packet of an MPEG-1 or MPEG-2
    program stream, to its end code; a pack header is 12 bytes (MPEG-1) or 14 and its stuffing
    (MPEG-2), the others give their length after their start code. Anything else ends the walk."""
    offset = 0
    while offset + 4 <= len(data) and data[offset:offset + 3] == b"\x00\x00\x01":
        code = data[offset + 3]
        if code == 0xBA:
            mpeg2 = offset + 4 < len(data) and data[offset + 4] >> 6 == 1  # MPEG-1's marker bits are 0010
            stuffing = data[offset + 13] & 7 if mpeg2 and offset + 13 < len(data) else 0
            name, size = b"pack header", (14 + stuffing if mpeg2 else 12)
        elif code >= 0xBB and code != 0xB9:
            name = b"system header" if code == 0xBB else b"packet"
            size = 6 + int.from_bytes(data[offset + 4:offset + 6], "big") if offset + 6 <= len(data) else 6
        else:  # the end code (0xB9), or not a program stream's
            return
        yield name, offset, size
        offset += size


def transport_stream_packet(data: bytes) -> int | None:
    """The packet size of an MPEG transport stream, or None for other bytes: 188, or 192 in a Blu-ray's
    M2TS (a 4-byte time code first). Each packet begins with the sync byte 0x47; the bytes are taken
    for a transport stream where their first three packets do."""
    for unit, sync in ((188, 0), (192, 4)):
        if len(data) >= 3 * unit and all(data[i * unit + sync] == 0x47 for i in range(3)):
            return unit
    return None


def _transport_stream_cut(data: bytes) -> str | None:
    """A partial packet at the end of a transport stream, sync byte and all, was cut."""
    if (unit := transport_stream_packet(data)) is None:
        return None
    last, sync = len(data) - len(data) % unit, unit - 188  # M2TS: the sync byte after a 4-byte time code
    if last + sync < len(data) and data[last + sync] == 0x47:
        return _ends_past("last packet", last + unit, len(data))
    return None


_VOC_BLOCKS = {1: b"sound data", 2: b"sound continuation", 3: b"silence", 4: b"marker", 5: b"text",
               6: b"repeat", 7: b"end repeat", 8: b"extended", 9: b"sound data"}


def _voc_blocks(data: bytes):
    """(name, offset of its body, size) of each block of a Creative Voice File, from the offset its
    header gives (bytes 20-21) to the terminator (type 0), each a type byte and a 3-byte size."""
    offset = int.from_bytes(data[20:22], "little")
    while offset < len(data) and data[offset] in _VOC_BLOCKS:
        size = int.from_bytes(data[offset + 1:offset + 4], "little") if offset + 4 <= len(data) else 0
        yield _VOC_BLOCKS[data[offset]], offset + 4, size
        offset += 4 + size


_ISO_BMFF_FIRST_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")  # older QuickTime files: no ftyp
_EBML_MAGIC, _MATROSKA_SEGMENT, _MATROSKA_CLUSTER = b"\x1a\x45\xdf\xa3", 0x18538067, 0x1F43B675


def _cut_in(parts, length: int) -> str | None:
    """The first of `parts` ((name, start, size): the part's bytes, or its body's) that runs past
    `length`, as a detail. A name that is not printable ASCII is trailing junk, not a part (a
    camera's padding), so it ends the walk; so does a size that is unknown."""
    for name, offset, size in parts:
        if size is None or not all(32 <= c < 127 for c in name):
            return None
        if offset + size > length:
            return _ends_past(f"'{name.decode()}'", offset + size, length)
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


# The elements whose sizes a cut Matroska or WebM file is held to: the top-level ones, and inside a
# Segment of unknown size (a live writer's: a browser's MediaRecorder) its children and its Clusters'.
_EBML_TOP = {0x1A45DFA3: b"EBML", _MATROSKA_SEGMENT: b"Segment"}
_EBML_IN_SEGMENT = {0x114D9B74: b"SeekHead", 0x1549A966: b"Info", 0x1654AE6B: b"Tracks", _MATROSKA_CLUSTER: b"Cluster",
                    0x1C53BB6B: b"Cues", 0x1043A770: b"Chapters", 0x1254C367: b"Tags", 0x1941A469: b"Attachments",
                    0xEC: b"Void", 0xBF: b"CRC-32", 0xE7: b"Timestamp", 0xA3: b"SimpleBlock", 0xA0: b"BlockGroup",
                    0xA7: b"Position", 0xAB: b"PrevSize", 0xAF: b"EncryptedBlock", 0x5854: b"SilentTracks"}


def _ebml_elements(data: bytes):
    """(name, offset of its body, size) of the top-level elements after the EBML header and, in a
    Segment whose size is unknown, of what it holds, stepping into Clusters of unknown size too: a
    cut live recording ends inside one of their blocks. The walk stops at an element it does not
    know there (junk after the file) and at one it cannot size."""
    at, known = 0, _EBML_TOP
    while at < len(data):
        element, at = _ebml_vint(data, at, keep_marker=True)
        size, at = _ebml_vint(data, at)
        if element not in known:
            return
        if size is None:
            if element not in (_MATROSKA_SEGMENT, _MATROSKA_CLUSTER):
                return
            known = _EBML_IN_SEGMENT  # its children follow, to the end of the file
            continue
        yield known[element], at, size
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
