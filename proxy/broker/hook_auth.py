"""Authenticating the caller of a hook: a shared secret header or an HMAC of the body."""

from __future__ import annotations

import hashlib
import hmac
from typing import Literal

from proxy.broker.hook_http import RawHeaders


class HookAuthenticator:
    """Checks one request; every comparison is constant-time."""

    def __init__(
        self,
        mode: Literal["shared_secret", "hmac"],
        secret: bytes,
        *,
        secret_header: str,
        signature_header: str,
    ) -> None:
        self._mode = mode
        self._secret = secret
        self._header = (secret_header if mode == "shared_secret" else signature_header).encode()

    def allows(self, headers: RawHeaders, body: bytes) -> bool:
        presented = [value for name, value in headers if name == self._header]
        if len(presented) != 1:
            return False
        if self._mode == "shared_secret":
            return hmac.compare_digest(presented[0], self._secret)
        signature = presented[0].removeprefix(b"sha256=").lower()
        expected = hmac.new(self._secret, body, hashlib.sha256).hexdigest().encode()
        return hmac.compare_digest(signature, expected)


def sign(secret: bytes, body: bytes) -> str:
    """The signature header value a caller sends in `hmac` mode."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
