"""The export state: a page the cursor does not cover is cut off on resume, duplicates are kept
once, a state file of another source or a damaged one is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proxy.users_export import ExportState, StateRefused


def _line(i: int) -> dict[str, str]:
    return {"email": f"u{i}@example.com", "external_id": f"id-{i}"}


def test_bytes_written_after_the_last_cursor_are_cut_off_on_resume(tmp_path: Path) -> None:
    out = tmp_path / "users.ndjson"
    state = ExportState.open(out, "okta x")
    state.append([_line(1), _line(2)], [], "cursor-2")
    # Killed after the next page was written but before its cursor: a torn, uncovered tail.
    with out.open("ab") as file:
        file.write(json.dumps(_line(3)).encode() + b"\n" + b'{"email": "u4@ex')
    resumed = ExportState.open(out, "okta x")
    assert resumed.cursor == "cursor-2" and resumed.users == 2
    assert out.read_bytes().count(b"\n") == 2
    resumed.append([_line(3), _line(4)], [], None)
    assert [json.loads(t)["external_id"] for t in out.read_text().splitlines()] == [
        "id-1",
        "id-2",
        "id-3",
        "id-4",
    ]
    assert resumed.done


def test_a_user_listed_twice_is_written_once(tmp_path: Path) -> None:
    out = tmp_path / "users.ndjson"
    state = ExportState.open(out, "auth0 x")
    assert state.append([_line(1), _line(2)], [], "1") == 2
    # Offset paging while a user was added: the next page starts with the last one again.
    assert state.append([_line(2), _line(3)], ["no email"], None) == 1
    resumed = ExportState.open(out, "auth0 x")
    assert resumed.users == 3 and resumed.skipped == {"no email": 1}
    assert len(out.read_text().splitlines()) == 3


def test_a_cursor_that_is_not_ours_or_a_shortened_file_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "users.ndjson"
    state = ExportState.open(out, "okta x")
    state.append([_line(1)], [], "c")
    state.cursor_path.write_text('{"format": 99}')
    with pytest.raises(StateRefused, match="not an export cursor file"):
        ExportState.open(out, "okta x")
    state.cursor_path.write_text("{")
    with pytest.raises(StateRefused, match="can't be read"):
        ExportState.open(out, "okta x")
    state._write_cursor()
    out.write_text("")
    with pytest.raises(StateRefused, match="shorter than its cursor"):
        ExportState.open(out, "okta x")
    out.unlink()
    with pytest.raises(StateRefused, match="is gone"):
        ExportState.open(out, "okta x")
