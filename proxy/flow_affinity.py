"""Flow affinity: the application asks where to start a login; its callback follows the answer.

``GET {ops_prefix}/flows/start?connection=<id>&flow=<AuthnRequest ID or OIDC state>`` with the
shared secret in a header answers ``{"provider": "new"|"legacy", "reason": ...}`` from the same
decision a callback would get now, and records flow -> (connection, provider) for
``flow_affinity.ttl_seconds``. The callback whose ``InResponseTo`` / ``state`` names that flow
then goes where the login started, even if the flag flipped in between (see ``RouteDecider``).
"""

from __future__ import annotations

import hmac
import logging
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from connection_map import ConnectionMap
from connection_map.routes import Identification, Outcome
from proxy.callback.decide import RouteDecider
from proxy.config import Config
from proxy.http.asgi_types import RawHeaders, Scope, Send
from proxy.http.responses import send_json

if TYPE_CHECKING:
    # Imported where used: the Redis flow store's client library loads only with flow affinity on.
    from proxy.flow_store import FlowStore

logger = logging.getLogger("authswitch.flows")

START_PATH = "flows/start"  # under ops_prefix, which no legacy route may use
MAX_FLOW_ID_LENGTH = 1024
_MAX_QUERY_FIELDS = 8


def flow_store_for(config: Config) -> FlowStore | None:
    """The configured flow store, or None when flow affinity is off."""
    settings = config.flow_affinity
    if not settings.enabled:
        return None
    from proxy.flow_store import FlowStore, RedisFlowStore

    store = settings.store or ("redis" if config.flags.backend == "redis" else "memory")
    if store == "memory":
        return FlowStore(ttl_seconds=settings.ttl_seconds, max_records=settings.max_records)
    redis_settings = config.flags.redis
    return RedisFlowStore(
        redis_settings.url,
        key_prefix=redis_settings.key_prefix,
        ttl_seconds=settings.ttl_seconds,
        max_records=settings.max_records,
        socket_timeout_seconds=redis_settings.socket_timeout_seconds,
        lookup_timeout_seconds=settings.lookup_timeout_seconds,
        password=redis_settings.password(),
        ca_file=redis_settings.ca_file,
        topology=redis_settings.redis_topology(),
        pubsub=redis_settings.pubsub,
    )


class FlowStartEndpoint:
    """Answers the application's "which provider starts this login?" and records the answer."""

    def __init__(self, config: Config, store: FlowStore, decider: RouteDecider) -> None:
        settings = config.flow_affinity
        self._secret = settings.secret()
        self._header = settings.secret_header.encode()
        self._store = store
        self._decider = decider

    async def __call__(self, scope: Scope, send: Send, connections: ConnectionMap) -> None:
        if scope["method"] != "GET":
            await send_json(send, 405, {"error": "method_not_allowed"}, [(b"allow", b"GET")])
            return
        supplied = _header(scope["headers"], self._header)
        if supplied is None or not hmac.compare_digest(supplied, self._secret):
            await send_json(send, 401, {"error": "unauthorized"})
            return
        params = _query(scope["query_string"])
        if params is None:
            await send_json(
                send,
                400,
                {"error": "bad_request", "message": "expected ?connection=<id>&flow=<flow id>"},
            )
            return
        connection_id, flow_id = params
        connection = connections.get(connection_id)
        if connection is None:
            await send_json(
                send, 200, {"provider": "legacy", "reason": "unknown_connection", "recorded": False}
            )
            return
        decision = self._decider.decide(
            Identification(Outcome.IDENTIFIED, connection),
            connection.protocol.value,
            bounced_back=False,
            unsolicited=False,
        )
        from proxy.flow_store import FlowRecord

        recorded = await self._store.record(
            flow_id, FlowRecord(connection.id, decision.destination)
        )
        logger.info(
            "flow started",
            extra={
                "fields": {
                    "connection": connection.id,
                    "provider": decision.destination,
                    "reason": decision.reason,
                    "recorded": recorded,
                }
            },
        )
        await send_json(
            send,
            200,
            {"provider": decision.destination, "reason": decision.reason, "recorded": recorded},
        )


def _query(query_string: bytes) -> tuple[str, str] | None:
    """(connection, flow) from the query string, each exactly once; None if malformed."""
    try:
        pairs = parse_qsl(
            query_string.decode("latin-1"),
            keep_blank_values=True,
            max_num_fields=_MAX_QUERY_FIELDS,
            errors="strict",
        )
    except (ValueError, UnicodeDecodeError):
        return None
    values: dict[str, list[str]] = {}
    for name, value in pairs:
        values.setdefault(name, []).append(value)
    connection, flow = values.get("connection", []), values.get("flow", [])
    if len(connection) != 1 or len(flow) != 1:
        return None
    if not connection[0] or not 0 < len(flow[0]) <= MAX_FLOW_ID_LENGTH:
        return None
    return connection[0], flow[0]


def _header(headers: RawHeaders, name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None
