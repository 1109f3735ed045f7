"""Password hashes pass through to WorkOS and Kratos in their documented forms: each imported
user then signs in with the original password (the target's documented check, done here with
the broker's hash_schemes where it reads the form), and a hash a target can't take is listed
with the reason."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import argon2
import bcrypt
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.broker.hash_schemes import FirebaseParameters, check_password
from proxy.demo.loopback_server import LoopbackServer
from proxy.users_import.hash_passing import HASH_TYPES, HashNotPassable, describe_hash, passed_hash
from tests.proxy.broker.broker_support import serve
from tests.proxy.broker.provider_apis import UserStore, kratos_app, workos_app
from tests.proxy.users_import.import_support import adds_up, run_import, user_line, write_ndjson
from tests.proxy.users_import.test_provisioner_targets import provider_config

PASSWORD = "SEEKRIT-correct horse"
WRONG = "SEEKRIT-wrong horse"
SIGNER_KEY = b"SEEKRIT-signer-key-of-the-firebase-project-0123456789abcdef"
SEPARATOR = b"\x08"
ROUNDS, MEM_COST = 8, 10


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    text = text.rstrip("=")
    return base64.b64decode(text + "=" * (-len(text) % 4))


def firebase_key(password: str, salt: bytes) -> bytes:
    """Firebase's scrypt: the derived key encrypts the project's signer key (AES-256-CTR)."""
    derived = hashlib.scrypt(
        password.encode(), salt=salt + SEPARATOR, n=1 << MEM_COST, r=ROUNDS, p=1, dklen=32
    )
    encryptor = Cipher(algorithms.AES(derived), modes.CTR(b"\0" * 16)).encryptor()
    return encryptor.update(SIGNER_KEY) + encryptor.finalize()


def source_hashes(password: str) -> dict[str, tuple[str, str]]:
    """Per scheme, (password_hash, password_hash_type) as legacy systems export them."""
    pw = password.encode()
    ssha_salt = b"salt1234"
    scrypt_key = hashlib.scrypt(pw, salt=b"NaCl-salt", n=1024, r=8, p=1, dklen=64)
    pbkdf2_key = hashlib.pbkdf2_hmac("sha512", pw, b"django-salt", 210_000)
    firebase_salt = b"firebase-user-salt"
    firebase = (
        f"$firebase-scrypt$v=1$r={ROUNDS},m={MEM_COST},ss={_b64(SEPARATOR)},sk={_b64(SIGNER_KEY)}"
        f"${_b64(firebase_salt)}${_b64(firebase_key(password, firebase_salt))}"
    )
    argon2_hasher = argon2.PasswordHasher(time_cost=2, memory_cost=4096, parallelism=1)
    return {
        "bcrypt": (bcrypt.hashpw(pw, bcrypt.gensalt(4)).decode(), "bcrypt"),
        "argon2": (argon2_hasher.hash(password), "argon2"),
        "ssha": (
            "{SSHA}" + base64.b64encode(hashlib.sha1(pw + ssha_salt).digest() + ssha_salt).decode(),  # noqa: S324
            "ssha",
        ),
        "scrypt": (f"scrypt:1024:8:1$NaCl-salt${scrypt_key.hex()}", "scrypt"),
        "pbkdf2": (
            f"pbkdf2_sha512$210000$django-salt${base64.b64encode(pbkdf2_key).decode()}",
            "pbkdf2",
        ),
        "firebase-scrypt": (firebase, "firebase-scrypt"),
    }


FIREBASE = FirebaseParameters(SIGNER_KEY, SEPARATOR, ROUNDS, MEM_COST)


def workos_signs_in(user: dict[str, Any], password: str) -> bool:
    """WorkOS' check of its documented forms; the broker's hash_schemes does the arithmetic."""
    encoded, kind = user["password_hash"], user["password_hash_type"]
    if kind in ("bcrypt", "argon2", "ssha"):
        return check_password(password, encoded)
    if kind == "scrypt":  # $scrypt$v=1$n=N,r=R,p=P,kl=LEN$salt$hash
        _, _, version, params, salt, key = encoded.split("$")
        values = dict(item.split("=") for item in params.split(","))
        assert version == "v=1" and "=" not in salt + key  # B64: no padding
        derived = hashlib.scrypt(
            password.encode(),
            salt=_unb64(salt),
            n=int(values["n"]),
            r=int(values["r"]),
            p=int(values["p"]),
            dklen=int(values["kl"]),
        )
        return derived == _unb64(key)
    if kind == "pbkdf2":  # $pbkdf2$i=I,d=DIGEST$salt$hash -> the PHC form hash_schemes reads
        _, _, params, salt, key = encoded.split("$")
        values = dict(item.split("=") for item in params.split(","))
        assert "=" not in salt + key
        return check_password(password, f"$pbkdf2-{values['d']}$i={values['i']}${salt}${key}")
    assert kind == "firebase-scrypt"  # the Firebase guide's PHC string
    _, _, version, params, salt, key = encoded.split("$")
    values = dict(item.split("=") for item in params.split(","))
    assert version == "v=1" and "=" not in salt + key
    project = FirebaseParameters(
        _unb64(values["sk"]), _unb64(values["ss"]), int(values["r"]), int(values["m"])
    )
    broker_form = f"firebase-scrypt${_padded(_unb64(salt))}${_padded(_unb64(key))}"
    return check_password(password, broker_form, project)


def kratos_signs_in(identity: dict[str, Any], password: str) -> bool:
    """Kratos' hash comparator for its documented forms, hash_schemes doing the arithmetic."""
    encoded = identity["credentials"]["password"]["config"]["hashed_password"]
    if encoded.startswith("$scrypt$"):  # ln is N itself, padded base64
        _, _, params, salt, key = encoded.split("$")
        values = dict(item.split("=") for item in params.split(","))
        log_n = int(values["ln"]).bit_length() - 1
        passlib = f"$scrypt$ln={log_n},r={values['r']},p={values['p']}${salt}${key}"
        return check_password(password, passlib)
    if encoded.startswith("$firescrypt$"):
        _, _, params, salt, key, separator, signer = encoded.split("$")
        values = dict(item.split("=") for item in params.split(","))
        project = FirebaseParameters(
            _unb64(signer), _unb64(separator), int(values["r"]), int(values["ln"])
        )
        return check_password(password, f"firebase-scrypt${salt}${key}", project)
    return check_password(password, encoded)  # bcrypt, argon2, PHC pbkdf2, {SSHA*}


