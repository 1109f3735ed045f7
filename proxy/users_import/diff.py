"""`authswitch users diff`: the new provider's users against the source's, before cutover.

Both sides are read in full (re-paginated for an API target) into one record per user, keyed by
the case-folded email (the key every target keeps unique). A user is `missing` (in the source,
not at the target), `extra` (at the target only), `changed` (a field the source gives differs:
email spelling, email_verified, given_name, family_name; and, where the target shows it, whether
a password hash is there) or the same. A source or target line that can't be read, or repeats an
email, is `refused` and counted: source = same + changed + missing + refused, and the target
likewise (with extra instead of missing), so the report always adds up.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proxy.users_import.line_schema import WORKOS_NAMES

COMPARED = ("email", "email_verified", "given_name", "family_name")
_SHOWN = 50  # differences printed per kind; --json lists all


@dataclass(frozen=True)
class UserRecord:
    """A user as either side gives it; None: the side does not say."""

    email: str
    email_verified: bool | None = None
    given_name: str | None = None
    family_name: str | None = None
    has_hash: bool | None = None  # None: the side can't tell (an API that never shows hashes)

    @classmethod
    def from_line(cls, raw: dict[str, Any]) -> UserRecord:
        """A line in the import's form (the WorkOS names too); ValueError when it is not one."""
        raw = {WORKOS_NAMES.get(key, key): value for key, value in raw.items()}
        email = raw.get("email")
        if not isinstance(email, str) or "@" not in email:
            raise ValueError("no email")
        verified = raw.get("email_verified")
        return cls(
            email=email,
            email_verified=verified if isinstance(verified, bool) else None,
            given_name=_text(raw.get("given_name")),
            family_name=_text(raw.get("family_name")),
            has_hash=bool(raw.get("password_hash")) or bool(raw.get("password")),
        )


@dataclass(frozen=True)
class Change:
    email: str
    fields: dict[str, tuple[Any, Any]]  # name -> (source, target)


@dataclass
class Side:
    """One side's users by key, and the lines refused (line number or position, and why)."""

    users: dict[str, UserRecord] = field(default_factory=dict)
    read: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)

    def add(self, position: int, record: UserRecord | str) -> None:
        self.read += 1
        if isinstance(record, str):
            self.refused.append((position, record))
            return
        key = record.email.casefold()
        if key in self.users:
            self.refused.append((position, "duplicate email (case-folded)"))
            return
        self.users[key] = record


@dataclass
class UsersDiff:
    source: Side
    target: Side
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)
    same: int = 0

    @property
    def differences(self) -> int:
        return len(self.missing) + len(self.extra) + len(self.changed)

    @property
    def adds_up(self) -> bool:
        matched = self.same + len(self.changed)
        return self.source.read == matched + len(self.missing) + len(
            self.source.refused
        ) and self.target.read == matched + len(self.extra) + len(self.target.refused)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": {"users": self.source.read, "refused": _refused(self.source)},
            "target": {"users": self.target.read, "refused": _refused(self.target)},
            "same": self.same,
            "changed": [
                {"email": c.email, "fields": {k: list(v) for k, v in c.fields.items()}}
                for c in self.changed
            ],
            "missing": self.missing,
            "extra": self.extra,
            "differences": self.differences,
            "adds_up": self.adds_up,
        }

    def summary_rows(self) -> list[list[str]]:
        return [
            ["source users", str(self.source.read)],
            ["target users", str(self.target.read)],
            ["same", str(self.same)],
            ["changed", str(len(self.changed))],
            ["missing at the target", str(len(self.missing))],
            ["extra at the target", str(len(self.extra))],
            ["refused source lines", str(len(self.source.refused))],
            ["refused target lines", str(len(self.target.refused))],
            ["adds up", "yes" if self.adds_up else "NO"],
        ]

    def detail_rows(self) -> list[list[str]]:
        rows = [["missing", email, ""] for email in self.missing[:_SHOWN]]
        rows += [["extra", email, ""] for email in self.extra[:_SHOWN]]
        for change in self.changed[:_SHOWN]:
            what = ", ".join(
                f"{name}: {_show(old)} -> {_show(new)}"
                for name, (old, new) in change.fields.items()
            )
            rows.append(["changed", change.email, what])
        return rows


def compare(source: Side, target: Side) -> UsersDiff:
    """Every source user against the target's, and the target's that the source lacks."""
    diff = UsersDiff(source, target)
    for key, wanted in source.users.items():
        found = target.users.get(key)
        if found is None:
            diff.missing.append(wanted.email)
            continue
        fields = _changed_fields(wanted, found)
        if fields:
            diff.changed.append(Change(wanted.email, fields))
        else:
            diff.same += 1
    diff.extra = [user.email for key, user in target.users.items() if key not in source.users]
    return diff


def read_ndjson_side(path: Path) -> Side:
    """An NDJSON file (an export state file, or the import's input form) as one side."""
    side = Side()
    for number, text in _lines(path):
        try:
            raw = json.loads(text)
            record: UserRecord | str = (
                UserRecord.from_line(raw) if isinstance(raw, dict) else "not a JSON object"
            )
        except ValueError as exc:
            record = "not valid JSON" if isinstance(exc, json.JSONDecodeError) else str(exc)
        side.add(number, record)
    return side


def side_of(records: Iterable[UserRecord | str]) -> Side:
    side = Side()
    for position, record in enumerate(records, start=1):
        side.add(position, record)
    return side


def _changed_fields(wanted: UserRecord, found: UserRecord) -> dict[str, tuple[Any, Any]]:
    fields: dict[str, tuple[Any, Any]] = {}
    for name in COMPARED:
        mine, theirs = getattr(wanted, name), getattr(found, name)
        if mine is not None and mine != theirs:  # what the source does not say is not compared
            fields[name] = (mine, theirs)
    if wanted.has_hash and found.has_hash is False:
        fields["password_hash"] = ("present", "absent")
    return fields


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as file:
        for number, text in enumerate(file, start=1):
            if text.strip():
                yield number, text


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _refused(side: Side) -> list[dict[str, Any]]:
    return [{"line": line, "reason": reason} for line, reason in side.refused]


def _show(value: Any) -> str:
    return "(none)" if value is None else json.dumps(value, ensure_ascii=False)
