"""Authenticating the caller of a hook: a shared secret header, or a signed timestamp and body.

`hmac` mode follows the scheme of Stripe's and WorkOS's webhook signatures: the caller sends
``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">``; a signature outside the
tolerance window is refused, and so is one already seen (the service remembers signatures in
Redis for as long as they could be accepted). A captured request can't be replayed. The
`shared_secret` mode is weaker: whoever sees one request can send any.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from proxy.http.asgi_types import RawHeaders


class HookRefused(Exception):
    """The caller is not authenticated; the reason is a fixed code (never the header's value)."""


@dataclass(frozen=True)
class Signed:
    """An authenticated `hmac` request: the signature to remember and for how long."""

    signature_id: str  # a hash of the signature, for the seen-signature record
    valid_for_seconds: int


class HookAuthenticator:
    """Checks one request; every comparison is constant-time."""

    def __init__(
        self,
        mode: Literal["shared_secret", "hmac"],
        secret: bytes,
        *,
        secret_header: str,
        signature_header: str,
        tolerance_seconds: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._mode = mode
        self._secret = secret
        self._header = (secret_header if mode == "shared_secret" else signature_header).encode()
        self._tolerance = tolerance_seconds
        self._clock = clock

    def check(self, headers: RawHeaders, body: bytes) -> Signed | None:
        """None for a right shared secret, `Signed` for a valid signature; else HookRefused."""
        presented = [value for name, value in headers if name == self._header]
        if len(presented) != 1:
            raise HookRefused("missing" if not presented else "repeated_header")
        if self._mode == "shared_secret":
            if not hmac.compare_digest(presented[0], self._secret):
                raise HookRefused("wrong_secret")
            return None
        timestamp, signatures = _parse_signature(presented[0])
        now = self._clock()
        if abs(now - timestamp) > self._tolerance:
            raise HookRefused("signature_expired")
        expected = _digest(self._secret, timestamp, body).encode()
        # Every candidate compared, so the time taken does not tell which one matched.
        matched = [s for s in signatures if hmac.compare_digest(s, expected)]
        if not matched:
            raise HookRefused("wrong_signature")
        return Signed(
            signature_id=hashlib.sha256(matched[0]).hexdigest()[:32],
            valid_for_seconds=max(1, math.ceil(timestamp + self._tolerance - now)),
        )


def sign(secret: bytes, body: bytes, timestamp: int | None = None) -> str:
    """The signature header value a caller sends in `hmac` mode (now, unless `timestamp`)."""
    when = int(time.time()) if timestamp is None else timestamp
    return f"t={when},v1={_digest(secret, when, body)}"


def _digest(secret: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(secret, b"%d." % timestamp + body, hashlib.sha256).hexdigest()


def _parse_signature(value: bytes) -> tuple[int, list[bytes]]:
    """(t, [v1, ...]) of ``t=..,v1=..[,v1=..]``: several v1 while a secret is being rotated."""
    timestamps: list[bytes] = []
    signatures: list[bytes] = []
    for item in value.split(b","):
        name, _, content = item.strip().partition(b"=")
        if name == b"t":
            timestamps.append(content)
        elif name == b"v1":
            signatures.append(content.lower())
    if len(timestamps) != 1 or not timestamps[0].isdigit() or len(timestamps[0]) > 12:
        raise HookRefused("malformed_signature")
    if not signatures:
        raise HookRefused("malformed_signature")
    return int(timestamps[0]), signatures
