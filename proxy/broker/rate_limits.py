"""Rate limits per client IP, per identifier and global, counted in Redis by `limits`."""

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

    async def hit(self, client_ip: str, identifier_hash: str) -> int | None:
        """None when the attempt may go on, else the Retry-After in seconds."""
        for item, scope in (
            (self._global, ("global",)),
            (self._ip, ("ip", client_ip)),
            (self._identifier, ("id", identifier_hash)),
        ):
            if not await self._limiter.hit(item, *scope):
                stats = await self._limiter.get_window_stats(item, *scope)
                return max(1, math.ceil(stats.reset_time - time.time()))
        return None
