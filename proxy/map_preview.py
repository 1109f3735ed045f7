"""A connection map push, previewed: what it changes in the map and whose callbacks it moves.

The route each connection's callbacks take is joined from the map and the rollout state
exactly as the proxy joins them (`flags.route_report`: the flag's answer, unless the connection
is not imported or not transparent). A connection the map does not hold goes to legacy, as an
unknown connection does in the proxy. So a push that adds a transparent connection at stage
100 %, or imports a flagged one, shows up here as a move to the new provider.

The preview token is a hash of (live map version, new map's content hash, rollout state
version): an apply recomputes all three from what is stored now and refuses a token made for
anything else. Like the stage preview's token it needs no secret: it guards against acting on
an outdated preview, not against forgery.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from connection_map import ConnectionMapDocument, MapDiff, diff_maps
from connection_map.redis_store import map_sha256
from flags import RolloutState, load_rollout_state
from flags.route_report import route_report
from proxy.config import Config
from proxy.flag_backend import UnmanagedFlagBackend, connection_facts_of, open_rollout_store

NOT_IN_MAP = "not_in_map"


@dataclass(frozen=True, slots=True)
class RouteChange:
    """A connection whose callbacks would go elsewhere once the map is pushed."""

    id: str
    before: str
    after: str
    reason_before: str
    reason_after: str

    def to_json(self) -> dict[str, str]:
        return {
            "id": self.id,
            "before": self.before,
            "after": self.after,
            "reason_before": self.reason_before,
            "reason_after": self.reason_after,
        }


@dataclass(frozen=True, slots=True)
class MapPushPreview:
    live_version: int | None
    new_version: int
    new_sha256: str
    state_version: int | None
    """None: the flags live in another system (flags.backend openfeature); routes unknown."""
    stage_percent: float | None
    diff: MapDiff
    route_changes: tuple[RouteChange, ...] | None
    token: str

    @property
    def needs_apply(self) -> bool:
        """Whether pushing it without quoting this preview's token is refused."""
        if self.route_changes is None:  # can't tell who moves: any change needs a look
            return not self.diff.empty
        return bool(self.route_changes)

    def to_json(self) -> dict[str, Any]:
        return {
            "live_version": self.live_version,
            "new_version": self.new_version,
            "new_sha256": self.new_sha256,
            "state_version": self.state_version,
            "stage_percent": self.stage_percent,
            **self.diff.to_json(),
            "route_changes": None
            if self.route_changes is None
            else [change.to_json() for change in self.route_changes],
            "needs_apply": self.needs_apply,
            "token": self.token,
        }


def preview_map_push(
    live: ConnectionMapDocument | None, new: ConnectionMapDocument, state: RolloutState | None
) -> MapPushPreview:
    """Compare `new` with the live map, and where each connection's callbacks go under `state`."""
    diff = diff_maps(live, new)
    digest = map_sha256(new)
    live_version = live.version if live is not None else None
    state_version = state.version if state is not None else None
    changes = None if state is None else _route_changes(live, new, state)
    return MapPushPreview(
        live_version=live_version,
        new_version=new.version,
        new_sha256=digest,
        state_version=state_version,
        stage_percent=state.stage_percent if state is not None else None,
        diff=diff,
        route_changes=changes,
        token=map_push_token(live_version, digest, state_version),
    )


def map_push_token(live_version: int | None, new_sha256: str, state_version: int | None) -> str:
    """``<live version>-<16 hex>``: the prefix lets an error say which preview it was."""
    canonical = json.dumps([live_version, new_sha256, state_version])
    return f"{live_version or 0}-{hashlib.sha256(canonical.encode()).hexdigest()[:16]}"


def _routes(
    document: ConnectionMapDocument | None, state: RolloutState
) -> dict[str, tuple[str, str]]:
    if document is None:
        return {}
    rows = route_report(state, [connection_facts_of(c) for c in document.connections])
    return {row.id: (row.route, row.reason) for row in rows}


def _route_changes(
    live: ConnectionMapDocument | None, new: ConnectionMapDocument, state: RolloutState
) -> tuple[RouteChange, ...]:
    before, after = _routes(live, state), _routes(new, state)
    absent = ("legacy", NOT_IN_MAP)  # the proxy sends an unknown connection to legacy
    changes = []
    for connection_id in sorted(before.keys() | after.keys()):
        old, new_route = before.get(connection_id, absent), after.get(connection_id, absent)
        if old[0] != new_route[0]:
            changes.append(RouteChange(connection_id, old[0], new_route[0], old[1], new_route[1]))
    return tuple(changes)


def current_rollout_state(config: Config) -> RolloutState | None:
    """The rollout state the proxies serve now; None when another flag system holds it.

    FlagFileError / RolloutStoreError when it can't be read.
    """
    if config.flags.backend == "file":
        assert config.flags.file is not None  # the config requires it for the file backend
        return load_rollout_state(config.flags.file)
    try:
        store = open_rollout_store(config, client_name="authswitch-map-preview", min_timeout=2.0)
    except UnmanagedFlagBackend:
        return None
    return store.read()
