"""`users import --target okta`: users created through Okta's Users API with their password
hashes in Okta's documented import form; each then signs in with its original password at a
server that checks hashes as Okta documents them (BCRYPT; SHA-1/256/512 with salt and
saltOrder)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from typer.testing import CliRunner, Result

from proxy.cli.main import app
from proxy.demo.loopback_server import LoopbackServer
from tests.proxy.users_import.import_support import write_ndjson

TOKEN = "00SEEKRIT-okta-import-token"
_DIGESTS = {"SHA-1": hashlib.sha1, "SHA-256": hashlib.sha256, "SHA-512": hashlib.sha512}


class FakeOktaUsers:
    """Okta Users API: create (activate, profile, password value or hash), get by login,
    E0000001 for a taken login, E0000003-style 400 for a hash not in the documented form, and
    primary authentication (`POST /api/v1/authn`) checked against the stored credential."""

    def __init__(self) -> None:
        self.users: dict[str, dict[str, Any]] = {}
        self.bodies: list[dict[str, Any]] = []
        self.server = LoopbackServer(
            Starlette(
                routes=[
                    Route("/api/v1/users", self.create, methods=["POST"]),
                    Route("/api/v1/users/{login}", self.get),
                    Route("/api/v1/authn", self.authn, methods=["POST"]),
                ]
            ),
            name="okta-users",
        ).start()

    def _refused(self, request: Request) -> Response | None:
        if request.headers.get("authorization") == f"SSWS {TOKEN}":
            return None
        return JSONResponse({"errorCode": "E0000011", "errorSummary": "Invalid token"}, 401)

    async def create(self, request: Request) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        body = await request.json()
        self.bodies.append(body)
        profile = body["profile"]
        missing = [k for k in ("login", "email", "firstName", "lastName") if not profile.get(k)]
        if missing:
            return JSONResponse(
                _error("E0000001", [f"{missing[0]}: The field cannot be left blank"]), 400
            )
        if profile["login"].casefold() in self.users:
            return JSONResponse(
                _error(
                    "E0000001",
                    ["login: An object with this field already exists in the current organization"],
                ),
                400,
            )
        password = body.get("credentials", {}).get("password", {})
        if "hash" in password and not _documented_hash(password["hash"]):
            return JSONResponse(_error("E0000001", ["credentials.password.hash: invalid"]), 400)
        activate = request.query_params.get("activate", "true") == "true"
        user = {
            "id": f"00u{len(self.users):017d}",
            "status": "ACTIVE" if activate else "STAGED",
            "profile": profile,
            "password": password,
        }
        self.users[profile["login"].casefold()] = user
        return JSONResponse({k: v for k, v in user.items() if k != "password"})

    async def get(self, request: Request) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        user = self.users.get(request.path_params["login"].casefold())
        if user is None:
            return JSONResponse(_error("E0000007", ["Not found"]), 404)
        return JSONResponse({k: v for k, v in user.items() if k != "password"})

    async def authn(self, request: Request) -> Response:
        body = await request.json()
        user = self.users.get(str(body.get("username", "")).casefold())
        if user is not None and _verify(user["password"], str(body.get("password", ""))):
            return JSONResponse({"status": "SUCCESS", "sessionToken": "x"})
        return JSONResponse({"errorCode": "E0000004", "errorSummary": "Authentication failed"}, 401)


def _error(code: str, causes: list[str]) -> dict[str, Any]:
    return {
        "errorCode": code,
        "errorSummary": "Api validation failed",
        "errorCauses": [{"errorSummary": cause} for cause in causes],
    }


def _documented_hash(value: dict[str, Any]) -> bool:
    algorithm = value.get("algorithm")
    if algorithm == "BCRYPT":
        return (
            set(value) == {"algorithm", "workFactor", "salt", "value"}
            and 1 <= value["workFactor"] <= 20
            and len(value["salt"]) == 22
            and len(value["value"]) == 31
        )
    if algorithm in _DIGESTS:
        return set(value) <= {"algorithm", "salt", "saltOrder", "value"} and value.get(
            "saltOrder", "PREFIX"
        ) in ("PREFIX", "POSTFIX")
    return False


def _verify(password: dict[str, Any], attempt: str) -> bool:
    if "value" in password:
        return hmac.compare_digest(password["value"], attempt)
    hashed = password.get("hash")
    if hashed is None:
        return False
    if hashed["algorithm"] == "BCRYPT":
        encoded = f"$2a${hashed['workFactor']:02d}${hashed['salt']}{hashed['value']}"
        return bcrypt.checkpw(attempt.encode(), encoded.encode())
    salt = base64.b64decode(hashed.get("salt", ""))
    data = (
        salt + attempt.encode()
        if hashed.get("saltOrder") == "PREFIX"
        else (attempt.encode() + salt)
    )
    return hmac.compare_digest(
        _DIGESTS[hashed["algorithm"]](data).digest(), base64.b64decode(hashed["value"])
    )


def ssha(password: str, label: str, digest: Any) -> str:
    salt = os.urandom(8)
    return (
        "{"
        + label
        + "}"
        + base64.b64encode(digest(password.encode() + salt).digest() + salt).decode()
    )


@pytest.fixture
def okta() -> Iterator[FakeOktaUsers]:
    server = FakeOktaUsers()
    yield server
    server.server.stop()


def _import(file: Path, okta: FakeOktaUsers, tmp_path: Path, *args: str) -> Result:
    token = tmp_path / "okta-token"
    token.write_text(TOKEN + "\n")
    return CliRunner().invoke(
        app,
        [
            "users",
            "import",
            str(file),
            "--target",
            "okta",
            "--okta-url",
            okta.server.url,
            "--token-file",
            str(token),
            *args,
        ],
    )


def _line(name: str, **changes: Any) -> dict[str, Any]:
    return {
        "email": f"{name}@example.com",
        "given_name": name.title(),
        "family_name": "Doe",
        **changes,
    }


def _signs_in(okta: FakeOktaUsers, login: str, password: str) -> bool:
    import httpx

    answer = httpx.post(
        okta.server.url + "/api/v1/authn",
        json={"username": login, "password": password},
        timeout=10,
    )
    return answer.status_code == 200


def test_hashed_users_sign_in_with_their_original_passwords(
    okta: FakeOktaUsers, tmp_path: Path
) -> None:
    passwords = {name: f"SEEKRIT-{name}-pw" for name in ("bc", "s1", "s256", "s512", "clear")}
    lines = [
        _line(
            "bc",
            password_hash=bcrypt.hashpw(passwords["bc"].encode(), bcrypt.gensalt(4)).decode(),
            password_hash_type="bcrypt",
        ),
        _line(
            "s1",
            password_hash=ssha(passwords["s1"], "SSHA", hashlib.sha1),
            password_hash_type="ssha",
        ),
        _line(
            "s256",
            password_hash=ssha(passwords["s256"], "SSHA256", hashlib.sha256),
            password_hash_type="ssha",
        ),
        _line(
            "s512",
            password_hash=ssha(passwords["s512"], "SSHA512", hashlib.sha512),
            password_hash_type="ssha",
        ),
        _line("clear", password=passwords["clear"]),
        _line("nopw"),
    ]
    result = _import(write_ndjson(tmp_path / "users.ndjson", lines), okta, tmp_path)
    assert result.exit_code == 0, result.output
    for name, password in passwords.items():
        assert _signs_in(okta, f"{name}@example.com", password), name
        assert not _signs_in(okta, f"{name}@example.com", "SEEKRIT-wrong"), name
    assert okta.users["nopw@example.com"]["status"] == "STAGED"  # no activation email
    assert okta.users["bc@example.com"]["status"] == "ACTIVE"
    sha_hash = okta.users["s256@example.com"]["password"]["hash"]
    assert sha_hash["algorithm"] == "SHA-256" and sha_hash["saltOrder"] == "POSTFIX"
    assert "SEEKRIT" not in result.output


def test_hashes_okta_documents_no_form_for_are_listed_not_sent(
    okta: FakeOktaUsers, tmp_path: Path
) -> None:
    scrypt = "$scrypt$ln=4,r=8,p=1$c2FsdHNhbHQ$" + base64.b64encode(b"k" * 32).decode().rstrip("=")
    lines = [
        _line("a", password="SEEKRIT-a"),
        _line("b", password_hash=scrypt, password_hash_type="scrypt"),
    ]
    result = _import(write_ndjson(tmp_path / "users.ndjson", lines), okta, tmp_path)
    assert result.exit_code == 1
    assert "line 2: password_hash: not passable to okta: Okta takes bcrypt and salted SHA" in (
        result.output
    )
    assert okta.bodies == []  # nothing imported unless --skip-invalid


def test_an_existing_login_is_already_present_and_a_blank_name_fails_that_user(
    okta: FakeOktaUsers, tmp_path: Path
) -> None:
    first = _import(
        write_ndjson(tmp_path / "one.ndjson", [_line("x", password="SEEKRIT-x")]), okta, tmp_path
    )
    assert first.exit_code == 0, first.output
    lines = [_line("x", password="SEEKRIT-x"), _line("y", given_name=None, password="SEEKRIT-y")]
    again = _import(
        write_ndjson(tmp_path / "two.ndjson", lines),
        okta,
        tmp_path,
        "--report-json",
        str(tmp_path / "report.json"),
    )
    assert again.exit_code == 1
    import json

    report = json.loads((tmp_path / "report.json").read_text())
    assert report["skipped_already_present"] == 1 and report["failed"] == 1


def test_okta_options_are_checked(okta: FakeOktaUsers, tmp_path: Path) -> None:
    file = write_ndjson(tmp_path / "users.ndjson", [_line("a")])
    missing = CliRunner().invoke(app, ["users", "import", str(file), "--target", "okta"])
    assert missing.exit_code == 2 and "needs --okta-url and --token-file" in missing.output
    update = _import(file, okta, tmp_path, "--on-existing", "update")
    assert update.exit_code == 2 and "needs a SCIM target" in update.output
    bulk = _import(file, okta, tmp_path, "--bulk")
    assert bulk.exit_code == 2 and "not to okta" in bulk.output
