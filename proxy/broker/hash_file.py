"""The legacy verifier over an exported hash file (CSV or NDJSON: identifier, hash).

NDJSON records may also carry the user's profile: ``email``, ``email_verified`` (boolean),
``name``, ``given_name``, ``family_name``; a CSV row has the identifier and the hash only.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path

from proxy.broker.config import ConfigError
from proxy.broker.credential import Credential
from proxy.broker.hash_schemes import (
    FirebaseParameters,
    UnsupportedHash,
    check_password,
    cost_of,
    scheme_of,
)
from proxy.broker.verifier import LegacyUnavailable, Profile


class HashFileError(ConfigError):
    """The hash file can't be used; the message names the file and line, never a hash."""


class HashFileVerifier:
    """Loaded once at start-up; checks run in a worker thread (bcrypt, argon2 and scrypt are
    CPU-bound).

    An unknown user costs what a known one does: it is checked against a decoy, a real hash
    from the file, denied whatever the result. Each entry of the file lends its cost (scheme
    and parameters) to the decoys, so the decoys' costs are spread as the users' are, and a
    keyed hash of the identifier picks one: the same unknown identifier always costs the
    same, and without the key (derived from the file's content, the same on every replica)
    no one can tell which cost it will get.
    """

    def __init__(self, path: Path, firebase: FirebaseParameters | None = None) -> None:
        self._firebase = firebase
        self._hashes: dict[str, str] = {}
        self._profiles: dict[str, Profile] = {}
        costs: list[str] = []
        for line, identifier, encoded, profile in _rows(path):
            try:
                costs.append(cost_of(encoded))
            except UnsupportedHash as exc:
                raise HashFileError(f"hash file '{path}' line {line}: {exc}") from None
            if scheme_of(encoded) == "firebase-scrypt" and firebase is None:
                raise HashFileError(
                    f"hash file '{path}' line {line}: firebase-scrypt needs "
                    "broker.verifier.firebase"
                )
            key = identifier.strip().casefold()
            if key in self._hashes:
                raise HashFileError(f"hash file '{path}' line {line}: identifier repeated")
            self._hashes[key] = encoded
            if profile is not None:
                self._profiles[key] = profile
        if not self._hashes:
            raise HashFileError(f"hash file '{path}': no entries")
        first_of_cost: dict[str, str] = {}
        for encoded, cost in zip(self._hashes.values(), costs, strict=True):
            first_of_cost.setdefault(cost, encoded)
        self._decoys = tuple(first_of_cost[cost] for cost in costs)  # one per entry
        self._decoy_key = hashlib.sha256(b"authswitch-decoy\0" + path.read_bytes()).digest()

    def __len__(self) -> int:
        return len(self._hashes)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def verify(self, credential: Credential) -> Profile | None:
        return await asyncio.to_thread(self.verify_now, credential)

    def verify_now(self, credential: Credential) -> Profile | None:
        """`verify` in the calling thread (CPU-bound)."""
        key = credential.account_key
        # The decoy is derived for known users too: its HMAC would otherwise be the few
        # microseconds by which an unknown identifier is slower.
        decoy = self.decoy_for(key)
        encoded = self._hashes.get(key)
        password = credential.password.reveal()
        try:
            if encoded is None:
                check_password(password, decoy, self._firebase)
                return None
            right = check_password(password, encoded, self._firebase)
        except UnsupportedHash as exc:  # a malformed hash the load-time check let through
            raise LegacyUnavailable(f"hash file entry unusable: {exc}") from None
        return self._profiles.get(key, Profile()) if right else None

    def decoy_for(self, account_key: str) -> str:
        """The decoy hash an unknown identifier is checked against."""
        digest = hmac.new(
            self._decoy_key, account_key.encode(errors="surrogatepass"), hashlib.sha256
        ).digest()
        return self._decoys[int.from_bytes(digest[:8]) % len(self._decoys)]


def firebase_parameters(
    signer_key_file: Path, salt_separator: str, rounds: int, mem_cost: int
) -> FirebaseParameters:
    try:
        signer_key = base64.b64decode(signer_key_file.read_text().strip(), validate=True)
        separator = base64.b64decode(salt_separator, validate=True)
    except (OSError, ValueError) as exc:
        raise HashFileError(
            "broker.verifier.firebase: signer key or salt separator unusable "
            f"({type(exc).__name__})"
        ) from None
    return FirebaseParameters(
        signer_key=signer_key,
        salt_separator=separator,
        rounds=rounds,
        mem_cost=mem_cost,
    )


def _rows(path: Path) -> Iterator[tuple[int, str, str, Profile | None]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HashFileError(f"hash file '{path}': cannot read: {exc}") from None
    if path.suffix in (".ndjson", ".jsonl"):
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                identifier, encoded = record["identifier"], record["hash"]
            except (ValueError, KeyError, TypeError):
                raise HashFileError(
                    f"hash file '{path}' line {number}: not a JSON object with "
                    "'identifier' and 'hash'"
                ) from None
            yield (
                number,
                _text(path, number, identifier),
                _text(path, number, encoded),
                _profile(path, number, record),
            )
        return
    reader = csv.reader(text.splitlines())
    for number, row in enumerate(reader, start=1):
        if not row or (number == 1 and [c.strip().lower() for c in row] == ["identifier", "hash"]):
            continue
        if len(row) < 2:
            raise HashFileError(f"hash file '{path}' line {number}: expected identifier,hash")
        # PHC strings (argon2, scrypt) hold commas: unquoted, they are the rest of the row.
        yield number, _text(path, number, row[0]), _text(path, number, ",".join(row[1:])), None


def _text(path: Path, number: int, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise HashFileError(f"hash file '{path}' line {number}: empty or not a string")
    return value.strip()


_PROFILE_TEXT = ("email", "name", "given_name", "family_name")


def _profile(path: Path, number: int, record: dict[str, object]) -> Profile | None:
    if not any(key in record for key in (*_PROFILE_TEXT, "email_verified")):
        return None
    texts: dict[str, str | None] = {}
    for key in _PROFILE_TEXT:
        value = record.get(key)
        if value is not None and not isinstance(value, str):
            raise HashFileError(f"hash file '{path}' line {number}: '{key}' must be a string")
        texts[key] = value
    verified = record.get("email_verified", True)
    if not isinstance(verified, bool):
        raise HashFileError(f"hash file '{path}' line {number}: 'email_verified' must be a boolean")
    return Profile(email_verified=verified, **texts)
