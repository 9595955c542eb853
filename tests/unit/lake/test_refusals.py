"""The refusal record on its own (delta-rs, a temporary lake; no Spark)."""

import datetime as dt

from palindrom.lake import refusals, tables
from palindrom.lake.paths import Lake
from tests.conftest import lake_path

DAY = dt.datetime(2026, 11, 26, 6, tzinfo=dt.UTC)


def test_a_refused_file_is_named_while_it_waits_in_landing_with_its_latest_reason_recorded_once(lake_config):
    lake = Lake(lake_config.storage_root)
    record = lake.table("bronze.media_refusals")
    folder = lake_path(lake_config) / "landing" / "images"
    folder.mkdir(parents=True)
    for name in ("a.png", "b.png", "c.png"):
        (folder / name).write_bytes(b"x")
    assert refusals.still_refused(lake, record, lambda _: ()) == {}  # no record yet

    refusals.record(record, "run1", DAY, {("images", "a.png"): "old reason", ("images", "b.png"): "why b",
                                          ("images", "gone.png"): "why gone", ("audio", "d.wav"): "why d"})
    refusals.record(record, "run2", DAY + dt.timedelta(days=1), {("images", "a.png"): "new reason"})
    refusals.record(record, "run3", DAY + dt.timedelta(days=2), {})  # a run that refused nothing writes nothing

    taken = {"images": {"b.png"}, "audio": set()}
    assert refusals.still_refused(lake, record, taken.__getitem__) == {
        f"{lake.landing('images')}/a.png": "new reason"}  # b.png taken since; gone.png, d.wav not in landing
    assert len(tables.read_small(record, ["batch_id"])) == 5

    # Refused again for the reason recorded last: nothing committed (a rerun over a waiting file).
    version = tables.current_version(record)
    refusals.record(record, "run4", DAY + dt.timedelta(days=3), {("images", "a.png"): "new reason",
                                                                 ("audio", "d.wav"): "why d"})
    assert tables.current_version(record) == version
    # A reason other than the latest (an earlier one included) is recorded.
    refusals.record(record, "run5", DAY + dt.timedelta(days=4), {("images", "a.png"): "old reason",
                                                                 ("images", "c.png"): "why c"})
    assert tables.current_version(record) == version + 1
    assert refusals.still_refused(lake, record, taken.__getitem__) == {
        f"{lake.landing('images')}/a.png": "old reason", f"{lake.landing('images')}/c.png": "why c"}
