"""Password hashes passed through to the new provider, in the form each target documents.

A line's `password_hash` is read in the forms legacy systems export (those the broker's
hash_schemes reads, plus the WorkOS and Kratos forms themselves) into its parts, then written
as the target documents it:

- WorkOS Create User (`password_hash` + `password_hash_type`, the migration guide):
  `bcrypt` as is; `argon2` PHC (`$argon2id|i|d$v=19$m=4096..262144,t=1..5 (argon2i 3..5),
  p=1..8$..`); `ssha` `{SSHA}base64(sha1(password + salt) + salt)`; `scrypt` PHC
  `$scrypt$v=1$n=N,r=R,p=P,kl=LEN$salt$hash`; `pbkdf2` PHC `$pbkdf2$i=I,d=sha256|sha512$salt$hash`
  (sha256: 600 000..1 000 000 iterations, sha512: 210 000..1 000 000); `firebase-scrypt` PHC
  `$firebase-scrypt$v=1$r=ROUNDS,m=MEM_COST,ss=SEPARATOR,sk=SIGNER_KEY$salt$hash` (the WorkOS
  Firebase guide). Salts and hashes in B64: standard base64 without `=` padding.
- Ory Kratos (`credentials.password.config.hashed_password`, its hash comparator): bcrypt;
  `$argon2id$`/`$argon2i$` with v=19; `$pbkdf2-<digest>$i=I,l=LEN$salt$hash` (base64 without
  padding); `$scrypt$ln=N,r=R,p=P$salt$hash` (`ln` is N itself; padded base64);
  `{SSHA}`/`{SSHA256}`/`{SSHA512}`; `$firescrypt$ln=MEM_COST,r=ROUNDS,p=1$salt$hash$separator$key`
  (padded base64).
- Okta (`credentials.password.hash` of Create User, "import a user with a password hash"):
  `{"algorithm": "BCRYPT", "workFactor": 10, "salt": <22 chars>, "value": <31 chars>}` from a
  bcrypt hash; `{"algorithm": "SHA-1|SHA-256|SHA-512", "salt": b64, "saltOrder": "POSTFIX",
  "value": b64}` from `{SSHA}`/`{SSHA256}`/`{SSHA512}` (the digest of password + salt). Okta
  documents no scrypt, argon2 or Firebase form: those are not passable. The hash object travels
  as its JSON text.

A hash a target can't take raises HashNotPassable with the reason (never the hash): the
operator then leaves that user to reset-on-first-login or the JIT broker.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Literal

from proxy.broker.hash_schemes import UnsupportedHash, cost_of, scheme_of

# The `password_hash_type` values WorkOS documents, which are also this file's names.
HASH_TYPES = ("bcrypt", "scrypt", "firebase-scrypt", "ssha", "pbkdf2", "argon2")
HashTarget = Literal["workos", "kratos", "okta"]


class HashNotPassable(ValueError):
    """Why a hash can't go to the target (names the scheme or parameter, never the hash)."""


@dataclass(frozen=True)
class Verbatim:
    """A hash every target reads in its own text: bcrypt, argon2 (PHC), salted SHA."""

    kind: str  # bcrypt | argon2 | ssha
    encoded: str


@dataclass(frozen=True)
class Scrypt:
    n: int
    r: int
    p: int
    salt: bytes
    key: bytes


@dataclass(frozen=True)
class Pbkdf2:
    digest: str  # sha1, sha256, sha512
    iterations: int
    salt: bytes
    key: bytes


@dataclass(frozen=True)
class FirebaseScrypt:
    salt: bytes
    key: bytes
    salt_separator: bytes
    signer_key: bytes
    rounds: int
    mem_cost: int


DecodedHash = Verbatim | Scrypt | Pbkdf2 | FirebaseScrypt


def decode_hash(encoded: str, hash_type: str) -> DecodedHash:
    """The parts of `encoded`, which must be of `hash_type` (one of HASH_TYPES)."""
    if hash_type not in HASH_TYPES:
        raise HashNotPassable(f"unknown password_hash_type (one of {', '.join(HASH_TYPES)})")
    try:
        decoded = _decode(encoded)
    except HashNotPassable:
        raise
    except (ValueError, KeyError, IndexError, binascii.Error):
        raise HashNotPassable(f"not a {hash_type} hash in a form read here") from None
    kind = _kind(decoded)
    if kind != hash_type:
        raise HashNotPassable(f"password_hash_type is {hash_type} but the hash is {kind}")
    return decoded


