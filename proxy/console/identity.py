"""Who is signed in to the console, and their role: ``operator`` (may change flags), ``viewer``
(may look), or none (gets nothing). Roles come from configured groups and emails only."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Literal

from flags.audit import AuditInputError, check_actor
from proxy.console.settings import Roles, TrustedHeaderSignIn

Role = Literal["operator", "viewer"]
_MAX_GROUPS = 256


class SignInRefused(Exception):
    """A request whose identity can't be accepted; the message is safe to show."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    """What the audit trail records as the actor (the email when there is one)."""
    email: str | None
    groups: tuple[str, ...]
    role: Role | None

    @property
    def may_change(self) -> bool:
        return self.role == "operator"


def person_from(name: str | None, email: str | None, groups: Iterable[str], roles: Roles) -> Person:
    """The person with their role; ``SignInRefused`` if they can't be named in the audit trail."""
    listed = tuple(g.strip() for g in groups if g.strip())[:_MAX_GROUPS]
    email = email.strip() if email else None
    try:
        actor = check_actor(email or name or "")
    except AuditInputError as exc:
        raise SignInRefused(
            403, f"the signed-in identity can't be used as an actor: {exc}"
        ) from None
    return Person(actor, email, listed, role_of(email, listed, roles))


def role_of(email: str | None, groups: tuple[str, ...], roles: Roles) -> Role | None:
    mail = (email or "").lower()
    if _member(mail, groups, roles.operator_emails, roles.operator_groups):
        return "operator"
    if _member(mail, groups, roles.viewer_emails, roles.viewer_groups):
        return "viewer"
    return None


def _member(
    email: str, groups: tuple[str, ...], emails: tuple[str, ...], role_groups: tuple[str, ...]
) -> bool:
    if email and email in {e.lower() for e in emails}:
        return True
    return bool(set(groups) & set(role_groups))


def person_from_headers(
    client_host: str | None, headers: dict[str, str], settings: TrustedHeaderSignIn, roles: Roles
) -> Person:
    """The person an auth proxy in front names, honoured only from a configured proxy address."""
    try:
        address = ip_address(client_host or "")
    except ValueError:
        address = None
    if address is None or not any(address in network for network in settings.proxies):
        raise SignInRefused(
            403, "sign-in headers are accepted only through the configured auth proxy"
        )
    name = headers.get(settings.user_header)
    email = headers.get(settings.email_header)
    if not name and not email:
        raise SignInRefused(401, "the auth proxy named no signed-in user")
    groups = headers.get(settings.groups_header, "").split(",")
    return person_from(name, email, groups, roles)
