"""Watching the durability rule of a file write: file fsynced, then renamed, then its directory."""

from __future__ import annotations

import os
import stat

import pytest


def record_durability_steps(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The steps of every later write, in order: ``file`` / ``dir`` fsyncs and ``rename``s."""
    steps: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        steps.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        steps.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return steps
