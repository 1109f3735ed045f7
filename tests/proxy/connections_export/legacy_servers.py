"""The legacy providers' connection APIs on loopback, shaped as their references document:
Auth0 `GET /api/v2/connections` (strategy filter, page/per_page/include_totals, Bearer, 429),
Okta `GET /api/v1/idps` (Link pagination, SSWS) and `GET /api/v1/idps/credentials/keys/{kid}`."""

from __future__ import annotations

import base64
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from proxy.demo.loopback_server import LoopbackServer


def der_b64(pem: str) -> str:
    """A certificate as base64 DER (x5c, and one of the forms Auth0 keeps signingCert in)."""
    cert = x509.load_pem_x509_certificate(pem.encode())
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


class FakeAuth0Connections:
    def __init__(self, connections: list[dict[str, Any]], token: str) -> None:
        self.connections = connections
        self.token = token
        self.requests = 0
        self.throttle = {2}
        self.server = LoopbackServer(
            Starlette(routes=[Route("/api/v2/connections", self.list_connections)]),
            name="auth0-connections",
        ).start()
        self.url = self.server.url

    async def list_connections(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return JSONResponse(
                {"statusCode": 401, "error": "Unauthorized", "message": "Invalid token"}, 401
            )
        self.requests += 1
        if self.requests in self.throttle:
            return JSONResponse(
                {"statusCode": 429, "error": "Too Many Requests", "message": "Rate limited"},
                429,
                headers={"Retry-After": "0"},
            )
        strategies = request.query_params.getlist("strategy")
        matching = [c for c in self.connections if not strategies or c["strategy"] in strategies]
        page = int(request.query_params.get("page", "0"))
        per_page = int(request.query_params.get("per_page", "50"))
        chunk = matching[page * per_page : (page + 1) * per_page]
        return JSONResponse(
            {
                "total": len(matching),
                "start": page * per_page,
                "limit": per_page,
                "connections": chunk,
            }
        )


class FakeOktaIdps:
    def __init__(self, idps: list[dict[str, Any]], keys: dict[str, str], token: str) -> None:
        self.idps = idps
        self.keys = keys  # kid -> certificate PEM
        self.token = token
        self.server = LoopbackServer(
            Starlette(
                routes=[
                    Route("/api/v1/idps", self.list_idps),
                    Route("/api/v1/idps/credentials/keys/{kid}", self.get_key),
                ]
            ),
            name="okta-idps",
        ).start()
        self.url = self.server.url

    def _refused(self, request: Request) -> Response | None:
        if request.headers.get("authorization") == f"SSWS {self.token}":
            return None
        return JSONResponse(
            {"errorCode": "E0000011", "errorSummary": "Invalid token provided"}, 401
        )

    async def list_idps(self, request: Request) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        limit = int(request.query_params.get("limit", "20"))
        limit = min(limit, 2)  # small pages, so the Link header is followed
        after = request.query_params.get("after")
        ids = [idp["id"] for idp in self.idps]
        start = 0 if after is None else ids.index(after) + 1
        page = self.idps[start : start + limit]
        headers = {}
        if start + limit < len(self.idps):
            headers["Link"] = (
                f'<{self.url}/api/v1/idps?limit={limit}>; rel="self", '
                f'<{self.url}/api/v1/idps?after={page[-1]["id"]}&limit={limit}>; rel="next"'
            )
        return JSONResponse(page, headers=headers)

    async def get_key(self, request: Request) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        kid = request.path_params["kid"]
        if kid not in self.keys:
            return JSONResponse({"errorCode": "E0000007", "errorSummary": "Not found"}, 404)
        return JSONResponse(
            {
                "kty": "RSA",
                "created": "2016-01-03T18:15:47.000Z",
                "e": "AQAB",
                "kid": kid,
                "use": "sig",
                "x5c": [der_b64(self.keys[kid])],
                "x5t#S256": "wzPVobIrveR1x-PCbjsFGNV-6zn7Rm9KuOWOG4Rk6jE",
            }
        )
