import datetime as dt
import io

import numpy as np
import pytest
import soundfile as sf

from palindrom.logging import logger
from palindrom.media import containers
from pipelines import cli
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


def test_a_landing_file_is_never_rewritten(tmp_path, caplog, monkeypatch):
    """The same bytes again leave the files as they are; other bytes under a written name fail, naming
    it (an ingest may have taken it as it was), and change nothing."""
    events, day = tmp_path / "landing" / "events", dt.date(2026, 11, 26)
    assert write_sample_data(events, day, users=20).already_there == []
    written = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in events.rglob("*") if p.is_file()}
    again = write_sample_data(events, day, users=20)
    assert again.already_there == again.files
    with pytest.raises(FileExistsError, match=r"events-0001\.jsonl is already in landing with other content"):
        write_sample_data(events, day, users=20, seed=8)
    assert cli.main(["sample-data", "--root", str(tmp_path), "--date", str(day), "--users", "20"]) == 0
    monkeypatch.setattr(logger, "propagate", True)  # the command's error, to caplog
    assert cli.main(["sample-data", "--root", str(tmp_path), "--date", str(day), "--users", "21"]) == 2
    assert "is already in landing with other content" in caplog.text
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in events.rglob("*") if p.is_file()} == written


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
