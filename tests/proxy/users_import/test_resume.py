"""Crash in the middle (SIGKILL), resume from the checkpoint; a changed input is refused."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.proxy.users_import.import_support import (
    CountingScim,
    adds_up,
    run_import,
    start_import_process,
    user_line,
    write_config,
    write_ndjson,
)

USERS = 300
BATCH = 10
BATCHES = USERS // BATCH


@pytest.fixture
def slow_scim() -> Iterator[CountingScim]:
    # Each /Bulk answer is held 80 ms after the work is done: ~1.5 s in all, killable mid-way.
    server = CountingScim(delay_seconds=0.08)
    yield server
    server.server.stop()


def completed_batches(checkpoint: Path) -> set[int]:
    try:
        ranges = json.loads(checkpoint.read_text())["completed"]
    except (FileNotFoundError, ValueError):
        return set()
    return {i for first, last in ranges for i in range(first, last + 1)}


@pytest.mark.parametrize("on_existing", ["ignore", "fail"])
def test_a_killed_import_resumes_without_duplicates(
    tmp_path: Path, slow_scim: CountingScim, on_existing: str
) -> None:
    """Killed while the server has created a batch it has not answered yet: the re-run finds
    those users there and counts them as already present (with `fail` too: they are its own)."""
    file = write_ndjson(tmp_path / "users.ndjson", [user_line(i) for i in range(USERS)])
    config = write_config(tmp_path, slow_scim)
    checkpoint = file.with_name(file.name + ".checkpoint")
    options = ("--batch-size", str(BATCH), "--parallel", "2", "--on-existing", on_existing)

    process = start_import_process(file, config, *options)
    try:
        deadline = time.monotonic() + 30
        while len(completed_batches(checkpoint)) < 6 or not slow_scim.created_unanswered():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no progress in the checkpoint"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL
    done_before = completed_batches(checkpoint)
    assert 6 <= len(done_before) < BATCHES  # killed mid-way
    before = len(slow_scim.users())
    assert before < USERS
    time.sleep(0.2)  # let a request the killed process had sent finish at the server
    slow_scim.requests.clear()

    result, report = run_import(file, config, *options)

    assert result.exit_code == 0, result.output
    users = slow_scim.users()
    counts = Counter(user["userName"] for user in users)
    assert len(users) == USERS and set(counts.values()) == {1}
    assert report is not None and adds_up(report)
    assert report["imported"] + report["skipped_already_present"] == USERS
    assert report["failed"] == 0 and report["stopped"] is None
    assert report["skipped_already_present"] >= BATCH  # the batch created but not answered
    assert report["resumed_batches"] == len(done_before)
    # Completed batches were not sent again; the in-flight ones were, idempotently.
    assert slow_scim.requests[("POST", "/v2/Bulk")] == BATCHES - len(done_before)
    assert not checkpoint.exists()


def test_a_changed_input_is_refused_against_its_checkpoint(tmp_path: Path) -> None:
    scim = CountingScim()
    try:
        config = write_config(tmp_path, scim)
        assert (
            run_import(write_ndjson(tmp_path / "one.ndjson", [user_line(12)]), config)[0].exit_code
            == 0
        )
        lines = [user_line(i) for i in range(20)]
        file = write_ndjson(tmp_path / "users.ndjson", lines)
        options = ("--batch-size", "5", "--parallel", "1")
        stopped, _ = run_import(file, config, *options, "--on-existing", "fail")
        assert stopped.exit_code == 1  # stopped at line 13 (user 12); batches 0-1 are done
        checkpoint = file.with_name(file.name + ".checkpoint")
        assert completed_batches(checkpoint) == {0, 1}

        write_ndjson(file, [*lines, user_line(99)])
        refused, _ = run_import(file, config, *options)

        assert refused.exit_code == 2
        assert "was written for a different input file" in refused.output
        assert len(scim.users()) == 11  # nothing more was imported

        write_ndjson(file, lines)
        other_size, _ = run_import(file, config, "--batch-size", "7")

        assert other_size.exit_code == 2
        assert "was written with --batch-size 5: resume with that batch size" in other_size.output

        resumed, report = run_import(file, config, *options)

        assert resumed.exit_code == 0, resumed.output
        assert report is not None and adds_up(report)
        assert report["resumed_batches"] == 2
        assert (report["created"], report["skipped_already_present"]) == (19, 1)
        assert len(scim.users()) == 20
    finally:
        scim.server.stop()
