"""The legacy verifier over an OAuth 2.0 token endpoint: the resource owner password
credentials grant (RFC 6749 section 4.3).

Written on aiohttp rather than authlib's httpx client: the same call cost about five times the
CPU through authlib + httpx (bench/README.md), and the broker's other clients are aiohttp.
"""

from __future__ import annotations

import asyncio
import base64
import json
from urllib.parse import quote

import aiohttp

from proxy.broker.credential import Credential
from proxy.broker.http_client import HttpClient
from proxy.broker.verifier import LegacyUnavailable, Profile

# RFC 6749 section 5.2 error codes; any other code is reported as "other" (never quoted).
_ERROR_CODES = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
    }
)


class OAuth2PasswordVerifier(HttpClient):
    """Verified: 200 with an ``access_token``. Not verified: ``invalid_grant`` (wrong password,
    unknown user). Anything else (another error code, a 5xx, no answer within
    `timeout_seconds`, a refused connection) means legacy could not answer: the client or its
    configuration is wrong, or the server is down.
    """

    def __init__(
        self,
        token_url: str,
        *,
        client_id: str,
        client_secret: str | None,
        client_auth: str,
        scope: str | None,
        timeout_seconds: float,
    ) -> None:
        self._url = token_url
        self._client_id = client_id
        self._secret = client_secret
        self._basic = client_auth == "client_secret_basic"
        self._scope = scope
        super().__init__(timeout_seconds)

    async def verify(self, credential: Credential) -> Profile | None:
        assert self._session is not None, "start() first"
        form = {
            "grant_type": "password",
            "username": credential.identifier,
            "password": credential.password.reveal(),
        }
        if self._scope:
            form["scope"] = self._scope
        headers = {"accept": "application/json"}
        if self._basic and self._secret is not None:
            # RFC 6749 2.3.1: both form-urlencoded, then HTTP Basic.
            pair = f"{quote(self._client_id, safe='')}:{quote(self._secret, safe='')}"
            headers["authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:  # client_secret_post, or a public client (client_id only)
            form["client_id"] = self._client_id
            if self._secret is not None:
                form["client_secret"] = self._secret
        try:
            async with (
                asyncio.timeout(self._timeout),
                self._session.post(
                    self._url,
                    data=form,
                    headers=headers,
                    allow_redirects=False,
                ) as response,
            ):
                status, body = response.status, await response.read()
        except (TimeoutError, aiohttp.ClientError, OSError):
            # aiohttp's messages can quote the request; only the kind of failure goes on.
            raise LegacyUnavailable("token endpoint unreachable or too slow") from None
        document = _json_object(body)
        if status == 200:
            token = document.get("access_token") if document else None
            if isinstance(token, str) and token:
                return Profile()
            raise LegacyUnavailable("token endpoint answered 200 without a token")
        if status >= 500 or document is None:
            raise LegacyUnavailable(f"token endpoint answered {status}")
        error = document.get("error")
        if error == "invalid_grant":
            return None
        code = error if error in _ERROR_CODES else "other"
        raise LegacyUnavailable(f"token endpoint answered {status} with error {code}")


def _json_object(body: bytes) -> dict[str, object] | None:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return document if isinstance(document, dict) else None