def for_workos(decoded: DecodedHash) -> tuple[str, str]:
    """(`password_hash`, `password_hash_type`) as WorkOS documents them."""
    if isinstance(decoded, Verbatim):
        if decoded.kind == "argon2":
            _check_workos_argon2(decoded.encoded)
        elif decoded.kind == "ssha" and not decoded.encoded.startswith("{SSHA}"):
            raise HashNotPassable("WorkOS takes salted SHA-1 ({SSHA}) only, not SHA-2")
        return decoded.encoded, decoded.kind
    if isinstance(decoded, Scrypt):
        params = f"n={decoded.n},r={decoded.r},p={decoded.p},kl={len(decoded.key)}"
        return f"$scrypt$v=1${params}${_b64(decoded.salt)}${_b64(decoded.key)}", "scrypt"
    if isinstance(decoded, Pbkdf2):
        low = _WORKOS_PBKDF2_MIN.get(decoded.digest)
        if low is None:
            raise HashNotPassable(
                f"WorkOS takes pbkdf2 with sha256 or sha512, not {decoded.digest}"
            )
        if not low <= decoded.iterations <= 1_000_000:
            raise HashNotPassable(
                f"WorkOS takes pbkdf2-{decoded.digest} with {low}..1000000 iterations"
            )
        params = f"i={decoded.iterations},d={decoded.digest}"
        return f"$pbkdf2${params}${_b64(decoded.salt)}${_b64(decoded.key)}", "pbkdf2"
    params = (
        f"r={decoded.rounds},m={decoded.mem_cost},"
        f"ss={_b64(decoded.salt_separator)},sk={_b64(decoded.signer_key)}"
    )
    encoded = f"$firebase-scrypt$v=1${params}${_b64(decoded.salt)}${_b64(decoded.key)}"
    return encoded, "firebase-scrypt"


def for_kratos(decoded: DecodedHash) -> str:
    """`hashed_password` as Ory Kratos reads it."""
    if isinstance(decoded, Verbatim):
        if decoded.encoded.startswith("$argon2d$"):
            raise HashNotPassable("Kratos takes argon2id and argon2i, not argon2d")
        return decoded.encoded
    if isinstance(decoded, Scrypt):
        params = f"ln={decoded.n},r={decoded.r},p={decoded.p}"
        return f"$scrypt${params}${_padded(decoded.salt)}${_padded(decoded.key)}"
    if isinstance(decoded, Pbkdf2):
        params = f"i={decoded.iterations},l={len(decoded.key)}"
        return f"$pbkdf2-{decoded.digest}${params}${_b64(decoded.salt)}${_b64(decoded.key)}"
    params = f"ln={decoded.mem_cost},r={decoded.rounds},p=1"
    parts = (decoded.salt, decoded.key, decoded.salt_separator, decoded.signer_key)
    return f"$firescrypt${params}$" + "$".join(_padded(part) for part in parts)


def for_okta(decoded: DecodedHash) -> dict[str, Any]:
    """`credentials.password.hash` as Okta documents it."""
    if isinstance(decoded, Verbatim) and decoded.kind == "bcrypt":
        _, _, cost, salt_and_hash = decoded.encoded.split("$")
        return {
            "algorithm": "BCRYPT",
            "workFactor": int(cost),
            "salt": salt_and_hash[:22],
            "value": salt_and_hash[22:],
        }
    if isinstance(decoded, Verbatim) and decoded.kind == "ssha":
        label, _, body = decoded.encoded[1:].partition("}")
        size, algorithm = _OKTA_SHA[label.upper()]
        raw = base64.b64decode(body)
        return {
            "algorithm": algorithm,
            "salt": base64.b64encode(raw[size:]).decode(),
            "saltOrder": "POSTFIX",  # {SSHA} is the digest of password + salt
            "value": base64.b64encode(raw[:size]).decode(),
        }
    raise HashNotPassable(f"Okta takes bcrypt and salted SHA hashes, not {_kind(decoded)}")


