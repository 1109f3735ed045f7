"""Rate limits, counted in Redis by `limits`: global (sized for the provider's hook traffic),
per identifier, and per end-user address where the hook's payload carries one.

Never per address of the hook's caller: that is the provider's servers or a load balancer, and
one bucket for every user would let anyone lock every user out with wrong passwords."""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter


class RateLimits:
    """`hit` counts one attempt; it answers the seconds to wait when a limit is reached."""

    def __init__(
        self,
        storage: RedisStorage,
        *,
        per_ip: str,
        per_identifier: str,
        global_rate: str,
    ) -> None:
        self._storage = storage
        self._limiter = SlidingWindowCounterRateLimiter(storage)
        self._global: RateLimitItem = parse(global_rate)
        self._ip: RateLimitItem = parse(per_ip)
        self._identifier: RateLimitItem = parse(per_identifier)

    async def hit(self, client_ip: str | None, identifier_hash: str) -> int | None:
        """None when the attempt may go on, else the Retry-After in seconds. `client_ip`: the
        end user's address from the payload, None when it carries none (no per-address limit)."""
        scopes: list[tuple[RateLimitItem, tuple[str, ...]]] = [(self._global, ("global",))]
        if client_ip is not None:
            scopes.append((self._ip, ("ip", client_ip)))
        scopes.append((self._identifier, ("id", identifier_hash)))
        for item, scope in scopes:
            if not await self._limiter.hit(item, *scope):
                stats = await self._limiter.get_window_stats(item, *scope)
                return max(1, math.ceil(stats.reset_time - time.time()))
        return None
