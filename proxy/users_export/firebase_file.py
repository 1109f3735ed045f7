"""A Firebase `firebase auth:export users.json --format=json` file, with the project's password
hash parameters (Console → Authentication → Users → "Password hash parameters"):

    hash_config {
      algorithm: SCRYPT,
      base64_signer_key: ...,
      base64_salt_separator: Bw==,
      rounds: 8,
      mem_cost: 14,
    }

Each user's `passwordHash` + `salt` and those parameters make one `firebase-scrypt` hash in the
form WorkOS documents (`$firebase-scrypt$v=1$r=..,m=..,ss=..,sk=..$salt$hash`), which
`users import` passes to WorkOS and Kratos. Fields: `localId` → external_id, `email`,
`emailVerified`; `disabled` users are skipped (counted). The cursor is the position in the file,
which is pinned by its SHA-256: a changed file is a new export.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foundation.config_error import ConfigError
from foundation.secret_file import read_secret_file
from proxy.users_export.source import Page, import_line, page_of

_SETTING = re.compile(r"^\s*(\w+)\s*:\s*([^,\s]+)\s*,?\s*$", re.MULTILINE)


@dataclass(frozen=True)
class FirebaseHashConfig:
    signer_key: bytes
    salt_separator: bytes
    rounds: int
    mem_cost: int

    def __repr__(self) -> str:  # the signer key is a secret
        return f"FirebaseHashConfig(rounds={self.rounds}, mem_cost={self.mem_cost}, ...)"

    def phc(self, salt: str, password_hash: str) -> str:
        """One user's hash as WorkOS's firebase-scrypt PHC string."""
        params = (
            f"r={self.rounds},m={self.mem_cost},"
            f"ss={_b64(self.salt_separator)},sk={_b64(self.signer_key)}"
        )
        return f"$firebase-scrypt$v=1${params}${_b64(_decode(salt))}${_b64(_decode(password_hash))}"


def read_hash_config(path: Path) -> FirebaseHashConfig:
    """The project's hash parameters, as the Firebase console shows them."""
    key = "--hash-config"
    settings = dict(_SETTING.findall(read_secret_file(path, key).decode(errors="replace")))
    if settings.get("algorithm", "SCRYPT").upper() != "SCRYPT":
        raise ConfigError(f"{key} '{path}': algorithm is not SCRYPT (Firebase's own scheme)")
    for name in ("base64_signer_key", "base64_salt_separator", "rounds", "mem_cost"):
        if name not in settings:
            raise ConfigError(f"{key} '{path}': no {name}")
    try:
        config = FirebaseHashConfig(
            signer_key=_decode(settings["base64_signer_key"]),
            salt_separator=_decode(settings["base64_salt_separator"]),
            rounds=int(settings["rounds"]),
            mem_cost=int(settings["mem_cost"]),
        )
    except (ValueError, binascii.Error):
        raise ConfigError(
            f"{key} '{path}': base64_* must be base64, rounds and mem_cost numbers"
        ) from None
    if not (1 <= config.rounds <= 8 and 1 <= config.mem_cost <= 14):
        raise ConfigError(f"{key} '{path}': rounds must be 1..8 and mem_cost 1..14")
    return config


class FirebaseExportFile:
    def __init__(
        self, path: Path, hash_config: FirebaseHashConfig | None, *, page_size: int = 1000
    ) -> None:
        self.path = path
        self.hash_config = hash_config
        self.page_size = page_size
        data = path.read_bytes()
        self.sha256 = hashlib.sha256(data).hexdigest()
        try:
            users = json.loads(data)["users"]
        except (ValueError, KeyError, TypeError):
            raise ConfigError(
                f"--file '{path}': not a Firebase auth:export JSON file ({{\"users\": [...]}})"
            ) from None
        if not isinstance(users, list):
            raise ConfigError(f"--file '{path}': \"users\" is not a list")
        self.users: list[Any] = users

    @property
    def identity(self) -> str:
        return f"firebase-file {self.path.resolve()} sha256:{self.sha256}"

    async def page(self, cursor: str | None) -> Page:
        start = int(cursor or "0")
        end = start + self.page_size
        next_cursor = str(end) if end < len(self.users) else None
        return page_of(self.users[start:end], self.line, next_cursor)

    async def close(self) -> None:
        return None

    def line(self, user: Any) -> dict[str, Any] | str:
        """A Firebase exported user as an import line, or why it can't be one."""
        if not isinstance(user, dict):
            return "not a Firebase user object"
        if user.get("disabled") is True:
            return "disabled at the source"
        password_hash = user.get("passwordHash")
        encoded = None
        if isinstance(password_hash, str) and password_hash:
            if self.hash_config is None:
                return "a password hash but no --hash-config (the project's hash parameters)"
            try:
                encoded = self.hash_config.phc(str(user.get("salt", "")), password_hash)
            except (ValueError, binascii.Error):
                return "passwordHash or salt: not base64"
        return import_line(
            {
                "email": user.get("email"),
                "email_verified": user.get("emailVerified"),
                "external_id": user.get("localId"),
                "password_hash": encoded,
                "password_hash_type": "firebase-scrypt" if encoded else None,
            }
        )


def _decode(value: str) -> bytes:
    """Standard or web-safe base64, padded or not."""
    value = value.strip().replace("-", "+").replace("_", "/").rstrip("=")
    return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=")
