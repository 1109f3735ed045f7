"""Real parts for the broker tests: a SCIM server (scim2-server), a legacy login endpoint,
hash files, and authswitch serving the broker on loopback."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import bcrypt
import httpx
from scim2_server.applications.asgi import ASGIApplication
from scim2_server.memory import AsyncInMemoryStorage
from scim2_server.utils import load_default_provider

from proxy.app import AuthSwitch
from proxy.broker.hook_auth import sign
from proxy.config import Ops
from proxy.demo.loopback_server import LoopbackServer
from proxy.ops.ops_listener import OpsListener
from tests.conftest import answer_lifespan, request_body, write_proxy_files
from tests.flags.redis_support import RedisTarget

HOOK_SECRET = b"hook-secret-0123456789abcdef"

# Seeded passwords carry SEEKRIT so the suite's log audit flags any that leaks.
ALICE = ("alice@example.com", "SEEKRIT-alice-pw")
BOB = ("bob@example.com", "SEEKRIT-bob-pw")
WRONG = "SEEKRIT-wrong-pw"
UNKNOWN = "nobody@example.com"


def hash_file_lines() -> list[tuple[str, str]]:
    """bcrypt (cost 4, fast for tests) for alice, argon2id for bob."""
    from argon2 import PasswordHasher

    return [
        (ALICE[0], bcrypt.hashpw(ALICE[1].encode(), bcrypt.gensalt(4)).decode()),
        (BOB[0], PasswordHasher(time_cost=1, memory_cost=1024).hash(BOB[1])),
    ]


def serve(app: Any, name: str) -> LoopbackServer:
    """A started LoopbackServer (it sets TCP_NODELAY itself: no 40 ms delayed-ACK waits)."""
    return LoopbackServer(app, name=name).start()


class ScimServer:
    """scim2-server's ASGI application over in-memory storage, on a loopback port."""

    def __init__(self) -> None:
        self.storage = AsyncInMemoryStorage()
        self.server = serve(ASGIApplication(self.storage, load_default_provider()), "scim")

    @property
    def base_url(self) -> str:
        return self.server.url + "/v2"

    def users(self) -> list[dict[str, Any]]:
        """The users as the SCIM server lists them over HTTP."""
        answer = httpx.get(self.base_url + "/Users", timeout=5)
        answer.raise_for_status()
        return list(answer.json().get("Resources", []))

    def stored_password(self, user_name: str) -> str | None:
        for resource in self.storage.storage.resources:
            if getattr(resource, "user_name", None) == user_name:
                return getattr(resource, "password", None)
        raise AssertionError(f"no user {user_name!r} stored")


@dataclass
class LegacyLogin:
    """A legacy login endpoint: POST /login with JSON or a form; 200 or 401; can be slow."""

    users: dict[str, str]
    delay_seconds: float = 0.0
    status_override: int | None = None
    received: list[dict[str, str]] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        body = await request_body(receive)
        content_type = dict(scope["headers"]).get(b"content-type", b"")
        if content_type.startswith(b"application/json"):
            fields = json.loads(body)
        else:
            fields = dict(parse_qsl(body.decode()))
        self.received.append(fields)
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        ok = self.users.get(fields.get("login", "")) == fields.get("secret")
        status = self.status_override or (200 if ok else 401)
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


@dataclass
class BrokerEnv:
    url: str
    prefix: str
    scim: ScimServer
    app: AuthSwitch
    secret: bytes = HOOK_SECRET
    ops: OpsListener | None = None

    @property
    def ops_url(self) -> str:
        """Its ops listener (/livez, /readyz, /metrics), started on first use: only the tests
        that read it pay for a second server (the timing tests are better off without it)."""
        if self.ops is None:
            self.ops = OpsListener(Ops(port=0), self.app.readiness).start()
        return self.ops.url

    def stop_ops(self) -> None:
        if self.ops is not None:
            self.ops.stop()

    def call(
        self,
        door: str,
        identifier: str,
        password: str,
        *,
        headers: dict[str, str] | None = None,
        client: httpx.Client | None = None,
    ) -> httpx.Response:
        body = json.dumps(hook_body(door, identifier, password)).encode()
        sent = {"content-type": "application/json", "x-authswitch-broker-secret": self.secret}
        sent = {k: v.decode() if isinstance(v, bytes) else v for k, v in sent.items()}
        sent.update(headers or {})
        url = f"{self.url}/_authswitch/broker/{door}"
        if client is not None:
            return client.post(url, content=body, headers=sent)
        return httpx.post(url, content=body, headers=sent, timeout=10)

    def signed_call(self, door: str, identifier: str, password: str) -> httpx.Response:
        body = json.dumps(hook_body(door, identifier, password)).encode()
        return httpx.post(
            f"{self.url}/_authswitch/broker/{door}",
            content=body,
            headers={
                "content-type": "application/json",
                "x-authswitch-signature": sign(self.secret, body),
            },
            timeout=10,
        )


