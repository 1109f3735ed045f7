"""Checking a password against an exported legacy hash, one function per scheme.

Formats (as legacy systems export them):

- bcrypt ``$2a$``/``$2b$``/``$2y$`` (the password cut at 72 bytes, as every bcrypt did before
  bcrypt 5 started refusing longer ones); argon2 ``$argon2id$v=19$...`` (PHC string);
- scrypt ``scrypt:N:r:p$salt$hexhash`` (werkzeug) or ``$scrypt$ln=..,r=..,p=..$salt$hash`` (PHC);
- pbkdf2 ``pbkdf2:sha256:ITER$salt$hexhash`` (werkzeug), ``pbkdf2_sha256$ITER$salt$b64`` (Django),
  ``$pbkdf2-sha256$ITER$ab64salt$ab64hash`` (passlib), ``$pbkdf2-sha256$i=ITER,l=LEN$salt$hash``
  (PHC string format, B64: standard base64 without padding), and the same with sha512;
- salted SHA ``{SSHA}`` / ``{SSHA256}`` (LDAP: base64 of digest(password + salt) + salt);
- Firebase scrypt ``firebase-scrypt$<b64 salt>$<b64 hash>`` with the project's parameters.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

import argon2
import bcrypt
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


class UnsupportedHash(ValueError):
    """A hash in a format no verifier here reads (the message names the scheme, never the hash)."""


@dataclass(frozen=True)
class FirebaseParameters:
    signer_key: bytes
    salt_separator: bytes
    rounds: int
    mem_cost: int


_ARGON2 = argon2.PasswordHasher()


def scheme_of(encoded: str) -> str:
    """The scheme name of an encoded hash (raises UnsupportedHash)."""
    for prefix, name in _PREFIXES:
        if encoded.startswith(prefix):
            return name
    raise UnsupportedHash("unrecognised hash format")


def check_password(password: str, encoded: str, firebase: FirebaseParameters | None = None) -> bool:
    """Whether `password` matches `encoded`; CPU-bound, run it off the event loop."""
    scheme = scheme_of(encoded)
    if scheme == "firebase-scrypt":
        if firebase is None:
            raise UnsupportedHash("firebase-scrypt hashes need broker.verifier.firebase")
        return _firebase_scrypt(password.encode(), encoded, firebase)
    try:
        return _CHECKS[scheme](password.encode(), encoded)
    except (ValueError, binascii.Error, IndexError):
        raise UnsupportedHash(f"malformed {scheme} hash") from None


_BCRYPT_MAX_BYTES = 72  # bcrypt never read further; bcrypt >= 5 raises instead of cutting


def _bcrypt(password: bytes, encoded: str) -> bool:
    return bcrypt.checkpw(password[:_BCRYPT_MAX_BYTES], encoded.encode())


def _argon2(password: bytes, encoded: str) -> bool:
    try:
        return _ARGON2.verify(encoded, password)
    except argon2.exceptions.VerifyMismatchError:
        return False
    except argon2.exceptions.InvalidHashError:
        raise ValueError("invalid argon2 hash") from None


def _werkzeug_scrypt(password: bytes, encoded: str) -> bool:
    method, salt, expected = encoded.split("$", 2)
    _, n, r, p = method.split(":")
    derived = hashlib.scrypt(
        password, salt=salt.encode(), n=int(n), r=int(r), p=int(p), maxmem=_maxmem(n, r), dklen=64
    )
    return hmac.compare_digest(derived.hex(), expected)


def _phc_scrypt(password: bytes, encoded: str) -> bool:
    _, _, params, salt, expected = encoded.split("$")
    values = dict(item.split("=") for item in params.split(","))
    n, r, p = 1 << int(values["ln"]), int(values["r"]), int(values["p"])
    want = _ab64decode(expected)
    derived = hashlib.scrypt(
        password,
        salt=_ab64decode(salt),
        n=n,
        r=r,
        p=p,
        maxmem=_maxmem(n, r),
        dklen=len(want),
    )
    return hmac.compare_digest(derived, want)


def _werkzeug_pbkdf2(password: bytes, encoded: str) -> bool:
    method, salt, expected = encoded.split("$", 2)
    _, digest, iterations = method.split(":")
    derived = hashlib.pbkdf2_hmac(digest, password, salt.encode(), int(iterations))
    return hmac.compare_digest(derived.hex(), expected)


def _django_pbkdf2(password: bytes, encoded: str) -> bool:
    algorithm, iterations, salt, expected = encoded.split("$", 3)
    digest = algorithm.removeprefix("pbkdf2_")
    derived = hashlib.pbkdf2_hmac(digest, password, salt.encode(), int(iterations))
    return hmac.compare_digest(base64.b64encode(derived).decode(), expected)


def _passlib_pbkdf2(password: bytes, encoded: str) -> bool:
    digest, iterations, salt, want = _pbkdf2_fields(encoded)
    derived = hashlib.pbkdf2_hmac(digest, password, salt, iterations, dklen=len(want))
    return hmac.compare_digest(derived, want)


def _pbkdf2_fields(encoded: str) -> tuple[str, int, bytes, bytes]:
    """(digest, iterations, salt, hash) of ``$pbkdf2-<digest>$`` in passlib's form (rounds)
    or the PHC string form (``i=<rounds>[,l=<length>]``); ValueError if malformed."""
    _, algorithm, params, salt, expected = encoded.split("$")
    digest = algorithm.removeprefix("pbkdf2-")
    want = _ab64decode(expected)
    if params.isdigit():  # passlib
        iterations = int(params)
    else:
        values = dict(item.split("=", 1) for item in params.split(","))
        if not set(values) <= {"i", "l"} or not values["i"].isdigit():
            raise ValueError("unknown pbkdf2 parameters")
        iterations = int(values["i"])
        if int(values.get("l", len(want))) != len(want):
            raise ValueError("pbkdf2 length does not match the hash")
    if iterations < 1 or not want:
        raise ValueError("pbkdf2 without rounds or hash")
    return digest, iterations, _ab64decode(salt), want


def _salted_sha(digest: str, size: int) -> Callable[[bytes, str], bool]:
    def check(password: bytes, encoded: str) -> bool:
        raw = base64.b64decode(encoded.split("}", 1)[1], validate=True)
        if len(raw) <= size:
            raise ValueError("salted hash without a salt")
        expected, salt = raw[:size], raw[size:]
        return hmac.compare_digest(hashlib.new(digest, password + salt).digest(), expected)

    return check


def _firebase_scrypt(password: bytes, encoded: str, params: FirebaseParameters) -> bool:
    """Firebase's modified scrypt: the derived key encrypts the project's signer key."""
    try:
        _, salt_b64, hash_b64 = encoded.split("$")
        salt = base64.b64decode(salt_b64, validate=True)
        expected = base64.b64decode(hash_b64, validate=True)
    except (ValueError, binascii.Error):
        raise UnsupportedHash("malformed firebase-scrypt hash") from None
    n = 1 << params.mem_cost
    derived = hashlib.scrypt(
        password,
        salt=salt + params.salt_separator,
        n=n,
        r=params.rounds,
        p=1,
        maxmem=_maxmem(str(n), str(params.rounds)),
        dklen=32,
    )
    encryptor = Cipher(algorithms.AES(derived), modes.CTR(b"\0" * 16)).encryptor()
    signed = encryptor.update(params.signer_key) + encryptor.finalize()
    return hmac.compare_digest(signed, expected)


def _ab64decode(value: str) -> bytes:
    """passlib's "adapted base64" ('.' for '+', no padding) or the PHC's B64 (no padding)."""
    value = value.replace(".", "+")
    return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)


def _maxmem(n: str | int, r: str | int) -> int:
    return 128 * int(n) * int(r) * 2 + 1024 * 1024


_CHECKS: dict[str, Callable[[bytes, str], bool]] = {
    "bcrypt": _bcrypt,
    "argon2": _argon2,
    "scrypt": _werkzeug_scrypt,
    "scrypt-phc": _phc_scrypt,
    "pbkdf2": _werkzeug_pbkdf2,
    "pbkdf2-django": _django_pbkdf2,
    "pbkdf2-passlib": _passlib_pbkdf2,
    "ssha": _salted_sha("sha1", 20),
    "ssha256": _salted_sha("sha256", 32),
    "ssha512": _salted_sha("sha512", 64),
}

_PREFIXES: tuple[tuple[str, str], ...] = (
    ("$2a$", "bcrypt"),
    ("$2b$", "bcrypt"),
    ("$2y$", "bcrypt"),
    ("$argon2", "argon2"),
    ("scrypt:", "scrypt"),
    ("$scrypt$", "scrypt-phc"),
    ("pbkdf2:sha256:", "pbkdf2"),
    ("pbkdf2:sha512:", "pbkdf2"),
    ("pbkdf2_sha256$", "pbkdf2-django"),
    ("pbkdf2_sha512$", "pbkdf2-django"),
    ("$pbkdf2-sha256$", "pbkdf2-passlib"),
    ("$pbkdf2-sha512$", "pbkdf2-passlib"),
    ("{SSHA}", "ssha"),
    ("{SSHA256}", "ssha256"),
    ("{SSHA512}", "ssha512"),
    ("firebase-scrypt$", "firebase-scrypt"),
)


def cost_of(encoded: str) -> str:
    """What a check of `encoded` costs, as a name: the scheme and its parameters (cost, rounds,
    memory), never the salt or the hash. Raises UnsupportedHash for a hash no check could read,
    so a hash file is refused when it loads, not at a login."""
    scheme = scheme_of(encoded)
    try:
        return f"{scheme}:{_COSTS.get(scheme, _no_parameters)(encoded)}"
    except (ValueError, binascii.Error, IndexError, KeyError):
        raise UnsupportedHash(f"malformed {scheme} hash") from None


def _no_parameters(encoded: str) -> str:
    return ""


def _bcrypt_cost(encoded: str) -> str:
    _, _, cost, rest = encoded.split("$")
    if not cost.isdigit() or len(rest) != 53:
        raise ValueError("not a bcrypt hash")
    return cost


def _phc_parameters(encoded: str) -> str:  # argon2, PHC scrypt: $id[$v=..]$params$salt$hash
    parts = encoded.split("$")
    if len(parts) not in (5, 6):
        raise ValueError("not a PHC string")
    _ab64decode(parts[-2])
    return f"{parts[1]}:{'$'.join(parts[2:-2])}:{len(_ab64decode(parts[-1]))}"


def _werkzeug_method(encoded: str) -> str:  # scrypt:N:r:p / pbkdf2:digest:ITER
    method, salt, expected = encoded.split("$", 2)
    bytes.fromhex(expected)
    if not salt or not all(part.isdigit() for part in method.split(":")[2:]):
        raise ValueError("malformed parameters")
    return method


def _django_iterations(encoded: str) -> str:
    algorithm, iterations, _, expected = encoded.split("$", 3)
    base64.b64decode(expected, validate=True)
    if not iterations.isdigit():
        raise ValueError("malformed iterations")
    return f"{algorithm}:{iterations}"


def _pbkdf2_cost(encoded: str) -> str:
    digest, iterations, _, want = _pbkdf2_fields(encoded)
    return f"{digest}:{iterations}:{len(want)}"


_COSTS: dict[str, Callable[[str], str]] = {
    "bcrypt": _bcrypt_cost,
    "argon2": _phc_parameters,
    "scrypt": _werkzeug_method,
    "scrypt-phc": _phc_parameters,
    "pbkdf2": _werkzeug_method,
    "pbkdf2-django": _django_iterations,
    "pbkdf2-passlib": _pbkdf2_cost,
}
