"""Sticky percentage buckets: a connection's bucket depends only on (salt, connection id)."""

from __future__ import annotations

from hashlib import sha256

BUCKETS = 10_000
"""One bucket is 0.01 % of connections (a basis point)."""


def bucket(salt: str, connection_id: str) -> int:
    """Return the connection's bucket in ``0..BUCKETS - 1``; stable for the same inputs.

    A connection is in a stage of ``p`` basis points iff ``bucket < p``, so raising the stage only
    adds connections (5 % is a subset of 25 %). The hash is ours, not a flag vendor's, so upgrading
    a library can never reshuffle a live rollout. ``surrogatepass`` keeps an odd connection id
    (lone surrogate from a decoded URL) from raising on the hot path; valid text hashes as UTF-8.
    """
    key = f"{salt}:{connection_id}".encode("utf-8", "surrogatepass")
    return (int.from_bytes(sha256(key).digest()[:8], "big") * BUCKETS) >> 64
