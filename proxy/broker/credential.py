"""A login credential as a hook hands it over: the password never prints."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field


class Password:
    """The password, passed on unchanged; `repr`/`str` never show it (logs, tracebacks)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Password(***)"

    __str__ = __repr__


@dataclass(frozen=True)
class PasswordHash:
    """A password hash as the new provider takes it (a bulk import's); never printed."""

    encoded: str = field(repr=False)
    hash_type: str  # the provider's name for the scheme (WorkOS's password_hash_type)


@dataclass(frozen=True)
class Credential:
    """What a front door read from the hook's request."""

    identifier: str
    password: Password = field(repr=False)

    @property
    def account_key(self) -> str:
        """The identifier as accounts compare it: case-folded, surrounding space removed."""
        return self.identifier.strip().casefold()


def hash_identifier(key: bytes, identifier: str) -> str:
    """A keyed hash of an identifier for logs, audit records and Redis keys."""
    digest = hmac.new(key, identifier.strip().casefold().encode(), hashlib.sha256)
    return digest.hexdigest()[:32]
