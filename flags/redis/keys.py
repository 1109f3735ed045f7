"""The Redis key layout of a deployment's rollout state.

With ``key_prefix: authswitch:prod``::

    authswitch:prod:flags:doc       string  the rollout state, JSON (its "version" inside)
    authswitch:prod:flags:version   string  the same version as an integer: cheap to poll
    authswitch:prod:flags:audit     stream  one entry per change (see ``flags.audit``)
    authswitch:prod:flags:changed   pub/sub channel; the message is the new version
    authswitch:prod:flags:replica_version
                                    string  the highest version a replica had in force when it
                                            found ``doc`` missing (Redis lost its data); a write
                                            to the empty store is refused while it is set

On Redis Cluster, put the deployment in a hash tag (``authswitch:{prod}``) so the keys of one
write share a slot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Clients are built by foundation.redis_client; connect and redact_url keep their names here.
from foundation.redis_client import connect_redis as connect
from foundation.redis_client import redact_url
from foundation.redis_settings import KEY_PREFIX_PATTERN

__all__ = ["KEY_PREFIX_PATTERN", "RedisKeys", "connect", "redact_url"]

_KEY_PREFIX = re.compile(KEY_PREFIX_PATTERN)


@dataclass(frozen=True, slots=True)
class RedisKeys:
    """The names one deployment's rollout state lives under."""

    prefix: str

    def __post_init__(self) -> None:
        if not _KEY_PREFIX.fullmatch(self.prefix):
            raise ValueError(
                "key prefix must be 1-100 characters of letters, digits and _ . : { } -"
            )

    @property
    def doc(self) -> str:
        return f"{self.prefix}:flags:doc"

    @property
    def version(self) -> str:
        return f"{self.prefix}:flags:version"

    @property
    def audit(self) -> str:
        return f"{self.prefix}:flags:audit"

    @property
    def changed(self) -> str:
        return f"{self.prefix}:flags:changed"

    @property
    def replica_version(self) -> str:
        return f"{self.prefix}:flags:replica_version"
