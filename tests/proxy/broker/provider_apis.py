"""In-test new providers: the documented subset of the WorkOS User Management API and of the
Ory Kratos admin identities API, storing users in memory, served on loopback."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

API_KEY = "sk_test_SEEKRIT-workos-key"
# WorkOS Create User: `password_hash_type` values (its migration guide), `password` exclusive.
WORKOS_HASH_TYPES = frozenset({"bcrypt", "scrypt", "firebase-scrypt", "ssha", "pbkdf2", "argon2"})
# The hashed_password prefixes Ory Kratos' hash comparator recognises.
KRATOS_HASH = re.compile(
    r"^(\$2[abzy]?\$|\$argon2id?\$|\$pbkdf2-sha[0-9]{1,3}\$|\$scrypt\$|\{SSHA(256|512)?\}"
    r"|\$firescrypt\$|\$sha(1|256|512)\$|\$md5\$|\$md5-crypt\$|\$sha(256|512)-crypt\$)"
)


def _workos_body_problem(user: dict[str, Any]) -> str | None:
    """Why WorkOS would refuse this Create User body's password fields, if it would."""
    if "password_hash" not in user and "password_hash_type" not in user:
        return None
    if "password" in user:
        return "password is mutually exclusive with password_hash"
    if user.get("password_hash_type") not in WORKOS_HASH_TYPES or not user.get("password_hash"):
        return "password_hash and a valid password_hash_type go together"
    return None


@dataclass
class UserStore:
    """What a provider holds, and what it was asked."""

    users: list[dict[str, Any]] = field(default_factory=list)
    posts: int = 0
    # Users that exist but that the search doesn't find (created between check and create).
    hidden: set[str] = field(default_factory=set)
    fail_create_with: int | None = None
    unavailable_creates: int = 0  # the next this many creates are answered 503, then served
    delay_seconds: float = 0.0
    in_flight: int = 0  # creates being answered now, and the most at once
    most_in_flight: int = 0


def _authorized(request: Request, token: str | None) -> bool:
    return token is None or request.headers.get("authorization") == f"Bearer {token}"


async def _hold(store: UserStore) -> None:
    """Wait `delay_seconds`, counting the creates in progress."""
    store.in_flight += 1
    store.most_in_flight = max(store.most_in_flight, store.in_flight)
    try:
        await asyncio.sleep(store.delay_seconds)
    finally:
        store.in_flight -= 1


def workos_app(store: UserStore) -> Starlette:
    async def users(request: Request) -> JSONResponse:
        if not _authorized(request, API_KEY):
            return JSONResponse({"code": "unauthorized"}, 401)
        if request.method == "GET":
            email = request.query_params["email"].casefold()
            found = [
                u
                for u in store.users
                if u["email"].casefold() == email and u["email"].casefold() not in store.hidden
            ]
            return JSONResponse({"data": found, "list_metadata": {"after": None}})
        store.posts += 1
        user = await request.json()
        problem = _workos_body_problem(user)
        if problem is not None:
            return JSONResponse({"code": "invalid_request_parameters", "message": problem}, 422)
        await _hold(store)
        if store.fail_create_with:
            return JSONResponse({"message": "oops"}, store.fail_create_with)
        if store.unavailable_creates > 0:
            store.unavailable_creates -= 1
            return JSONResponse({"message": "try again later"}, 503)
        if any(u["email"].casefold() == user["email"].casefold() for u in store.users):
            return JSONResponse(
                {
                    "code": "user_creation_error",
                    "message": "Could not create user.",
                    "errors": [{"code": "email_not_available", "message": "Email taken."}],
                },
                422,
            )
        user["id"] = f"user_{len(store.users) + 1:04d}"
        store.users.append(user)
        return JSONResponse({k: v for k, v in user.items() if k != "password"}, 201)

    return Starlette(routes=[Route("/user_management/users", users, methods=["GET", "POST"])])


def kratos_app(store: UserStore, trait: str = "email") -> Starlette:
    def login(identity: dict[str, Any]) -> str:
        return str(identity["traits"][trait]).casefold()

    async def identities(request: Request) -> JSONResponse:
        if request.method == "GET":
            wanted = request.query_params["credentials_identifier"].casefold()
            found = [i for i in store.users if login(i) == wanted and wanted not in store.hidden]
            return JSONResponse(found)
        store.posts += 1
        identity = await request.json()
        config = identity.get("credentials", {}).get("password", {}).get("config", {})
        hashed = config.get("hashed_password")
        if hashed is not None and (not KRATOS_HASH.match(hashed) or "password" in config):
            return JSONResponse({"error": {"code": 400, "message": "unknown hash format"}}, 400)
        await _hold(store)
        if store.fail_create_with:
            return JSONResponse({"error": {"code": store.fail_create_with}}, store.fail_create_with)
        if store.unavailable_creates > 0:
            store.unavailable_creates -= 1
            return JSONResponse({"error": {"code": 503}}, 503)
        if any(login(i) == login(identity) for i in store.users):
            return JSONResponse(
                {"error": {"code": 409, "status": "Conflict", "message": "exists"}}, 409
            )
        identity["id"] = f"id-{len(store.users) + 1}"
        store.users.append(identity)
        return JSONResponse({"id": identity["id"], "traits": identity["traits"]}, 201)

    return Starlette(routes=[Route("/admin/identities", identities, methods=["GET", "POST"])])
