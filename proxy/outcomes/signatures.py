"""Timestamped HMAC-SHA256 webhook signatures: ``t=<timestamp>, v1=<hex>`` over ``"{t}.{body}"``.

WorkOS signs with a millisecond timestamp (header ``WorkOS-Signature``); the generic outcome
webhook uses the same scheme with seconds. Every comparison is constant-time; a timestamp
outside the tolerance window is refused before any other work.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Literal

SignatureProblem = Literal["bad_signature", "stale"]


class SignatureRefused(Exception):
    def __init__(self, problem: SignatureProblem) -> None:
        super().__init__(problem)
        self.problem = problem


@dataclass(frozen=True, slots=True)
class SignedDelivery:
    """A verified delivery: its timestamp and digest (the digest identifies a replay)."""

    timestamp: int
    digest: str


def compute_signature(secret: bytes, timestamp: int | str, body: bytes) -> str:
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: bytes, timestamp: int, body: bytes) -> str:
    """What a sender puts in the header (for tests and glue code)."""
    return f"t={timestamp}, v1={compute_signature(secret, timestamp, body)}"


def verify(
    header: bytes | None,
    body: bytes,
    secret: bytes,
    *,
    now: float,
    tolerance_seconds: float,
    units_per_second: int,
) -> SignedDelivery:
    """The delivery if the header is well formed, fresh and signs ``body``; else refused."""
    if header is None or len(header) > 1024:
        raise SignatureRefused("bad_signature")
    parts: dict[str, list[str]] = {}
    for item in header.decode("latin-1").split(","):
        name, _, value = item.strip().partition("=")
        parts.setdefault(name, []).append(value)
    stamps = parts.get("t", [])
    # ASCII digits only: str.isdigit() also takes '²' and other digits int() refuses.
    if len(stamps) != 1 or not (stamps[0].isascii() and stamps[0].isdigit()) or len(stamps[0]) > 16:
        raise SignatureRefused("bad_signature")
    timestamp = int(stamps[0])
    if abs(now - timestamp / units_per_second) > tolerance_seconds:
        raise SignatureRefused("stale")
    expected = compute_signature(secret, stamps[0], body).encode()
    presented = [value.encode("latin-1").lower() for value in parts.get("v1", [])]
    # Any one v1 may match (a sender rotating its secret sends two); compare each in full.
    if not any(hmac.compare_digest(value, expected) for value in presented):
        raise SignatureRefused("bad_signature")
    return SignedDelivery(timestamp, expected.decode())
