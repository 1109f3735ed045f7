"""Real parts for the users-import tests: scim2-server on loopback (optionally slowed down),
NDJSON files of generated users, and the `authswitch` command run in-process or as a process."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from scim2_server.applications.asgi import ASGIApplication
from scim2_server.memory import AsyncInMemoryStorage
from scim2_server.utils import load_default_provider
from typer.testing import CliRunner, Result

from proxy.cli.main import app
from tests.conftest import write_proxy_files
from tests.proxy.broker.broker_support import ScimServer, serve

REPO = Path(__file__).resolve().parents[3]


class CountingScim(ScimServer):
    """The broker tests' SCIM server, counting requests by (method, path); it can hold /Bulk
    answers (`delay_seconds`) and require a bearer token."""

    def __init__(self, delay_seconds: float = 0.0, token: str | None = None) -> None:
        self.delay_seconds = delay_seconds
        self.token = token  # set: requests without this bearer token are answered 401
        self.requests: Counter[tuple[str, str]] = Counter()
        self.unanswered: Counter[tuple[str, str]] = Counter()
        self.storage = AsyncInMemoryStorage()
        self._app = ASGIApplication(self.storage, load_default_provider())
        self.server = serve(self, "scim-import")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        request = (scope["method"], scope["path"])
        self.requests[request] += 1
        bulk = request == ("POST", "/v2/Bulk")
        authorization = dict(scope["headers"]).get(b"authorization", b"").decode()
        if self.token is not None and authorization != f"Bearer {self.token}":
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return

        async def held_send(message: dict[str, Any]) -> None:
            # The work is done when the answer starts: hold it, as a slow provider would.
            if message["type"] == "http.response.start" and self.delay_seconds and bulk:
                self.unanswered[request] += 1
                try:
                    await asyncio.sleep(self.delay_seconds)
                finally:
                    self.unanswered[request] -= 1
            await send(message)

        await self._app(scope, receive, held_send)

    def created_unanswered(self) -> bool:
        """Whether a /Bulk request has been carried out but not answered yet."""
        return self.unanswered[("POST", "/v2/Bulk")] > 0

    def users(self) -> list[dict[str, Any]]:
        """Every user, as the SCIM server lists them over HTTP."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        params = {"count": "100000"}
        answer = httpx.get(self.base_url + "/Users", params=params, headers=headers, timeout=10)
        answer.raise_for_status()
        return list(answer.json().get("Resources", []))


def user_line(i: int, **changes: Any) -> dict[str, Any]:
    """A generated user; passwords carry SEEKRIT so the suite's log audit catches a leak."""
    return {
        "email": f"user{i:05d}@example.com",
        "external_id": f"legacy-{i}",
        "given_name": f"Given{i}",
        "family_name": f"Family{i}",
        "email_verified": True,
        "password": f"SEEKRIT-pw-{i}",
        **changes,
    }


def write_ndjson(path: Path, lines: list[dict[str, Any] | str]) -> Path:
    path.write_text(
        "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    )
    return path


def write_config(directory: Path, scim: CountingScim) -> Path:
    """An authswitch config whose broker.provisioner is the SCIM server (broker itself off)."""
    legacy = "http://127.0.0.1:9"
    return write_proxy_files(
        directory, legacy, legacy, broker={"provisioner": {"url": scim.base_url}}
    )


def run_import(file: Path, config: Path, *args: str) -> tuple[Result, dict[str, Any] | None]:
    """`authswitch users import` in-process; the drift report JSON when one was written."""
    report = file.with_name(file.name + ".report.json")
    report.unlink(missing_ok=True)
    result = CliRunner().invoke(
        app,
        [
            "users",
            "import",
            str(file),
            "--config",
            str(config),
            "--report-json",
            str(report),
            *args,
        ],
    )
    return result, json.loads(report.read_text()) if report.exists() else None


def start_import_process(file: Path, config: Path, *args: str) -> subprocess.Popen[bytes]:
    """`authswitch users import` as its own process (to be killed)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "proxy",
            "users",
            "import",
            str(file),
            "--config",
            str(config),
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=REPO,
    )


def adds_up(report: dict[str, Any]) -> bool:
    accounted = (
        report["imported"]
        + report["skipped_already_present"]
        + report["failed"]
        + report["invalid"]
        + report["not_attempted"]
    )
    return bool(report["source"] == accounted)