def passed_hash(target: HashTarget, encoded: str, hash_type: str) -> tuple[str, str]:
    """(hash, type) as `target` takes them; HashNotPassable when it can't take this one."""
    decoded = decode_hash(encoded, hash_type)
    if target == "workos":
        return for_workos(decoded)
    if target == "okta":
        return json.dumps(for_okta(decoded)), hash_type
    return for_kratos(decoded), hash_type


def describe_hash(encoded: str) -> str:
    """The scheme and its parameters (cost, rounds, memory, key length), never the salt or the
    hash: `bcrypt:cost=10`, `pbkdf2:sha512:i=210000`; `unrecognised` when no form here reads it."""
    try:
        decoded = _decode(encoded)
    except HashNotPassable:
        return "firebase-scrypt:without project parameters"
    except (ValueError, KeyError, IndexError, binascii.Error):
        return "unrecognised"
    if isinstance(decoded, Verbatim):
        if decoded.kind == "bcrypt":
            return f"bcrypt:cost={int(encoded.split('$')[2])}"
        if decoded.kind == "ssha":
            return "ssha:" + encoded[1 : encoded.index("}")].lower()
        parts = encoded.split("$")
        return f"argon2:{parts[1]}:{','.join(parts[2:-2])}"
    if isinstance(decoded, Scrypt):
        return f"scrypt:n={decoded.n},r={decoded.r},p={decoded.p},kl={len(decoded.key)}"
    if isinstance(decoded, Pbkdf2):
        return f"pbkdf2:{decoded.digest}:i={decoded.iterations}"
    return f"firebase-scrypt:r={decoded.rounds},m={decoded.mem_cost}"


# -- reading -----------------------------------------------------------------------------------

_OKTA_SHA = {"SSHA": (20, "SHA-1"), "SSHA256": (32, "SHA-256"), "SSHA512": (64, "SHA-512")}
_WORKOS_PBKDF2_MIN = {"sha256": 600_000, "sha512": 210_000}
_PBKDF2_DIGESTS = frozenset({"sha1", "sha256", "sha512"})


def _kind(decoded: DecodedHash) -> str:
    if isinstance(decoded, Verbatim):
        return decoded.kind
    if isinstance(decoded, Scrypt):
        return "scrypt"
    if isinstance(decoded, Pbkdf2):
        return "pbkdf2"
    return "firebase-scrypt"


def _decode(encoded: str) -> DecodedHash:
    if encoded.startswith("$firebase-scrypt$"):
        return _workos_firebase(encoded)
    if encoded.startswith("$scrypt$v=1$"):
        return _workos_scrypt(encoded)
    if encoded.startswith("$pbkdf2$"):
        return _workos_pbkdf2(encoded)
    if encoded.startswith("$argon2d$"):
        _phc_b64(encoded.split("$")[-1])
        return Verbatim("argon2", encoded)
    try:
        scheme = scheme_of(encoded)
        cost_of(encoded)  # the broker's own check that the hash is well formed
    except UnsupportedHash:
        raise ValueError("unrecognised hash") from None
    if scheme in ("bcrypt", "argon2"):
        return Verbatim(scheme, encoded)
    if scheme.startswith("ssha"):
        return Verbatim("ssha", encoded)
    if scheme == "scrypt":  # werkzeug: scrypt:N:r:p$salt$hex, the salt text is the salt
        method, salt, key = encoded.split("$", 2)
        _, n, r, p = method.split(":")
        return Scrypt(int(n), int(r), int(p), salt.encode(), bytes.fromhex(key))
    if scheme == "scrypt-phc":  # passlib: $scrypt$ln=log2(N),r=..,p=..$salt$hash
        _, _, params, salt, key = encoded.split("$")
        values = dict(item.split("=") for item in params.split(","))
        log_n = int(values["ln"])
        if not 1 <= log_n <= 63:  # a shift by a hostile number would never end
            raise ValueError("scrypt ln out of range")
        cost = 1 << log_n
        return Scrypt(cost, int(values["r"]), int(values["p"]), _phc_b64(salt), _phc_b64(key))
    if scheme == "pbkdf2":  # werkzeug: pbkdf2:digest:ITER$salt$hex
        method, salt, key = encoded.split("$", 2)
        _, digest, iterations = method.split(":")
        return _pbkdf2(digest, int(iterations), salt.encode(), bytes.fromhex(key))
    if scheme == "pbkdf2-django":  # pbkdf2_sha256$ITER$salt$base64
        algorithm, iterations, salt, key = encoded.split("$", 3)
        digest = algorithm.removeprefix("pbkdf2_")
        return _pbkdf2(digest, int(iterations), salt.encode(), base64.b64decode(key))
    if scheme == "pbkdf2-passlib":  # passlib's or the PHC string form
        _, algorithm, params, salt, key = encoded.split("$")
        iterations = (
            params
            if params.isdigit()
            else dict(item.split("=", 1) for item in params.split(","))["i"]
        )
        digest = algorithm.removeprefix("pbkdf2-")
        return _pbkdf2(digest, int(iterations), _phc_b64(salt), _phc_b64(key))
    # firebase-scrypt$salt$hash: the project's parameters are not in it.
    raise HashNotPassable(
        "a firebase-scrypt hash without its project parameters: give the "
        "$firebase-scrypt$v=1$r=..,m=..,ss=..,sk=..$salt$hash form"
    )


