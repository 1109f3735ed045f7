"""Progress: periodic plain lines on stderr when it is not a terminal."""

from __future__ import annotations

import pytest

from proxy.users_import import progress
from proxy.users_import.progress import ImportProgress


def test_plain_lines_when_stderr_is_not_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(progress, "PLAIN_EVERY_SECONDS", 0.0)
    with ImportProgress(total=200, done=50, tty=False) as shown:
        shown.advance(50)
        shown.advance(100)

    lines = capsys.readouterr().err.splitlines()
    assert [line.split(",")[0] for line in lines] == [
        "users import: 100/200 users (50%)",
        "users import: 200/200 users (100%)",
    ]
    assert all(line.endswith("users/s") for line in lines)


def test_no_plain_lines_between_intervals(capsys: pytest.CaptureFixture[str]) -> None:
    with ImportProgress(total=10, tty=False) as shown:
        shown.advance(10)

    assert capsys.readouterr().err == ""  # the first line comes after PLAIN_EVERY_SECONDS
