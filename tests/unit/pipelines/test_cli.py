import pytest

from tests.conftest import run_cli


@pytest.mark.parametrize("media", [False, True])
def test_an_unknown_quarantine_reason_code_is_named_with_the_known_ones(tmp_path, media):
    flags = ["--media"] * media
    result = run_cli("quarantine", "list", *flags, "--root", str(tmp_path), "--reason", "invalid-json", check=False)
    assert result.returncode == 2
    kind, known = ("media", "unrecognised_format") if media else ("event", "invalid_json")
    assert f"no such {kind} reason code: invalid-json (the codes: " in result.stderr
    assert known in result.stderr
