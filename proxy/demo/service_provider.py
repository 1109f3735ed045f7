"""A stand-in service provider (the legacy one or the new one) that validates and records."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from typing import TypedDict
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from proxy.demo.saml_validation import SamlResponseValidator, TrustedIdP

__all__ = [
    "BIG_BODY_SHA256",
    "BIG_BODY_SIZE",
    "ReceivedRequest",
    "TrustedIdP",
    "create_service_provider_app",
]

_BIG_CHUNK = b"authswitch demo\n" * 4096  # 64 KiB
_BIG_CHUNKS = 16
BIG_BODY_SIZE = len(_BIG_CHUNK) * _BIG_CHUNKS  # 1 MiB
BIG_BODY_SHA256 = hashlib.sha256(_BIG_CHUNK * _BIG_CHUNKS).hexdigest()
_MAX_FORM_FIELDS = 100
# A function endpoint gets GET only unless told; a stand-in provider answers everything.
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_NAME = re.compile(r"[A-Za-z0-9_.-]+")


class ReceivedRequest(TypedDict):
    """One request as the service provider saw it."""

    method: str
    path: str
    query_string: str
    body_sha256: str
    headers: list[tuple[str, str]]
    time: float


class _BadForm(Exception):
    """The request's urlencoded fields can't be used (duplicate artifact, too many fields)."""


def create_service_provider_app(
    *,
    name: str,
    sp_entity_id: str,
    public_acs_url: str,
    trusted_idps: Sequence[TrustedIdP],
    reject_replays: bool = True,
) -> Starlette:
    """Build an app that stands in for a provider; every request lands in app.state.received.

    SAMLResponses are checked as by an SP imported transparently: the public (legacy) ACS URL
    and SP entity id are what it expects. Raw artifacts are never echoed back.
    """
    if not _NAME.fullmatch(name):
        raise ValueError(f"name must match {_NAME.pattern} (it names a cookie), got {name!r}")
    validator = SamlResponseValidator(
        sp_entity_id=sp_entity_id,
        public_acs_url=public_acs_url,
        trusted_idps=trusted_idps,
        reject_replays=reject_replays,
    )
    received: list[ReceivedRequest] = []

    async def handle(request: Request) -> Response:
        body = await request.body()
        body_sha256 = hashlib.sha256(body).hexdigest()
        received.append(_record(request, body_sha256))
        path: str = request.scope["path"]
        if request.method == "GET" and path == "/redirect-test":
            return _redirect(name)
        if request.method == "GET" and path == "/big":
            return _big()
        try:
            form, query = _form_fields(request, body), _query_fields(request)
        except _BadForm as exc:
            return JSONResponse({"landed": name, "path": path, "error": str(exc)}, 400)
        if request.method == "POST" and "SAMLResponse" in form:
            return _saml_login(name, validator, form["SAMLResponse"], path, body_sha256)
        oidc = form if "code" in form else query
        if "code" in oidc and "state" in oidc:
            return _oidc_callback(name, oidc["code"], oidc["state"], path, body_sha256)
        return JSONResponse({"landed": name, "path": path})

    app = Starlette(routes=[Route("/{path:path}", handle, methods=_METHODS)])
    app.state.received = received
    return app


def _record(request: Request, body_sha256: str) -> ReceivedRequest:
    return {
        "method": request.method,
        "path": request.scope["path"],
        "query_string": request.scope["query_string"].decode("latin-1"),
        "body_sha256": body_sha256,
        "headers": [
            (key.decode("latin-1").lower(), value.decode("latin-1"))
            for key, value in request.scope["headers"]
        ],
        "time": time.time(),
    }


def _form_fields(request: Request, body: bytes) -> dict[str, str]:
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("application/x-www-form-urlencoded"):
        return {}
    return _single_valued(body.decode("latin-1"))


def _query_fields(request: Request) -> dict[str, str]:
    return _single_valued(request.scope["query_string"].decode("latin-1"))


def _single_valued(encoded: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(encoded, keep_blank_values=True, max_num_fields=_MAX_FORM_FIELDS)
    except ValueError:
        raise _BadForm("too many fields") from None
    fields: dict[str, str] = {}
    for key, value in pairs:
        if key in fields and key in ("SAMLResponse", "RelayState", "code", "state"):
            raise _BadForm(f"duplicate {key}")
        fields.setdefault(key, value)
    return fields


def _saml_login(
    name: str, validator: SamlResponseValidator, saml_response: str, path: str, body_sha256: str
) -> Response:
    verdict = validator.validate(saml_response)
    response = JSONResponse(
        {
            "landed": name,
            "valid": verdict.valid,
            "error": verdict.error,
            "issuer": verdict.issuer,
            "name_id": verdict.name_id,
            "connection": verdict.connection,
            "path": path,
            "body_sha256": body_sha256,
        }
    )
    if verdict.valid:
        _set_session_cookie(response, f"{name}_session")
    return response


def _oidc_callback(name: str, code: str, state: str, path: str, body_sha256: str) -> Response:
    return JSONResponse(
        {
            "landed": name,
            "oidc": True,
            "code_sha256": hashlib.sha256(code.encode()).hexdigest(),
            "state_sha256": hashlib.sha256(state.encode()).hexdigest(),
            "path": path,
            "body_sha256": body_sha256,
        }
    )


def _redirect(name: str) -> Response:
    response = Response(status_code=302, headers={"location": "/somewhere"})
    _set_session_cookie(response, f"{name}_redirect")
    return response


def _big() -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(_BIG_CHUNKS):
            yield _BIG_CHUNK

    return StreamingResponse(chunks(), media_type="application/octet-stream")


def _set_session_cookie(response: Response, cookie: str) -> None:
    response.set_cookie(
        cookie, secrets.token_urlsafe(16), httponly=True, secure=True, samesite="lax", path="/"
    )
