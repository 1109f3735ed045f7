"""Audit records: who changed the rollout state, when, why, and what it was before and after.

A record holds the actor, the reason and the changed fields of the state, nothing else: the
rollout state carries no secret, and neither the backend's address nor its credentials are
ever part of a record.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from flags.state import RolloutState

MAX_ACTOR_LENGTH = 128
MAX_REASON_LENGTH = 500
_ACTION = re.compile(r"^[a-z][a-z_]{0,39}$")


class AuditInputError(ValueError):
    """An actor, reason or action that can't go into the audit trail; the message says why."""


class AuditRecord(BaseModel):
    """One change of the rollout state, as the audit trail keeps it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Annotated[StrictInt, Field(ge=1)]
    """The version the change produced (the state before it had ``version - 1``)."""
    time: StrictStr
    """When it was committed, ISO 8601 in UTC (``2025-01-31T09:15:02.123Z``)."""
    actor: StrictStr
    action: StrictStr
    """What was done: ``stage``, ``enable``, ``disable``, ``clear``, ``kill_all``, ..."""
    reason: StrictStr
    before: dict[str, Any]
    """The fields that changed, as they were; for ``overrides``, only the changed entries."""
    after: dict[str, Any]

    @classmethod
    def of_change(
        cls,
        before: RolloutState,
        after: RolloutState,
        *,
        actor: str,
        reason: str,
        action: str,
        time: datetime | None = None,
    ) -> AuditRecord:
        """Describe the change from ``before`` to ``after`` (actor/reason/action checked)."""
        old, new = state_diff(before, after)
        return cls(
            version=after.version,
            time=format_time(time or datetime.now(UTC)),
            actor=check_actor(actor),
            action=check_action(action),
            reason=check_reason(reason),
            before=old,
            after=new,
        )

    def summary(self) -> str:
        """One line: ``stage_percent: 5.0 -> 25.0; overrides.acme: None -> 'off'``."""
        parts: list[str] = []
        for key in sorted(set(self.before) | set(self.after)):
            old, new = self.before.get(key), self.after.get(key)
            if isinstance(old, dict) or isinstance(new, dict):
                old_map, new_map = old or {}, new or {}
                parts.extend(
                    f"{key}.{name}: {old_map.get(name)!r} -> {new_map.get(name)!r}"
                    for name in sorted(set(old_map) | set(new_map))
                )
            else:
                parts.append(f"{key}: {old!r} -> {new!r}")
        return "; ".join(parts) or "(no change)"


def state_diff(before: RolloutState, after: RolloutState) -> tuple[dict[str, Any], dict[str, Any]]:
    """The changed fields (``version`` aside) of two states, as JSON-ready ``(old, new)`` dicts."""
    old_doc, new_doc = before.model_dump(mode="json"), after.model_dump(mode="json")
    old: dict[str, Any] = {}
    new: dict[str, Any] = {}
    for key in RolloutState.model_fields:
        if key == "version" or old_doc[key] == new_doc[key]:
            continue
        if key == "overrides":
            names = sorted(set(old_doc[key]) | set(new_doc[key]))
            changed = [n for n in names if old_doc[key].get(n) != new_doc[key].get(n)]
            old[key] = {n: old_doc[key].get(n) for n in changed}
            new[key] = {n: new_doc[key].get(n) for n in changed}
        else:
            old[key], new[key] = old_doc[key], new_doc[key]
    return old, new


def format_time(moment: datetime) -> str:
    """ISO 8601, UTC, milliseconds, ``Z`` suffix."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def check_actor(actor: str) -> str:
    """The actor, trimmed; ``AuditInputError`` if empty, too long or holding control characters."""
    return _check_text("actor", actor, MAX_ACTOR_LENGTH)


def check_reason(reason: str) -> str:
    """The reason, trimmed; ``AuditInputError`` if empty, too long or holding control characters."""
    return _check_text("reason", reason, MAX_REASON_LENGTH)


def check_action(action: str) -> str:
    if not _ACTION.fullmatch(action):
        raise AuditInputError("action must be lower-case letters and '_' (at most 40)")
    return action


def _check_text(what: str, value: str, limit: int) -> str:
    text = value.strip()
    if not text:
        raise AuditInputError(f"{what} must not be empty")
    if len(text) > limit:
        raise AuditInputError(f"{what} must be at most {limit} characters (got {len(text)})")
    # One line of printable text: the trail is read in terminals and parsed line by line.
    if any(unicodedata.category(ch)[0] == "C" for ch in text):
        raise AuditInputError(f"{what} must not contain control characters or line breaks")
    return text