def _workos_firebase(encoded: str) -> FirebaseScrypt:
    _, _, version, params, salt, key = encoded.split("$")
    values = dict(item.split("=", 1) for item in params.split(","))
    if version != "v=1" or set(values) != {"r", "m", "ss", "sk"}:
        raise ValueError("not a firebase-scrypt PHC string")
    return FirebaseScrypt(
        salt=_phc_b64(salt),
        key=_phc_b64(key),
        salt_separator=_phc_b64(values["ss"]),
        signer_key=_phc_b64(values["sk"]),
        rounds=int(values["r"]),
        mem_cost=int(values["m"]),
    )


def _workos_scrypt(encoded: str) -> Scrypt:
    _, _, _, params, salt, key = encoded.split("$")
    values = dict(item.split("=", 1) for item in params.split(","))
    decoded = Scrypt(
        int(values["n"]), int(values["r"]), int(values["p"]), _phc_b64(salt), _phc_b64(key)
    )
    if int(values.get("kl", len(decoded.key))) != len(decoded.key):
        raise ValueError("kl does not match the hash")
    return decoded


def _workos_pbkdf2(encoded: str) -> Pbkdf2:
    _, _, params, salt, key = encoded.split("$")
    values = dict(item.split("=", 1) for item in params.split(","))
    return _pbkdf2(values["d"], int(values["i"]), _phc_b64(salt), _phc_b64(key))


def _pbkdf2(digest: str, iterations: int, salt: bytes, key: bytes) -> Pbkdf2:
    if digest not in _PBKDF2_DIGESTS or iterations < 1 or not key:
        raise ValueError("unsupported pbkdf2 parameters")
    return Pbkdf2(digest, iterations, salt, key)


def _check_workos_argon2(encoded: str) -> None:
    parts = encoded.split("$")
    if len(parts) != 6 or parts[2] != "v=19":
        raise HashNotPassable("WorkOS takes argon2 version 19 only")
    variant, params = parts[1], parts[3]
    try:
        values = {k: int(v) for k, v in (item.split("=", 1) for item in params.split(","))}
    except ValueError:
        raise HashNotPassable("WorkOS takes argon2 with m, t and p parameters") from None
    low_t = 3 if variant == "argon2i" else 1
    if not 4096 <= values.get("m", 0) <= 262_144:
        raise HashNotPassable("WorkOS takes argon2 memory of 4096..262144 KiB")
    if not low_t <= values.get("t", 0) <= 5:
        raise HashNotPassable(f"WorkOS takes {variant} time of {low_t}..5 iterations")
    if not 1 <= values.get("p", 0) <= 8:
        raise HashNotPassable("WorkOS takes argon2 parallelism of 1..8")


def _phc_b64(value: str) -> bytes:
    """PHC B64 (no padding), passlib's variant ('.' for '+') and padded base64 alike."""
    value = value.replace(".", "+").rstrip("=")
    return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=")


def _padded(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
