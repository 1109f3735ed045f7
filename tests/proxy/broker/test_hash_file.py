"""The hash file verifier: CSV and NDJSON exports, unknown users, clear load errors."""

from __future__ import annotations

import asyncio
import base64
import csv
import json
from pathlib import Path

import pytest

from proxy.broker import hash_file
from proxy.broker.credential import Credential, Password
from proxy.broker.hash_file import HashFileError, HashFileVerifier
from proxy.broker.verifier import Profile
from tests.proxy.broker.broker_support import ALICE, BOB, UNKNOWN, WRONG, hash_file_lines


def _verify(verifier: HashFileVerifier, identifier: str, password: str) -> bool:
    return asyncio.run(verifier.verify(Credential(identifier, Password(password)))) is not None


@pytest.mark.parametrize("suffix", [".csv", ".ndjson"])
def test_csv_and_ndjson_exports_verify(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"export{suffix}"
    if suffix == ".csv":
        with path.open("w", newline="") as file:
            csv.writer(file).writerows([("identifier", "hash"), *hash_file_lines()])
    else:
        path.write_text(
            "".join(json.dumps({"identifier": i, "hash": h}) + "\n" for i, h in hash_file_lines())
        )
    verifier = HashFileVerifier(path)

    assert len(verifier) == 2
    assert _verify(verifier, *ALICE)
    assert _verify(verifier, f"  {BOB[0].upper()} ", BOB[1])
    assert not _verify(verifier, ALICE[0], WRONG)
    assert not _verify(verifier, UNKNOWN, ALICE[1])


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("a@example.com,$1$md5$SEEKRIT\n", "line 1: unrecognised hash format"),
        ("a@example.com,{SSHA}x\na@example.com,{SSHA}y\n", "line 2: identifier repeated"),
        ("only-one-column\n", "line 1: expected identifier,hash"),
        (
            "a@example.com,{SSHA}x\nb@example.com,$pbkdf2-sha256$i=SEEKRIT$c2FsdA$U0VFS1JJVA\n",
            "line 2: malformed pbkdf2-passlib hash",
        ),
        ("identifier,hash\n", "no entries"),
    ],
)
def test_a_bad_file_is_named_with_its_line_and_never_quotes_a_hash(
    tmp_path: Path, content: str, problem: str
) -> None:
    path = tmp_path / "export.csv"
    path.write_text(content)

    with pytest.raises(HashFileError, match=problem) as failure:
        HashFileVerifier(path)

    assert "SEEKRIT" not in str(failure.value)


def test_firebase_export_verifies_with_the_projects_parameters(tmp_path: Path) -> None:
    from tests.proxy.broker.test_hash_schemes import FIREBASE, FIREBASE_HASH

    (tmp_path / "signer-key").write_text(base64.b64encode(FIREBASE.signer_key).decode() + "\n")
    path = tmp_path / "firebase.ndjson"
    path.write_text(json.dumps({"identifier": "user1@example.com", "hash": FIREBASE_HASH}) + "\n")
    parameters = hash_file.firebase_parameters(tmp_path / "signer-key", "Bw==", 8, 14)

    verifier = HashFileVerifier(path, parameters)

    assert _verify(verifier, "user1@example.com", "user1password")
    assert not _verify(verifier, "user1@example.com", "user1passwore")
    with pytest.raises(HashFileError, match="firebase-scrypt needs"):
        HashFileVerifier(path)


def test_ndjson_records_carry_the_users_profile(tmp_path: Path) -> None:
    (alice, alice_hash), (bob, bob_hash) = hash_file_lines()
    path = tmp_path / "export.ndjson"
    records = [
        {"identifier": "alice", "hash": alice_hash, "email": alice, "given_name": "Alice"},
        {"identifier": bob, "hash": bob_hash},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    verifier = HashFileVerifier(path)

    found = asyncio.run(verifier.verify(Credential("alice", Password(ALICE[1]))))
    bare = asyncio.run(verifier.verify(Credential(bob, Password(BOB[1]))))

    assert found == Profile(email=alice, given_name="Alice")
    assert bare == Profile()
    # No email in the record: a door derives it from an identifier that is an address.
    assert bare.completed(bob).email == bob
    assert Profile().completed("alice").email is None


def test_a_profile_field_of_the_wrong_type_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "export.ndjson"
    path.write_text(
        json.dumps({"identifier": "a", "hash": hash_file_lines()[0][1], "email_verified": "yes"})
    )

    with pytest.raises(HashFileError, match=r"line 1: 'email_verified' must be a boolean"):
        HashFileVerifier(path)
