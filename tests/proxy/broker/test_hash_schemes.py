"""Exported legacy hashes, checked against vectors produced by other implementations.

Where each vector comes from: bcrypt — the crypt_blowfish/OpenBSD test vectors; argon2i —
the reference implementation's README; argon2id — the reference `argon2` CLI; werkzeug
scrypt/pbkdf2 — werkzeug.security.generate_password_hash; Django — its PBKDF2PasswordHasher;
passlib pbkdf2/scrypt and LDAP {SSHA*} — passlib.hash; Firebase — the vector published with
Firebase's scrypt tool.
"""

from __future__ import annotations

import base64
import hashlib

import bcrypt
import pytest

from proxy.broker.hash_schemes import (
    FirebaseParameters,
    UnsupportedHash,
    check_password,
    cost_of,
    scheme_of,
)

VECTORS = [
    ("bcrypt", "U*U", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"),
    (
        "argon2",
        "password",
        "$argon2i$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
    ),
    (
        "argon2",
        "SEEKRIT-argon",
        "$argon2id$v=19$m=1024,t=2,p=1$c2FsdHNhbHRzYWx0$lDHL0TkXBoN6J0a1wc4yFzlUHqlJVOqjBljpzCOUxyQ",
    ),
    (
        "scrypt",
        "SEEKRIT-scrypt",
        "scrypt:1024:8:1$KcSEefJYZPAt$ecbc15666b17b9d4c20542f560755540c8303de9e17e7b3e91360b365ae9"
        "91b8035b4190ab9f68f2d7948a1fe93f69389f59d879352f84ffc9d17860a1735eef",
    ),
    (
        "scrypt-phc",
        "SEEKRIT-passlib",
        "$scrypt$ln=10,r=8,p=1$JqTU+v8fQ+gdY0wpZWyN0Q$8p7FqwhtfEV2pIXYMHziQVtC3P7xRpNLo7d2pZ2D/Io",
    ),
    (
        "pbkdf2",
        "SEEKRIT-pbkdf2",
        "pbkdf2:sha256:1000$0pWntHENh9Qr$8c3a4d93ec1690abe5890fc98eb1c5694bbd44ce9a42b72cba76f118836"
        "78e0d",
    ),
    (
        "pbkdf2",
        "SEEKRIT-pbkdf2",
        "pbkdf2:sha512:1000$ApttzPBpvvBd$79bcba81a20dc9ff085885eadd31f70b59ee41da84b1e83e2b41353da77"
        "2b70e170e80e642de5701bf31192370b0f474daeb2eb5acac0c9326ee37179f357197",
    ),
    (
        "pbkdf2-django",
        "SEEKRIT-django",
        "pbkdf2_sha256$1000$seasalt$37sydBaLniZgzXp2D8i0j8na0z6rtfhHPndOyLSJWUg=",
    ),
    (
        "pbkdf2-passlib",
        "SEEKRIT-passlib",
        "$pbkdf2-sha256$1000$bo3x3lurdc5ZS8nZm3POGQ$VcnnCljutQRCLz1w4202uop2sJh2T0BRQGW/b5PPCoM",
    ),
    (
        "pbkdf2-passlib",
        "SEEKRIT-passlib",
        "$pbkdf2-sha512$1000$gpBSqtV6LyXEOKf0fo/xPg$amNOpiAgcVZii/ZAZ1CWeII.dml40WoQoXGoIBMKs.Zuq"
        "zAzQ0bknHeyIdi8.WcdVueHt/z08pOOOOBLgFASlg",
    ),
    ("ssha", "SEEKRIT-ldap", "{SSHA}oJcVrLjtPFwcqOF5BXomZ5mX7D0fw1jr"),
    (
        "ssha256",
        "SEEKRIT-ldap",
        "{SSHA256}d2bqeXyCKlUU+2dy01JV7tUOWtI1+2LWd6E0QovFpCb+nzOGEIIwBg==",
    ),
    (
        "ssha512",
        "SEEKRIT-ldap",
        "{SSHA512}TuKJleI8e9tl2wildDfEPg9dgvBOb53hSvkAnHxqIUKVtqFdB+jBrGFoy3/TLhTj4lMVOmG5PFfD9hSN"
        "ia7Aru9d6x2j9N77",
    ),
]

FIREBASE = FirebaseParameters(
    signer_key=base64.b64decode(
        "jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA=="
    ),
    salt_separator=base64.b64decode("Bw=="),
    rounds=8,
    mem_cost=14,
)
FIREBASE_HASH = (
    "firebase-scrypt$42xEC+ixf3L2lw==$lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoIt"
    "z+VHjoZilo78198JAdRuid5lQ=="
)


@pytest.mark.parametrize(("scheme", "password", "encoded"), VECTORS, ids=[v[0] for v in VECTORS])
def test_known_vector_verifies_and_a_near_miss_does_not(
    scheme: str, password: str, encoded: str
) -> None:
    assert scheme_of(encoded) == scheme
    assert check_password(password, encoded)
    assert not check_password(password + "x", encoded)
    assert not check_password(password[:-1], encoded)


def test_firebase_scrypt_published_vector() -> None:
    assert check_password("user1password", FIREBASE_HASH, FIREBASE)
    assert not check_password("user1passwore", FIREBASE_HASH, FIREBASE)


def test_firebase_scrypt_without_project_parameters_is_refused() -> None:
    with pytest.raises(UnsupportedHash, match=r"broker\.verifier\.firebase"):
        check_password("user1password", FIREBASE_HASH)


@pytest.mark.parametrize(
    "encoded",
    ["$1$saltsalt$md5cryptSEEKRIT", "plaintext-SEEKRIT", "{SSHA}", "pbkdf2:sha256:x$salt$SEEKRIT"],
)
def test_unknown_or_malformed_hashes_are_errors_that_do_not_quote_the_hash(encoded: str) -> None:
    with pytest.raises(UnsupportedHash) as failure:
        check_password("pw", encoded)

    assert "SEEKRIT" not in str(failure.value)


# crypt_blowfish's (OpenWall) vector, also in PHP's and OpenBSD's test suites: a 98-byte
# password, of which bcrypt reads the first 72.
LONG_PASSWORD = (
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    "chars after 72 are ignored"
)
LONG_PASSWORD_HASH = "$2a$05$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui"


def test_bcrypt_reads_the_first_72_bytes_of_a_longer_password_as_legacy_did() -> None:
    assert check_password(LONG_PASSWORD, LONG_PASSWORD_HASH)
    assert check_password(LONG_PASSWORD[:72] + "anything else", LONG_PASSWORD_HASH)
    assert not check_password(LONG_PASSWORD[:71], LONG_PASSWORD_HASH)


def test_a_100_byte_password_cut_inside_a_multibyte_character_verifies() -> None:
    # 71 ASCII bytes, then 'é' (2 bytes in UTF-8) straddles the 72-byte limit.
    password = "p" * 71 + "é" + "q" * 27
    assert len(password.encode()) == 100
    encoded = bcrypt.hashpw(password.encode()[:72], b"$2b$04$" + b"C" * 21 + b".").decode()

    assert check_password(password, encoded)
    assert not check_password("p" * 72, encoded)


def _phc_b64(raw: bytes) -> str:
    """The PHC string format's B64: standard base64 alphabet, no padding."""
    return base64.b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(("digest", "rounds"), [("sha256", 1000), ("sha512", 1500)])
def test_pbkdf2_in_the_phc_string_format_verifies(digest: str, rounds: int) -> None:
    # Produced here with hashlib and the format's documented encoding: i= rounds, l= length.
    salt = b"\x00\xfbsalt-with+and/\xff"
    derived = hashlib.pbkdf2_hmac(digest, b"SEEKRIT-phc", salt, rounds)
    encoded = f"$pbkdf2-{digest}$i={rounds},l={len(derived)}${_phc_b64(salt)}${_phc_b64(derived)}"
    without_length = f"$pbkdf2-{digest}$i={rounds}${_phc_b64(salt)}${_phc_b64(derived)}"

    for form in (encoded, without_length):
        assert check_password("SEEKRIT-phc", form)
        assert not check_password("SEEKRIT-phd", form)
    assert cost_of(encoded) == f"pbkdf2-passlib:{digest}:{rounds}:{len(derived)}"


@pytest.mark.parametrize(
    "encoded",
    [
        "$pbkdf2-sha256$i=1000,l=16$c2FsdA$SEEKRITSEEKRITSEEKRITSEEKRITSEEKRITSEEKRIT",  # l != size
        "$pbkdf2-sha256$rounds=1000$c2FsdA$U0VFS1JJVA",
        "$pbkdf2-sha256$i=x$c2FsdA$U0VFS1JJVA",
        "$pbkdf2-sha256$1000$c2FsdA",
        "$2b$10$SEEKRIT-too-short",
        "$argon2id$v=19$m=1024$SEEKRIT",
        "pbkdf2_sha256$many$salt$SEEKRIT",
    ],
)
def test_a_hash_no_check_could_read_is_refused_before_any_login(encoded: str) -> None:
    with pytest.raises(UnsupportedHash, match="malformed") as failure:
        cost_of(encoded)

    assert "SEEKRIT" not in str(failure.value)
