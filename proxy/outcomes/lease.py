"""One holder at a time across replicas: a Redis lease with a token (SET NX PX, renewed by Lua).

A holder that cannot renew (Redis down, or another replica took over after expiry) stops acting
at once; the lease expires on its own if the holder dies, so another replica takes over within
`lease_seconds`.
"""

from __future__ import annotations

import contextlib
import secrets
from typing import Protocol

import redis

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Lease(Protocol):
    def hold(self) -> bool:
        """Acquire or renew; True while this process may act."""
        ...

    def release(self) -> None: ...


class ProcessLease:
    """Without Redis there is one process: it always holds the lease."""

    def hold(self) -> bool:
        return True

    def release(self) -> None:
        return None


class RedisLease:
    def __init__(self, client: redis.Redis, key: str, *, seconds: float) -> None:
        self._client = client
        self.key = key
        self._millis = int(seconds * 1000)
        self.token = secrets.token_hex(16)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self.held = False

    def hold(self) -> bool:
        try:
            if self.held and self._renew(keys=[self.key], args=[self.token, self._millis]):
                return True
            acquired = self._client.set(self.key, self.token, nx=True, px=self._millis)
        except redis.RedisError:
            self.held = False
            return False
        self.held = bool(acquired)
        return self.held

    def release(self) -> None:
        if self.held:
            with contextlib.suppress(redis.RedisError):  # else it expires by itself
                self._release(keys=[self.key], args=[self.token])
        self.held = False
