"""`authswitch demo`, the README's first command, runs inside the suite and must pass."""

from __future__ import annotations

import subprocess
import sys


def test_demo_routes_every_login_as_the_flags_say_and_each_validates() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "proxy", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "PASS: 36/36 logins landed where expected and validated." in out
    assert "WRONG" not in out
    for step in ("stage 0 %", "canary: acme", "stage 25 %", "stage 100 %", "global kill switch"):
        assert step in out
    # At 25 % the sticky buckets put hooli and stark in and wayne out; umbrella never moves.
    step3 = out.split("Step 3:")[1].split("Step 4:")[0]
    assert _landed(step3, "hooli") == "new" and _landed(step3, "stark") == "new"
    assert _landed(step3, "wayne") == "legacy" and _landed(step3, "umbrella") == "legacy"
    assert "SAMLResponse" not in result.stderr


def _landed(table: str, connection: str) -> str:
    for line in table.splitlines():
        cells = line.split()
        if cells and cells[0] == connection:
            return cells[3]
    raise AssertionError(f"{connection} not in the table")