def _padded(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@dataclass
class Target:
    kind: str
    store: UserStore
    server: LoopbackServer
    config: Path

    def users_by_email(self) -> dict[str, dict[str, Any]]:
        key = "email"
        return {
            (u[key] if self.kind == "workos" else u["traits"][key]): u for u in self.store.users
        }

    def signs_in(self, user: dict[str, Any], password: str) -> bool:
        return (workos_signs_in if self.kind == "workos" else kratos_signs_in)(user, password)


@pytest.fixture(params=["workos", "kratos"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    store = UserStore()
    app = workos_app(store) if request.param == "workos" else kratos_app(store)
    server = serve(app, request.param)
    yield Target(request.param, store, server, provider_config(tmp_path, request.param, server.url))
    server.stop()


def hash_line(i: int, password_hash: str, hash_type: str) -> dict[str, Any]:
    line = user_line(i, password_hash=password_hash, password_hash_type=hash_type)
    del line["password"]
    return line


def test_every_documented_scheme_passes_and_the_user_signs_in_with_the_original_password(
    tmp_path: Path, target: Target
) -> None:
    hashes = source_hashes(PASSWORD)
    lines = [hash_line(i, *pair) for i, pair in enumerate(hashes.values())]
    file = write_ndjson(tmp_path / "users.ndjson", lines)

    result, report = run_import(file, target.config)

    assert result.exit_code == 0, result.output
    assert report is not None and report["created"] == len(hashes) and adds_up(report)
    users = target.users_by_email()
    for i, scheme in enumerate(hashes):
        user = users[f"user{i:05d}@example.com"]
        assert target.signs_in(user, PASSWORD), scheme
        assert not target.signs_in(user, WRONG), scheme
        if target.kind == "workos":
            assert user["password_hash_type"] == scheme and "password" not in user
    leaked = [h for h, _ in hashes.values() if h in result.output + json.dumps(report)]
    assert leaked == []


def test_a_hash_the_target_cannot_take_is_listed_with_the_reason(
    tmp_path: Path, target: Target
) -> None:
    pw = PASSWORD.encode()
    salt = b"salt1234"
    ssha256 = "{SSHA256}" + base64.b64encode(hashlib.sha256(pw + salt).digest() + salt).decode()
    weak_pbkdf2 = hashlib.pbkdf2_hmac("sha256", pw, b"s", 1000)
    argon2d = argon2.PasswordHasher(
        time_cost=2, memory_cost=4096, parallelism=1, type=argon2.Type.D
    ).hash(PASSWORD)
    bcrypt_hash = source_hashes(PASSWORD)["bcrypt"][0]
    lines = [
        hash_line(0, bcrypt_hash, "bcrypt"),  # passes
        hash_line(1, ssha256, "ssha"),  # WorkOS: SHA-1 only; Kratos: fine
        hash_line(2, f"pbkdf2_sha256$1000$s${base64.b64encode(weak_pbkdf2).decode()}", "pbkdf2"),
        hash_line(3, argon2d, "argon2"),  # WorkOS: fine; Kratos: no argon2d
        hash_line(4, "firebase-scrypt$c2FsdA==$aGFzaA==", "firebase-scrypt"),  # no parameters
        hash_line(5, bcrypt_hash, "argon2"),  # the type says argon2, the hash is bcrypt
        hash_line(6, bcrypt_hash, "md5"),  # not a WorkOS type
    ]
    file = write_ndjson(tmp_path / "users.ndjson", lines)

    result, report = run_import(file, target.config, "--skip-invalid")

    assert result.exit_code == 1
    assert report is not None and adds_up(report)
    refused = {
        "workos": {
            2: "not passable to workos: WorkOS takes salted SHA-1 ({SSHA}) only",
            3: "not passable to workos: WorkOS takes pbkdf2-sha256 with 600000..1000000 iterations",
        },
        "kratos": {4: "not passable to kratos: Kratos takes argon2id and argon2i, not argon2d"},
    }[target.kind]
    refused |= {
        5: "without its project parameters",
        6: "password_hash_type is argon2 but the hash is bcrypt",
        7: "unknown password_hash_type (one of bcrypt, scrypt, firebase-scrypt",
    }
    for line, reason in refused.items():
        assert f"line {line}: password_hash: " in result.output
        assert reason in result.output, reason
    assert report["invalid_lines"] == sorted(refused)
    created = set(target.users_by_email())
    expected = {f"user{i - 1:05d}@example.com" for i in range(1, 8) if i not in refused}
    assert created == expected
    for user in target.users_by_email().values():
        assert target.signs_in(user, PASSWORD)
    assert not any(h in result.output for h in (ssha256, argon2d, bcrypt_hash))


MARKER = "Zq9xSEEKRITtail"


@settings(max_examples=300, deadline=None)
@given(
    encoded=st.one_of(
        st.text(max_size=80),
        st.builds(
            "$".join,
            st.lists(
                st.sampled_from(
                    [
                        "",
                        "scrypt",
                        "ln=99999999999",
                        "pbkdf2",
                        "i=x,d=sha256",
                        "argon2id",
                        "v=19",
                        "m=1,t=x",
                        "firebase-scrypt",
                        "v=1",
                        "2b",
                        "10",
                        "{SSHA}",
                        "!!",
                    ]
                ),
                max_size=7,
            ),
        ),
    ),
    hash_type=st.sampled_from(HASH_TYPES),
)
def test_any_hash_text_is_passed_or_refused_with_a_reason_never_a_crash(
    encoded: str, hash_type: str
) -> None:
    # A distinctive tail no reason's wording contains: a reason that quoted the hash shows it.
    encoded += MARKER
    for target in ("workos", "kratos"):
        try:
            passed_hash(target, encoded, hash_type)
        except HashNotPassable as exc:
            assert MARKER not in str(exc)
    assert MARKER not in describe_hash(encoded)
