"""Map pushes from the console: the file's diff against the live map in Redis, the push history,
and pushing the file or rolling back to a kept version, through the same preview and token as
`authswitch connections push | rollback` (``proxy.map_push``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeVar

import redis

from connection_map import ConnectionMap, ConnectionMapError
from connection_map import read_connection_map_document as read_map_file
from connection_map.model import ConnectionMapDocument
from connection_map.redis_store import PushRecord, PushResult, RedisMapStore
from flags.audit import check_reason
from proxy.config import Config
from proxy.console.actions import ActionRefused
from proxy.map_backend import open_map_store
from proxy.map_preview import MapPushPreview
from proxy.map_push import (
    MapPushRefused,
    Problem,
    preview_push,
    push_previewed,
    rollback_document,
)

_STATUS: dict[Problem, int] = {
    "map_unreadable": 503,
    "flags_file": 503,
    "backend_unavailable": 503,
    "not_kept": 404,
    "already_live": 409,
    "reason_required": 400,
    "stale_preview": 409,
    "preview_required": 409,
    "push_refused": 409,
}
_HISTORY = 100  # pushes listed on the Map page
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class MapChange:
    """What an operator asks for: push the config's map file, or roll back to a kept version."""

    kind: Literal["push", "rollback"]
    version: int | None = None

    def describe(self) -> str:
        if self.kind == "rollback":
            return f"Roll the connection map back to version {self.version}"
        return "Push the map file to Redis"


def parse_map_change(params: Mapping[str, str]) -> MapChange:
    kind = params.get("change", "")
    if kind == "push":
        return MapChange("push")
    if kind == "rollback":
        version = params.get("version", "").strip()
        if not version.isdigit() or len(version) > 12:
            raise ActionRefused(400, "a rollback needs the kept version to push again")
        return MapChange("rollback", int(version))
    raise ActionRefused(400, f"unknown map change {kind[:40]!r}")


@dataclass(frozen=True, slots=True)
class MapOverview:
    """What the Map page shows when the map lives in Redis."""

    where: str
    live_version: int | None
    history: list[PushRecord]
    kept: set[int]
    file_preview: MapPushPreview | None
    file_problem: str | None
    """Why the file can't be compared (invalid), else None."""


class MapDesk:
    """Reads and pushes the map in Redis; each call opens one client and closes it."""

    def __init__(self, config: Config) -> None:
        self._config = config

    @property
    def in_redis(self) -> bool:
        return self._config.connection_map_redis is not None

    @property
    def file(self) -> str:
        return str(self._config.connection_map)

    def _with_store(self, work: Callable[[RedisMapStore], T]) -> T:
        store = open_map_store(self._config, min_timeout=1.0)
        try:
            return work(store)
        except MapPushRefused as exc:
            raise ActionRefused(_STATUS[exc.problem], exc.message) from None
        except redis.RedisError as exc:
            raise ActionRefused(
                503, f"{store.where}: {type(exc).__name__}: {exc}; nothing pushed"
            ) from None
        finally:
            store.close()

    def push_history(self, limit: int) -> list[PushRecord]:
        """The last pushes, newest first (none when the map is a file)."""
        if not self.in_redis:
            return []
        return self._with_store(lambda store: store.history(limit))

    def overview(self) -> MapOverview:
        def read(store: RedisMapStore) -> MapOverview:
            live, history, kept = store.version(), store.history(_HISTORY), store.kept_versions()
            try:
                document = self._file_document()
            except ActionRefused as refused:
                return MapOverview(store.where, live, history, kept, None, refused.message)
            preview = preview_push(self._config, store, document)
            return MapOverview(store.where, live, history, kept, preview, None)

        return self._with_store(read)

    def preview(self, change: MapChange) -> MapPushPreview:
        self._needs_redis()
        return self._with_store(lambda store: self._plan(store, change)[1])

    def apply(
        self, change: MapChange, *, token: str, actor: str, reason: str
    ) -> tuple[MapPushPreview, PushResult]:
        """Push exactly the previewed change; ``ActionRefused(409)`` if the preview is stale."""
        self._needs_redis()

        def push(store: RedisMapStore) -> tuple[MapPushPreview, PushResult]:
            document, plan = self._plan(store, change)
            result = push_previewed(
                store,
                document,
                plan,
                token=token,
                reason=check_reason(reason),  # as a flag change's: AuditInputError -> 400
                actor=actor,
                rolled_back_to=change.version,
            )
            return plan, result

        return self._with_store(push)

    def _plan(
        self, store: RedisMapStore, change: MapChange
    ) -> tuple[ConnectionMapDocument, MapPushPreview]:
        if change.kind == "rollback":
            assert change.version is not None
            document = rollback_document(store, change.version)
        else:
            document = self._file_document()
        return document, preview_push(self._config, store, document)

    def _file_document(self) -> ConnectionMapDocument:
        """The config's map file, validated as the replicas will build it."""
        try:
            document = read_map_file(self._config.connection_map)
            ConnectionMap.build(document)
        except ConnectionMapError as exc:
            raise ActionRefused(422, f"{exc}; nothing pushed") from None
        return document

    def _needs_redis(self) -> None:
        if not self.in_redis:
            raise ActionRefused(
                409,
                "the connection map is a file here: pushes need Redis (set 'connection_map_redis')",
            )
