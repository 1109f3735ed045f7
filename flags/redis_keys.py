"""The Redis key layout of a deployment's rollout state, and Redis clients with bounded timeouts.

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
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

KEY_PREFIX_PATTERN = r"^[A-Za-z0-9_.:{}-]{1,100}$"
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


def connect(
    url: str, *, socket_timeout: float, client_name: str, password: str | None = None
) -> redis.Redis:
    """A client whose every command gives up after ``socket_timeout`` and is never retried.

    redis-py retries failed commands by default (three times, with backoff), which would turn a
    0.5 s timeout into seconds; callers here have their own retry policy. ``password``, when
    given, wins over one in the URL (it comes from a mounted secret file, not the config).
    """
    extra = {"password": password} if password is not None else {}
    return redis.Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
        retry=Retry(NoBackoff(), 0),
        retry_on_timeout=False,
        client_name=client_name,
        **extra,
    )


def redact_url(url: str) -> str:
    """The URL without password or query (``redis://user:***@host:6379/0``), for people to read."""
    try:
        parts = urlsplit(url)
        if not parts.netloc:  # unix:///path/to/redis.sock
            return f"{parts.scheme}://{parts.path}"
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        credentials = ""
        if parts.username or parts.password is not None:
            credentials = (parts.username or "") + (":***" if parts.password is not None else "")
            credentials += "@"
        port = f":{parts.port}" if parts.port else ""
        # The query is dropped too: redis-py also reads a password from ``?password=``.
        return urlunsplit((parts.scheme, f"{credentials}{host}{port}", parts.path, "", ""))
    except ValueError:
        return "(unparseable redis url)"
