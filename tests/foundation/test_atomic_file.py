"""One atomic, durable file replacement for every file authswitch writes."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from foundation.atomic_file import NEW_FILE_MODE, write_file_atomically
from tests.foundation.durability import record_durability_steps


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_gets_the_bytes_and_the_default_mode(tmp_path: Path) -> None:
    target = tmp_path / "flags.yaml"
    write_file_atomically(target, b"version: 1\n")
    assert target.read_bytes() == b"version: 1\n"
    assert _mode(target) == NEW_FILE_MODE
    assert [p.name for p in tmp_path.iterdir()] == ["flags.yaml"]


def test_a_replaced_file_keeps_its_permissions(tmp_path: Path) -> None:
    target = tmp_path / "map.yaml"
    target.write_bytes(b"old")
    target.chmod(0o640)
    write_file_atomically(target, b"new")
    assert target.read_bytes() == b"new"
    assert _mode(target) == 0o640


def test_an_explicit_mode_wins_over_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "export.csv"
    target.write_bytes(b"old")
    target.chmod(0o644)
    write_file_atomically(target, b"secret cells", mode=0o600)
    assert _mode(target) == 0o600


def test_a_failed_replace_leaves_the_old_target_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "state"
    target.mkdir()  # os.replace of a file over a directory fails
    (target / "inside").write_bytes(b"kept")
    with pytest.raises(OSError):
        write_file_atomically(target, b"new")
    assert (target / "inside").read_bytes() == b"kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state"]


def test_the_file_and_then_its_directory_are_fsynced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The durability rule: the data reaches the disk before the rename, the rename after it.
    steps = record_durability_steps(monkeypatch)
    write_file_atomically(tmp_path / "checkpoint.json", b"{}")
    assert steps == ["file", "rename", "dir"]
