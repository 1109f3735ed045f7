"""What a legacy verifier is: checks a credential, or says that legacy could not answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from proxy.broker.credential import Credential


class LegacyUnavailable(Exception):
    """Legacy could not give an answer (down, slow, erroring): the broker denies."""


@dataclass(frozen=True)
class Profile:
    """What legacy knows of a verified user (possibly nothing): the doors' user profile and
    the provisioners' attributes."""

    email: str | None = None
    email_verified: bool = True
    name: str | None = None
    given_name: str | None = None
    family_name: str | None = None

    def completed(self, identifier: str) -> Profile:
        """`email` from the identifier when the verifier gave none and the identifier is an
        address (one `@`, something on both sides, no space)."""
        if self.email is not None:
            return self
        local, at, domain = identifier.strip().partition("@")
        if at and local and domain and "@" not in domain and " " not in identifier.strip():
            return Profile(
                identifier.strip(),
                self.email_verified,
                self.name,
                self.given_name,
                self.family_name,
            )
        return self


class Verifier(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def verify(self, credential: Credential) -> Profile | None:
        """The user's profile for the right password; None for a wrong one or an unknown user."""
        ...
