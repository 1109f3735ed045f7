"""An unknown user costs what a known one does, whatever schemes and costs the hash file mixes
(the adversarial review told users apart from unknown identifiers by timing: one decoy of the
most common scheme).

Cheap parameters keep the test fast; what matters is that they differ between users. CPU time
of the calling thread is measured (`verify_now` is what `verify` runs in a worker thread), so
other processes on the machine add little noise.
"""

from __future__ import annotations

import base64
import hashlib
import math
import os
import random
import time
from pathlib import Path

import bcrypt

from proxy.broker.credential import Credential, Password
from proxy.broker.hash_file import HashFileVerifier
from proxy.broker.hash_schemes import cost_of

TRIES = 300
WRONG = "SEEKRIT-wrong-password"


def _pbkdf2_phc(password: str, iterations: int) -> str:
    salt = os.urandom(16)
    derived = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    b64 = [base64.b64encode(v).decode().rstrip("=") for v in (salt, derived)]
    return f"$pbkdf2-sha256$i={iterations},l=32${b64[0]}${b64[1]}"


def _mixed_hash_file(tmp_path: Path) -> tuple[Path, list[str]]:
    """Three costs: bcrypt 4 (the most common), bcrypt 5, pbkdf2-sha256 at 10 000 rounds."""
    rows: list[tuple[str, str]] = []
    for number in range(12):
        identifier = f"user{number}@example.com"
        password = f"SEEKRIT-{number}".encode()
        if number < 6:
            encoded = bcrypt.hashpw(password, bcrypt.gensalt(4)).decode()
        elif number < 9:
            encoded = bcrypt.hashpw(password, bcrypt.gensalt(5)).decode()
        else:
            encoded = _pbkdf2_phc(password.decode(), 10_000)
        rows.append((identifier, encoded))
    path = tmp_path / "export.csv"
    path.write_text("".join(f'{i},"{h}"\n' for i, h in rows))
    return path, [identifier for identifier, _ in rows]


def _cpu_seconds(verifier: HashFileVerifier, identifier: str) -> float:
    credential = Credential(identifier, Password(WRONG))
    started = time.thread_time()
    assert verifier.verify_now(credential) is None
    return time.thread_time() - started


def _mann_whitney(first: list[float], second: list[float]) -> tuple[float, float]:
    """(probability that a value of `first` exceeds one of `second`, two-sided p-value of the
    Mann-Whitney U test, normal approximation with the tie correction)."""
    ranked = sorted([(v, 0) for v in first] + [(v, 1) for v in second])
    ranks = [0.0] * len(ranked)
    ties = 0.0
    start = 0
    while start < len(ranked):
        end = start
        while end + 1 < len(ranked) and ranked[end + 1][0] == ranked[start][0]:
            end += 1
        for index in range(start, end + 1):
            ranks[index] = (start + end) / 2 + 1
        size = end - start + 1
        ties += size**3 - size
        start = end + 1
    n1, n2 = len(first), len(second)
    rank_sum = sum(rank for rank, (_, group) in zip(ranks, ranked, strict=True) if group == 0)
    u = rank_sum - n1 * (n1 + 1) / 2
    n = n1 + n2
    sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))))
    z = (u - n1 * n2 / 2) / sigma
    return u / (n1 * n2), math.erfc(abs(z) / math.sqrt(2))


def test_unknown_users_cannot_be_told_apart_from_known_ones_by_timing(tmp_path: Path) -> None:
    path, known = _mixed_hash_file(tmp_path)
    verifier = HashFileVerifier(path)
    _cpu_seconds(verifier, known[0])  # warm up
    known_times: list[float] = []
    unknown_times: list[float] = []
    # A known user drawn at random, as an unknown identifier draws its decoy: both samples come
    # from the mixture of costs in the file (a fixed rotation of known users would compare an
    # exact 6:3:3 mix with a drawn one, which the test can tell apart by chance alone).
    draw = random.Random(20261206)
    for attempt in range(TRIES):  # interleaved, so drifts in machine load hit both alike
        known_times.append(_cpu_seconds(verifier, draw.choice(known)))
        unknown_times.append(_cpu_seconds(verifier, f"nobody{attempt}@example.com"))

    slower, p_value = _mann_whitney(unknown_times, known_times)

    # Before: every unknown user cost one bcrypt-4 check, and was faster than most known users.
    assert p_value > 0.001, f"P(unknown slower) = {slower:.2f}, p = {p_value:.2g}"
    assert 0.4 < slower < 0.6


def test_every_cost_in_the_file_is_a_decoy_and_the_choice_is_stable(tmp_path: Path) -> None:
    path, _ = _mixed_hash_file(tmp_path)
    verifier = HashFileVerifier(path)
    replica = HashFileVerifier(path)  # another replica, loading the same file
    unknown = [f"nobody{number}@example.com" for number in range(600)]

    chosen = [cost_of(verifier.decoy_for(key)) for key in unknown]

    assert sorted(set(chosen)) == ["bcrypt:04", "bcrypt:05", "pbkdf2-passlib:sha256:10000:32"]
    # Spread as the users are (6 : 3 : 3 of 12), not all on the most common one.
    assert 0.35 < chosen.count("bcrypt:04") / len(chosen) < 0.65
    # The same unknown identifier always costs the same, on every replica.
    assert [verifier.decoy_for(key) for key in unknown] == [
        replica.decoy_for(key) for key in unknown
    ]
