"""Firebase auth:export file: hashes with the project's parameters become firebase-scrypt
hashes the targets take, and that still verify the user's password."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from foundation.config_error import ConfigError
from proxy.broker.hash_schemes import FirebaseParameters, check_password
from proxy.users_export.firebase_file import FirebaseExportFile, read_hash_config
from proxy.users_import.hash_passing import FirebaseScrypt, decode_hash, passed_hash
from tests.proxy.users_export.export_support import export, lines
from tests.proxy.users_export.vendor_servers import FIXTURES

# Firebase's published scrypt example (github.com/firebase/scrypt): this user's password.
PASSWORD = "user1password"


def test_hashes_keep_the_password_and_pass_to_both_targets(tmp_path: Path) -> None:
    config = read_hash_config(FIXTURES / "firebase_hash_config.txt")
    source = FirebaseExportFile(FIXTURES / "firebase_export.json", config, page_size=3)
    summary = export(source, tmp_path / "users.ndjson")
    exported = lines(tmp_path / "users.ndjson")
    assert [line["external_id"] for line in exported] == ["0ExAmPlEuId1", "0ExAmPlEuId2"]
    assert summary.skipped == {"disabled at the source": 1, "no email": 1}
    assert summary.pages == 2
    hashed, federated = exported
    assert "password_hash" not in federated and federated["email_verified"] is True
    assert hashed["password_hash_type"] == "firebase-scrypt"
    decoded = decode_hash(hashed["password_hash"], "firebase-scrypt")
    assert isinstance(decoded, FirebaseScrypt)
    parameters = FirebaseParameters(
        decoded.signer_key, decoded.salt_separator, decoded.rounds, decoded.mem_cost
    )
    import base64

    legacy_form = (
        f"firebase-scrypt${base64.b64encode(decoded.salt).decode()}"
        f"${base64.b64encode(decoded.key).decode()}"
    )
    assert check_password(PASSWORD, legacy_form, parameters)
    assert not check_password("wrong-password", legacy_form, parameters)
    for target in ("workos", "kratos"):
        passed_hash(target, hashed["password_hash"], "firebase-scrypt")  # type: ignore[arg-type]


def test_without_the_hash_config_hashed_users_are_skipped_with_why(tmp_path: Path) -> None:
    source = FirebaseExportFile(FIXTURES / "firebase_export.json", None)
    summary = export(source, tmp_path / "users.ndjson")
    assert summary.skipped["a password hash but no --hash-config (the project's hash parameters)"]
    assert [line["external_id"] for line in lines(tmp_path / "users.ndjson")] == ["0ExAmPlEuId2"]


def test_a_changed_file_is_a_new_export(tmp_path: Path) -> None:
    copy = tmp_path / "export.json"
    shutil.copy(FIXTURES / "firebase_export.json", copy)
    first = FirebaseExportFile(copy, None)
    copy.write_text(copy.read_text().replace("google.user", "other.user"))
    assert FirebaseExportFile(copy, None).identity != first.identity


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("hash_config {\n  algorithm: HMAC_SHA256,\n}", "not SCRYPT"),
        ("hash_config {\n  algorithm: SCRYPT,\n  rounds: 8,\n}", "no base64_signer_key"),
        (
            "base64_signer_key: !!,\nbase64_salt_separator: Bw==,\nrounds: 8,\nmem_cost: 14,",
            "must be base64",
        ),
        (
            "base64_signer_key: AA==,\nbase64_salt_separator: Bw==,\nrounds: 9,\nmem_cost: 14,",
            "rounds must be 1..8",
        ),
    ],
)
def test_a_bad_hash_config_is_named(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "hash_config.txt"
    path.write_text(text)
    with pytest.raises(ConfigError, match=problem):
        read_hash_config(path)


def test_a_file_that_is_not_an_export_is_named(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    path.write_text('[{"email": "a@example.com"}]')
    with pytest.raises(ConfigError, match="not a Firebase auth:export JSON file"):
        FirebaseExportFile(path, None)
