"""`authswitch users diff`: an export state file against WorkOS (its documented list with
cursor pagination, on loopback) or an NDJSON file; missing, extra, changed; a report that adds up;
exit 1 on any difference."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from typer.testing import CliRunner, Result

from proxy.cli.main import app
from proxy.demo.loopback_server import LoopbackServer
from tests.proxy.users_import.import_support import write_ndjson

API_KEY = "sk_test_SEEKRIT_workos"
WORKOS_USER = json.loads((Path(__file__).parent / "fixtures" / "workos_user.json").read_text())


class FakeWorkos:
    """WorkOS User Management `GET /user_management/users` (limit ≤ 100, order, after; data +
    list_metadata), Bearer API keys, one 429 with Retry-After on the second request."""

    def __init__(self, users: list[dict[str, Any]]) -> None:
        self.users = users
        self.requests = 0
        self.server = LoopbackServer(
            Starlette(routes=[Route("/user_management/users", self.list_users)]), name="workos"
        ).start()

    async def list_users(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return JSONResponse({"message": "Unauthorized"}, status_code=401)
        self.requests += 1
        if self.requests == 2:
            return JSONResponse(
                {"code": "rate_limit_exceeded", "message": "Rate limit exceeded"},
                status_code=429,
                headers={"Retry-After": "0"},
            )
        limit = int(request.query_params.get("limit", "10"))
        assert 1 <= limit <= 100
        after = request.query_params.get("after")
        start = 0 if after is None else [u["id"] for u in self.users].index(after) + 1
        page = self.users[start : start + limit]
        more = start + limit < len(self.users)
        return JSONResponse(
            {
                "data": page,
                "list_metadata": {
                    "before": page[0]["id"] if start and page else None,
                    "after": page[-1]["id"] if more else None,
                },
            }
        )


def workos_user(i: int, **changes: Any) -> dict[str, Any]:
    user = dict(WORKOS_USER)
    user.update(
        id=f"user_{i:026d}",
        email=f"john{i}@example.com",
        first_name=f"John{i}",
        last_name=f"Doe{i}",
        email_verified=True,
    )
    user.update(changes)
    return user


def source_line(i: int, **changes: Any) -> dict[str, Any]:
    line = {
        "email": f"john{i}@example.com",
        "email_verified": True,
        "external_id": f"auth0|{i}",
        "given_name": f"John{i}",
        "family_name": f"Doe{i}",
    }
    line.update(changes)
    return line


@pytest.fixture
def workos() -> Iterator[FakeWorkos]:
    users = [workos_user(i) for i in range(250) if i != 3]
    users[10] = workos_user(11, last_name="Doe-Smith", email_verified=False)
    users[20] = workos_user(21, email="JOHN21@example.com")
    users.append(workos_user(900))
    server = FakeWorkos(users)
    yield server
    server.server.stop()


def _diff(source: Path, target: str, *args: str) -> Result:
    return CliRunner().invoke(
        app, ["users", "diff", "--source", str(source), "--target", target, *args]
    )


def _key_file(tmp_path: Path, key: str = API_KEY) -> Path:
    path = tmp_path / "workos-key"
    path.write_text(key + "\n")
    return path


def test_against_workos_every_kind_of_difference(workos: FakeWorkos, tmp_path: Path) -> None:
    source = write_ndjson(tmp_path / "users.ndjson", [source_line(i) for i in range(250)])
    result = _diff(
        source,
        "workos",
        "--url",
        workos.server.url,
        "--api-key-file",
        str(_key_file(tmp_path)),
        "--json",
    )
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["missing"] == ["john3@example.com"]
    assert report["extra"] == ["john900@example.com"]
    assert report["changed"] == [
        {
            "email": "john11@example.com",
            "fields": {"email_verified": [True, False], "family_name": ["Doe11", "Doe-Smith"]},
        },
        {
            "email": "john21@example.com",
            "fields": {"email": ["john21@example.com", "JOHN21@example.com"]},
        },
    ]
    assert report["same"] == 247 and report["adds_up"] is True
    assert report["source"]["users"] == 250 and report["target"]["users"] == 250
    assert workos.requests == 4  # three pages of 100 and the one answered 429
    assert "SEEKRIT" not in result.output


def test_no_differences_exits_0_with_the_table(workos: FakeWorkos, tmp_path: Path) -> None:
    workos.users = [workos_user(i) for i in range(5)]
    source = write_ndjson(tmp_path / "users.ndjson", [source_line(i) for i in range(5)])
    result = _diff(
        source, "workos", "--url", workos.server.url, "--api-key-file", str(_key_file(tmp_path))
    )
    assert result.exit_code == 0, result.output
    assert re.search(r"^same\s+5$", result.output, re.MULTILINE)
    assert result.output.rstrip().endswith("no differences")


def test_a_refused_api_key_is_exit_2_without_the_key(workos: FakeWorkos, tmp_path: Path) -> None:
    source = write_ndjson(tmp_path / "users.ndjson", [source_line(1)])
    result = _diff(
        source,
        "workos",
        "--url",
        workos.server.url,
        "--api-key-file",
        str(_key_file(tmp_path, "sk_SEEKRIT_wrong")),
    )
    assert result.exit_code == 2 and "refused the API key" in result.output
    assert "SEEKRIT" not in result.output
    missing = _diff(source, "workos", "--url", workos.server.url)
    assert missing.exit_code == 2 and "needs --api-key-file" in missing.output


def test_against_a_file_hashes_refused_lines_and_the_table(tmp_path: Path) -> None:
    source = write_ndjson(
        tmp_path / "source.ndjson",
        [
            source_line(
                1, password_hash="$2b$04$abcdefghijklmnopqrstuu", password_hash_type="bcrypt"
            ),
            source_line(2),
            "not json",
            source_line(2),  # a duplicate
            source_line(3, given_name=None),  # the source says nothing: not compared
        ],
    )
    target = write_ndjson(
        tmp_path / "target.ndjson",
        [
            {
                "email": "john1@example.com",
                "first_name": "John1",
                "last_name": "Doe1",
                "email_verified": True,
            },
            source_line(2),
            source_line(3, given_name="Someone"),
            ["an", "array"],
        ],
    )
    result = _diff(source, str(target))
    assert result.exit_code == 1
    assert re.search(
        r'changed\s+john1@example.com\s+password_hash: "present" -> "absent"', result.output
    )
    assert "source line 3: not valid JSON" in result.output
    assert "source line 4: duplicate email (case-folded)" in result.output
    assert "target line 4: not a JSON object" in result.output
    report = json.loads(_diff(source, str(target), "--json").stdout)
    assert report["same"] == 2 and report["adds_up"] is True
    assert len(report["source"]["refused"]) == 2 and len(report["target"]["refused"]) == 1


def test_an_unreadable_file_is_exit_2(tmp_path: Path) -> None:
    source = write_ndjson(tmp_path / "source.ndjson", [source_line(1)])
    result = _diff(source, str(tmp_path / "none.ndjson"))
    assert result.exit_code == 2 and "none.ndjson: cannot read" in result.output
    result = _diff(tmp_path / "gone.ndjson", str(source))
    assert result.exit_code == 2 and "gone.ndjson: cannot read" in result.output


def test_the_workos_target_from_the_config(workos: FakeWorkos, tmp_path: Path) -> None:
    from tests.conftest import write_proxy_files

    workos.users = [workos_user(i) for i in range(3)]
    provisioner = {
        "type": "workos",
        "url": workos.server.url,
        "api_key_file": str(_key_file(tmp_path)),
    }
    config = write_proxy_files(
        tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9", broker={"provisioner": provisioner}
    )
    source = write_ndjson(tmp_path / "users.ndjson", [source_line(i) for i in range(3)])
    result = _diff(source, "workos", "--config", str(config))
    assert result.exit_code == 0, result.output