def cognito_event(identifier: str, password: str | None) -> dict[str, Any]:
    """A Cognito user migration trigger event as the Lambda receives it (None: forgot-password)."""
    request: dict[str, Any] = {"validationData": None, "clientMetadata": {"app": "web"}}
    if password is not None:
        request["password"] = password
    return {
        "version": "1",
        "triggerSource": "UserMigration_Authentication"
        if password is not None
        else "UserMigration_ForgotPassword",
        "region": "eu-west-1",
        "userPoolId": "eu-west-1_AbCdEfGhI",
        "userName": identifier,
        "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "4k3j2h1g"},
        "request": request,
        "response": {
            "userAttributes": None,
            "finalUserStatus": None,
            "messageAction": None,
            "desiredDeliveryMediums": None,
            "forceAliasCreation": None,
            "enableSMSMFA": None,
        },
    }


def cognito_answer(identifier: str, **attributes: str) -> dict[str, Any]:
    """The event back with the migrated user's attributes, as Cognito expects it."""
    event = cognito_event(identifier, "")
    del event["request"]["password"]  # not echoed back
    event["response"].update(
        userAttributes=attributes or {"preferred_username": identifier},
        finalUserStatus="CONFIRMED",
        messageAction="SUPPRESS",
    )
    return event


COGNITO_DENIED = {
    "errorType": "NotAuthorizedException",
    "errorMessage": "Incorrect username or password.",
}
AUTH0_DENIED = {"error": "wrong_credentials", "error_description": "Wrong email or password."}


def hook_body(door: str, identifier: str, password: str) -> dict[str, Any]:
    """The request each provider documents for its hook."""
    if door == "cognito":
        return cognito_event(identifier, password)
    if door == "auth0":  # what examples/auth0-login.js posts
        return {"email": identifier, "password": password}
    if door == "okta":
        return {
            "eventId": "3OWo4oo-QQ-rBWfRyTmQYw",
            "eventTime": "2020-01-17T21:23:56.000Z",
            "eventType": "com.okta.user.credential.password.import",
            "eventTypeVersion": "1.0",
            "contentType": "application/json",
            "cloudEventVersion": "0.1",
            "source": "https://example.okta.com/api/v1/inlineHooks/cali9ucpfs9wVmhOv0h7",
            "data": {
                "context": {
                    "request": {"id": "XiIl6wn7005Rr@fjYqeC7AAABxw", "method": "POST"},
                    "credential": {"username": identifier, "password": password},
                },
                "action": {"credential": "UNVERIFIED"},
            },
        }
    return {"identifier": identifier, "password": password}


def okta_answer(verified: bool) -> dict[str, Any]:
    value = "VERIFIED" if verified else "UNVERIFIED"
    return {"commands": [{"type": "com.okta.action.update", "value": {"credential": value}}]}


def write_broker_config(
    directory: Path,
    target: RedisTarget,
    scim: ScimServer | None,
    verifier: dict[str, Any],
    **broker: Any,
) -> Path:
    (directory / "hook-secret").write_bytes(HOOK_SECRET + b"\n")
    settings: dict[str, Any] = {
        "enabled": True,
        "secret_file": "hook-secret",
        "redis": {
            "url": target.url,
            "key_prefix": target.prefix,
            **broker.pop("redis_settings", {}),
        },
        "rate_limits": {"per_ip": "1000/minute", "per_identifier": "1000/minute"},
        "verifier": verifier,
        **broker,
    }
    if scim is not None and "provisioner" not in broker:
        settings["provisioner"] = {"url": scim.base_url}
    legacy = "http://127.0.0.1:9"  # the proxy's legacy upstream plays no part here
    return write_proxy_files(directory, legacy, legacy, broker=settings)


def hash_file_verifier(directory: Path) -> dict[str, Any]:
    lines = ["identifier,hash", *(f"{i},{h}" for i, h in hash_file_lines())]
    (directory / "hashes.csv").write_text("\n".join(lines) + "\n")
    return {"type": "hash_file", "path": "hashes.csv"}


def elapsed(started: float) -> float:
    return time.monotonic() - started
