import datetime as dt
import io

import numpy as np
import soundfile as sf

from palindrom.media import containers
from pipelines.sample_data import write_sample_data
from pipelines.sample_media import OGG_SERIAL, tone, with_ogg_serial, write_sample_media


def test_a_seeded_sample_is_the_same_bytes_every_time(tmp_path):
    """Events and media alike (random stream ids and x264's rate control varied from call to call), so
    the digests of everything built from them are the same from run to run."""
    for copy in ("a", "b"):
        write_sample_data(tmp_path / copy / "events", dt.date(2026, 11, 26), users=20)
        write_sample_media(tmp_path / copy)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert {".ogg", ".webm", ".mp4", ".gz"} <= {p.suffix for p in files}
    assert files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    for path in files:
        assert (tmp_path / "a" / path).read_bytes() == (tmp_path / "b" / path).read_bytes(), path


def test_a_fixed_ogg_serial_keeps_the_file_valid():
    out = io.BytesIO()
    sf.write(out, tone(0.5, 22_050), 22_050, format="OGG", subtype="VORBIS")
    original = out.getvalue()
    first_page_end = 27 + original[26] + sum(original[27:27 + original[26]])
    page = original[:first_page_end]
    assert containers.ogg_page_checksum(page) == int.from_bytes(original[22:26], "little")  # the one libogg wrote

    fixed = with_ogg_serial(original, OGG_SERIAL)
    assert len(fixed) == len(original)
    assert {int.from_bytes(fixed[i + 14:i + 18], "little") for i in range(len(fixed)) if fixed[i:i + 4] == b"OggS"} \
        == {OGG_SERIAL}
    decoded, rate = sf.read(io.BytesIO(fixed), dtype="float32")  # libogg refuses a page whose checksum is wrong
    assert rate == 22_050
    np.testing.assert_array_equal(decoded, sf.read(io.BytesIO(original), dtype="float32")[0])
