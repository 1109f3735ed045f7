"""`authswitch serve` refuses an outcome source whose secret file can't be read, clearly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.proxy.outcomes.outcome_env import write_outcome_files


def test_serve_names_the_unreadable_secret_and_exits_2(tmp_path: Path) -> None:
    config = write_outcome_files(
        tmp_path,
        "http://127.0.0.1:9",
        "http://127.0.0.1:9",
        outcomes={"auth0": {"enabled": True, "token_file": "no-such-token"}},
    )
    done = subprocess.run(
        [sys.executable, "-m", "proxy", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "outcomes.auth0.token_file" in done.stderr and "cannot read" in done.stderr
    assert "Traceback" not in done.stderr
