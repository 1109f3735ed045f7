"""`authswitch users inventory FILE`: what a users file holds, before anything is imported.

The preflight counts of a migration: users by state, by identity type (password, hash,
federated, none), email domains (the top N), groups, attribute coverage, and the password hash
schemes with their parameters, with how many of those hashes each hash-taking target accepts.

The file is NDJSON, one user object per line: the import's own format, the WorkOS field names,
or an export carrying more (`state`/`status`, `active`, `blocked`, `groups`, `identity_provider`
or `connection` for a federated user). Unknown keys are counted, not refused: the inventory is
for looking. Values are never shown, only counts, domains, group names and hash parameters.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import typer
from rich.console import Console
from rich.table import Table

from proxy.users_import.hash_passing import (
    HashNotPassable,
    HashTarget,
    describe_hash,
    passed_hash,
)
from proxy.users_import.line_schema import WORKOS_NAMES

# Attributes whose coverage is counted, by the import's names (WorkOS names count for them).
ATTRIBUTES = (
    "email",
    "email_verified",
    "username",
    "external_id",
    "given_name",
    "family_name",
    "password",
    "password_hash",
    "groups",
)
# Every target hash_passing knows, judged by its own rules (passed_hash), not a copy of them.
HASH_TARGETS: tuple[HashTarget, ...] = get_args(HashTarget)
_FEDERATED_KEYS = ("identity_provider", "connection", "federated")
_SHOWN_LINES = 20  # unreadable line numbers listed; the count is always complete


@dataclass
class Inventory:
    users: int = 0
    unreadable: int = 0
    unreadable_lines: list[int] = field(default_factory=list)
    states: Counter[str] = field(default_factory=Counter)
    identity_types: Counter[str] = field(default_factory=Counter)
    domains: Counter[str] = field(default_factory=Counter)
    groups: Counter[str] = field(default_factory=Counter)
    users_in_groups: int = 0
    coverage: Counter[str] = field(default_factory=Counter)
    unknown_keys: Counter[str] = field(default_factory=Counter)
    hash_schemes: Counter[str] = field(default_factory=Counter)
    hashes_passable: Counter[str] = field(default_factory=Counter)  # by target

    def add(self, user: dict[str, Any]) -> None:
        self.users += 1
        user = {WORKOS_NAMES.get(k, k): v for k, v in user.items()}
        self.states[_state(user)] += 1
        self.identity_types[_identity_type(user)] += 1
        email = user.get("email")
        if isinstance(email, str) and "@" in email:
            self.domains[email.rsplit("@", 1)[1].casefold()] += 1
        groups = user.get("groups")
        if isinstance(groups, list) and groups:
            self.users_in_groups += 1
            self.groups.update(set(map(str, groups)))
        for name in ATTRIBUTES:
            if user.get(name) not in (None, "", []):
                self.coverage[name] += 1
        for key in user.keys() - set(ATTRIBUTES) - _KNOWN_EXTRA:
            self.unknown_keys[key] += 1
        encoded, hash_type = user.get("password_hash"), user.get("password_hash_algorithm")
        if isinstance(encoded, str) and encoded:
            self.hash_schemes[describe_hash(encoded)] += 1
            for target in HASH_TARGETS:
                try:
                    passed_hash(target, encoded, str(hash_type or _type_of(encoded)))
                except HashNotPassable:
                    continue
                self.hashes_passable[target] += 1

    def to_json(self, top: int) -> dict[str, Any]:
        return {
            "users": self.users,
            "unreadable_lines": self.unreadable,
            "unreadable_line_numbers": self.unreadable_lines,
            "states": dict(self.states.most_common()),
            "identity_types": dict(self.identity_types.most_common()),
            "email_domains": {
                "distinct": len(self.domains),
                "top": dict(self.domains.most_common(top)),
            },
            "groups": {
                "users_in_a_group": self.users_in_groups,
                "distinct": len(self.groups),
                "top": dict(self.groups.most_common(top)),
            },
            "attribute_coverage": {name: self.coverage[name] for name in ATTRIBUTES},
            "unknown_keys": dict(self.unknown_keys.most_common()),
            "hash_schemes": dict(self.hash_schemes.most_common()),
            "hashes_passable": {t: self.hashes_passable[t] for t in HASH_TARGETS},
        }

    def print(self, console: Console, top: int) -> None:
        console.print(f"users: {self.users}   unreadable lines: {self.unreadable}")
        sections: list[tuple[str, list[tuple[str, int]]]] = [
            ("state", self.states.most_common()),
            ("identity type", self.identity_types.most_common()),
            (f"email domain (top {top} of {len(self.domains)})", self.domains.most_common(top)),
            (
                f"group (top {top} of {len(self.groups)}; {self.users_in_groups} users in one)",
                self.groups.most_common(top),
            ),
            ("attribute coverage", [(name, self.coverage[name]) for name in ATTRIBUTES]),
            ("unknown key", self.unknown_keys.most_common()),
            ("hash scheme and parameters", self.hash_schemes.most_common()),
            (
                "hashes passable to",
                [(t, self.hashes_passable[t]) for t in HASH_TARGETS],
            ),
        ]
        for title, rows in sections:
            if not rows:
                continue
            table = Table(title=title, title_justify="left")
            table.add_column("")
            table.add_column("users", justify="right")
            table.add_column("%", justify="right")
            for name, count in rows:
                share = f"{100 * count / self.users:.1f}" if self.users else "-"
                table.add_row(name, str(count), share)
            console.print(table)
        if self.unreadable_lines:
            lines = ", ".join(map(str, self.unreadable_lines))
            console.print(f"unreadable lines: {lines}", highlight=False, markup=False)


def run_inventory(path: Path, *, as_json: bool, top: int) -> None:
    """Print the inventory of `path`: tables, or one JSON document on stdout."""
    try:
        inventory = take_inventory(path)
    except OSError as exc:
        typer.echo(f"authswitch: {path}: cannot read: {exc.strerror}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(inventory.to_json(top), indent=2))
    else:
        inventory.print(Console(width=100), top)


def take_inventory(path: Path) -> Inventory:
    """Read every line of `path` (OSError when it can't be read)."""
    inventory = Inventory()
    with path.open("rb") as file:
        for number, text in enumerate(file, start=1):
            if not text.strip():
                continue
            try:
                user = json.loads(text)
            except (ValueError, UnicodeDecodeError):
                user = None
            if not isinstance(user, dict):
                inventory.unreadable += 1
                if len(inventory.unreadable_lines) < _SHOWN_LINES:
                    inventory.unreadable_lines.append(number)
                continue
            inventory.add(user)
    return inventory


_KNOWN_EXTRA = frozenset(
    {"password_hash_algorithm", "state", "status", "active", "blocked", *_FEDERATED_KEYS}
)


def _state(user: dict[str, Any]) -> str:
    for key in ("state", "status"):
        value = user.get(key)
        if isinstance(value, str) and value:
            return value.casefold()
    if user.get("blocked") is True:
        return "blocked"
    if user.get("active") is False:
        return "inactive"
    if user.get("active") is True:
        return "active"
    return "(not given)"


def _identity_type(user: dict[str, Any]) -> str:
    if any(user.get(key) for key in _FEDERATED_KEYS):
        return "federated"
    if user.get("password_hash"):
        return "password (hash)"
    if user.get("password"):
        return "password (clear text)"
    return "no password"


def _type_of(encoded: str) -> str:
    """The hash type a described hash has: the scheme part of describe_hash."""
    return describe_hash(encoded).split(":", 1)[0]
