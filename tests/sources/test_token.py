"""TokenFile: the projected token, re-read when the file changes, at most once per recheck."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from meshclient.sources import TokenFile


def test_rotation_is_seen_after_the_recheck_interval(tmp_path: Path) -> None:
    now = [0.0]
    path = tmp_path / "token"
    path.write_text("first\n")
    token = TokenFile(path, clock=lambda: now[0], recheck=1.0)
    first = token.token()
    assert first == "first"
    new = tmp_path / "token.new"
    new.write_text("second\n")
    os.replace(new, path)  # what the kubelet does
    now[0] = 0.5
    assert token.token() is first  # not looked at yet
    now[0] = 1.5
    assert token.token() == "second"


def test_a_file_gone_later_keeps_the_last_token(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    path = tmp_path / "token"
    path.write_text("kept")
    token = TokenFile(path, clock=lambda: now[0])
    path.unlink()
    now[0] = 5.0
    assert token.token() == "kept"
    assert "could not re-read the token file" in caplog.text


def test_an_unreadable_file_at_start_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        TokenFile(tmp_path / "missing", clock=lambda: 0.0)
