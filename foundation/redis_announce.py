"""How a writer tells the followers that a change was committed: PUBLISH on the change channel.

Standalone and Sentinel: inside the MULTI/EXEC, so the change and its announcement are one.
Cluster: a cluster pipeline refuses PUBLISH (it has no key, hence no slot), so it is sent
right after EXEC; if it fails the change is stored all the same and followers find it at their
next resync. ``publish`` False (managed Redis that forbids pub/sub): nothing is published,
followers poll.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
import redis.cluster

log = logging.getLogger(__name__)


class ChangeAnnouncer:
    """Queues or sends the PUBLISH of one writer, as its Redis topology allows."""

    def __init__(self, client: redis.Redis, *, publish: bool = True, where: str = "redis") -> None:
        self._client = client
        self._where = where
        self.publish = publish
        self.after_commit_only = isinstance(client, redis.cluster.RedisCluster)

    def queue(self, pipe: Any, channel: str, message: str | int) -> None:
        """In the transaction (after ``multi()``), where the topology allows it."""
        if self.publish and not self.after_commit_only:
            pipe.publish(channel, message)

    def after_commit(self, channel: str, message: str | int) -> None:
        """After a successful ``execute()``: the PUBLISH a cluster pipeline could not hold."""
        if not (self.publish and self.after_commit_only):
            return
        try:
            self._client.publish(channel, message)
        except redis.RedisError as exc:
            # Stored all the same: followers find the change at their next resync.
            log.warning("%s: the change was stored but not announced: %s", self._where, exc)
