"""A previewed push of the connection map to Redis, shared by `authswitch connections push |
rollback` and the console's Map page: read the preview, then push exactly what it showed.

A push that moves any connection's callbacks goes through only with the token of a preview of
the very same change (same live map, same new map, same rollout state); the token is checked
against what is stored now, so a stale preview writes nothing. Every refusal is a
``MapPushRefused`` whose ``problem`` says which kind it is (each front end maps it to its own
exit code or HTTP status) and whose message is safe to show: it names the store by its redacted
address, never a credential.
"""

from __future__ import annotations

from typing import Literal

import redis

from connection_map import ConnectionMapDocument, ConnectionMapError
from connection_map.redis_store import PushRefused, PushResult, RedisMapStore
from flags import FlagFileError, RolloutStoreError
from proxy.config import Config
from proxy.map_preview import MapPushPreview, current_rollout_state, preview_map_push

Problem = Literal[
    "map_unreadable",  # the live or a kept map in Redis is invalid
    "flags_file",  # the rollout state file can't be read
    "backend_unavailable",  # Redis (map or flags) did not answer
    "not_kept",  # rollback to a version the history no longer keeps
    "already_live",  # rollback to the live version
    "reason_required",
    "stale_preview",  # the token is not the one a preview of this change gives now
    "preview_required",  # the push moves callbacks and no token was given
    "push_refused",  # someone else pushed meanwhile, or the version is not newer
]


class MapPushRefused(Exception):
    """Nothing was written; ``problem`` says why, the message explains it."""

    def __init__(self, problem: Problem, message: str, plan: MapPushPreview | None = None) -> None:
        super().__init__(message)
        self.problem, self.message, self.plan = problem, message, plan


def _unavailable(store: RedisMapStore, exc: redis.RedisError) -> MapPushRefused:
    return MapPushRefused(
        "backend_unavailable", f"{store.where}: {type(exc).__name__}: {exc}; nothing pushed"
    )


def preview_push(
    config: Config, store: RedisMapStore, document: ConnectionMapDocument
) -> MapPushPreview:
    """`document` against the live map in `store`, routes at the rollout state served now."""
    try:
        live = store.read()
        state = current_rollout_state(config)
    except ConnectionMapError as exc:
        raise MapPushRefused("map_unreadable", f"the live map can't be read: {exc}") from None
    except FlagFileError as exc:
        raise MapPushRefused("flags_file", str(exc)) from None
    except RolloutStoreError as exc:
        raise MapPushRefused("backend_unavailable", str(exc)) from None
    except redis.RedisError as exc:
        raise _unavailable(store, exc) from None
    return preview_map_push(live, document, state)


def rollback_document(store: RedisMapStore, version: int) -> ConnectionMapDocument:
    """The kept map `version`, renumbered as the next version (a rollback is a new push)."""
    try:
        kept = store.read_version(version)
        live = store.version()
    except ConnectionMapError as exc:
        raise MapPushRefused("map_unreadable", str(exc)) from None
    except redis.RedisError as exc:
        raise _unavailable(store, exc) from None
    if kept is None:
        raise MapPushRefused(
            "not_kept",
            f"version {version} is not kept in {store.where} (see 'authswitch connections "
            "history'; connection_map_redis.history sets how many are kept)",
        )
    if live == version:
        raise MapPushRefused("already_live", f"version {version} is the live map already")
    return kept.model_copy(update={"version": (live or 0) + 1})


def push_previewed(
    store: RedisMapStore,
    document: ConnectionMapDocument,
    plan: MapPushPreview,
    *,
    token: str | None,
    reason: str | None,
    actor: str,
    expect_version: int | None = None,
    rolled_back_to: int | None = None,
) -> PushResult:
    """Push `document`, whose preview computed from what is stored now is `plan`.

    `token`: the preview the person saw (None: none, allowed only when nobody moves).
    `expect_version`: the version that must be live (default: the one the preview read).
    """
    if not reason:
        raise MapPushRefused(
            "reason_required", "a reason is required to push (it is kept in the audit trail)"
        )
    if token is not None and token != plan.token:
        raise MapPushRefused(
            "stale_preview",
            f"preview {token} is stale: the live map, the file or the rollout state changed "
            f"since (now {plan.token})",
            plan,
        )
    if token is None and plan.needs_apply:
        raise MapPushRefused(
            "preview_required", "this push changes where callbacks go; nothing pushed", plan
        )
    expected = plan.live_version if expect_version is None else expect_version
    try:
        return store.push(
            document,
            expected_version=expected,
            actor=actor,
            reason=reason,
            action="rollback" if rolled_back_to is not None else "push",
            rolled_back_to=rolled_back_to,
        )
    except PushRefused as exc:
        raise MapPushRefused("push_refused", str(exc)) from None
    except redis.RedisError as exc:
        raise _unavailable(store, exc) from None
