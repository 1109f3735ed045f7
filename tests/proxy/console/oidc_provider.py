"""A small real OpenID Connect provider for the console's sign-in tests, on loopback.

It speaks the documented protocol (discovery, authorization code with PKCE S256, token
endpoint, JWKS, RS256 ID tokens with nonce) and signs in whoever the test names, without a
login form. It records what it was sent, so tests can check PKCE and the nonce were used.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from proxy.demo.loopback_server import LoopbackServer

CLIENT_ID = "authswitch-console"


@dataclass
class OidcProvider:
    """The OP's state: who signs in next, issued codes, what it saw."""

    server: LoopbackServer
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, private=True))
    user: dict[str, Any] = field(default_factory=dict)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    issued_codes: list[str] = field(default_factory=list)
    issued_tokens: list[str] = field(default_factory=list)
    # Test switches: a forged ID token (wrong nonce) or an issuer that doesn't match.
    wrong_nonce: bool = False

    @property
    def issuer(self) -> str:
        return self.server.url

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self._discovery),
                Route("/authorize", self._authorize),
                Route("/token", self._token, methods=["POST"]),
                Route("/jwks", self._jwks),
            ]
        )

    async def _discovery(self, request: Request) -> Response:
        base = self.issuer
        return JSONResponse(
            {
                "issuer": base,
                "authorization_endpoint": f"{base}/authorize",
                "token_endpoint": f"{base}/token",
                "jwks_uri": f"{base}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["none"],
            }
        )

    async def _authorize(self, request: Request) -> Response:
        params = dict(request.query_params)
        self.authorize_requests.append(params)
        if params.get("client_id") != CLIENT_ID or params.get("response_type") != "code":
            return JSONResponse({"error": "invalid_request"}, 400)
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            return JSONResponse({"error": "invalid_request", "error_description": "PKCE"}, 400)
        code = secrets.token_urlsafe(24)
        self.issued_codes.append(code)
        self.codes[code] = {
            "user": dict(self.user),
            "nonce": params.get("nonce"),
            "challenge": params["code_challenge"],
            "redirect_uri": params["redirect_uri"],
        }
        query = urlencode({"code": code, "state": params.get("state", "")})
        return RedirectResponse(f"{params['redirect_uri']}?{query}", 302)

    async def _token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))
        self.token_requests.append(form)
        grant = self.codes.pop(form.get("code", ""), None)  # single use
        if grant is None or form.get("client_id") != CLIENT_ID:
            return JSONResponse({"error": "invalid_grant"}, 400)
        verifier = form.get("code_verifier", "")
        digest = hashlib.sha256(verifier.encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant["challenge"]:
            return JSONResponse({"error": "invalid_grant", "error_description": "PKCE"}, 400)
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return JSONResponse({"error": "invalid_grant"}, 400)
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": grant["user"].get("sub", "user-1"),
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": "not-the-nonce" if self.wrong_nonce else grant["nonce"],
            **grant["user"],
        }
        id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, self.key)
        access_token = secrets.token_urlsafe(24)
        self.issued_tokens.extend([id_token, access_token])
        return JSONResponse(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": id_token,
            },
            headers={"cache-control": "no-store"},
        )

    async def _jwks(self, request: Request) -> Response:
        public = self.key.as_dict(private=False)
        return JSONResponse({"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]})


def start_provider() -> OidcProvider:
    server = LoopbackServer(name="oidc-provider")
    provider = OidcProvider(server)
    server.app = provider.app()
    server.start()
    return provider
