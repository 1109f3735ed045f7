"""Idempotent provisioning: check and create under a per-identifier lock in Redis.

The lock (SET NX PX, released only by its holder) makes concurrent hook calls for the same
new user create it once; "already exists" from the provider counts as success, so a retry
after a crash or an expired lock is harmless.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Protocol

from redis.asyncio import Redis

from proxy.broker import metrics
from proxy.broker.credential import Credential
from proxy.broker.verifier import Profile

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_RETRY_SECONDS = 0.02


class ProvisioningFailed(Exception):
    """The new provider did not take the user (the message never carries the payload).

    `status` is the provider's HTTP answer when there was one; `unreachable` says there was
    none (connection error, timeout). The broker fails closed either way; a bulk import tells
    "the provider is down" (worth a retry) from "this user was refused" with them.
    """

    def __init__(self, message: str, *, status: int | None = None, unreachable: bool = False):
        super().__init__(message)
        self.status = status
        self.unreachable = unreachable


class Provisioner(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def exists(self, identifier: str, profile: Profile) -> bool:
        """Whether the new provider already holds this user."""
        ...

    async def create(self, credential: Credential, profile: Profile) -> bool:
        """Create the user with the password unchanged; False when it already exists."""
        ...


async def provision(provisioner: Provisioner, credential: Credential, profile: Profile) -> str:
    """Check, then create: PROVISIONED or ALREADY_PRESENT (concurrent callers: take the lock)."""
    if await provisioner.exists(credential.identifier, profile):
        return metrics.ALREADY_PRESENT
    created = await provisioner.create(credential, profile)
    return metrics.PROVISIONED if created else metrics.ALREADY_PRESENT


class IdempotentProvisioning:
    def __init__(
        self, redis: Redis, provisioner: Provisioner, *, key_prefix: str, lock_seconds: float
    ) -> None:
        self._redis = redis
        self._provisioner = provisioner
        self._prefix = f"{key_prefix}:broker:lock:"
        self._lock_ms = int(lock_seconds * 1000)

    async def ensure(self, credential: Credential, profile: Profile, identifier_hash: str) -> str:
        """PROVISIONED or ALREADY_PRESENT; the caller bounds the wait with its budget."""
        key = self._prefix + identifier_hash
        token = secrets.token_hex(16)
        # The holder may be another replica: poll the lock, an in-process Event can't see it.
        while not await self._redis.set(key, token, nx=True, px=self._lock_ms):  # noqa: ASYNC110
            await asyncio.sleep(_RETRY_SECONDS)
        try:
            return await provision(self._provisioner, credential, profile)
        finally:
            await asyncio.shield(self._release(key, token))

    async def _release(self, key: str, token: str) -> None:
        await self._redis.eval(_RELEASE, 1, key, token)
