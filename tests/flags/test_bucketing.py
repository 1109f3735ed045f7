"""Sticky, monotonic percentage buckets."""

from __future__ import annotations

import pytest

from flags import RolloutState, bucket, evaluate

IDS = [f"conn_{i:05d}" for i in range(20_000)]


@pytest.mark.parametrize(
    ("salt", "connection_id", "expected"),
    [
        ("authswitch-v1", "acme", 4519),
        ("authswitch-v1", "globex", 6277),
        ("authswitch-v1", "initech", 8589),
        ("other-salt", "acme", 2271),
        ("authswitch-v1", "", 2301),
        ("authswitch-v1", "conn_ü", 3697),
    ],
)
def test_bucket_matches_pinned_vectors(salt: str, connection_id: str, expected: int) -> None:
    # Pinned: a change here would silently move live connections between legacy and new.
    assert bucket(salt, connection_id) == expected


def test_buckets_stay_in_range_and_use_the_whole_range() -> None:
    buckets = [bucket("authswitch-v1", cid) for cid in IDS]
    assert min(buckets) >= 0
    assert max(buckets) <= 9_999
    assert min(buckets) < 10 and max(buckets) > 9_989


def test_bucket_depends_on_salt_and_id_only() -> None:
    first = [bucket("authswitch-v1", cid) for cid in IDS[:500]]
    again = [bucket("authswitch-v1", cid) for cid in IDS[:500]]
    other_salt = [bucket("authswitch-v2", cid) for cid in IDS[:500]]
    assert first == again
    assert sum(a != b for a, b in zip(first, other_salt, strict=True)) > 490


def _routed_new(stage_percent: float) -> set[str]:
    state = RolloutState(stage_percent=stage_percent)
    return {cid for cid in IDS if evaluate(state, cid).route == "new"}


def test_raising_the_stage_only_adds_connections() -> None:
    at_0, at_5, at_25, at_100 = (_routed_new(p) for p in (0, 5, 25, 100))
    assert at_0 == set()
    assert at_5 < at_25  # strict subset: every connection in at 5 % stays in at 25 %
    assert at_100 == set(IDS)


def test_stage_fraction_matches_the_percentage() -> None:
    assert abs(len(_routed_new(25)) / len(IDS) - 0.25) <= 0.015
    assert abs(len(_routed_new(5)) / len(IDS) - 0.05) <= 0.015


def test_stage_resolution_is_one_basis_point() -> None:
    cid = "acme"  # bucket 4519 under the default salt
    assert evaluate(RolloutState(stage_percent=45.19), cid).route == "legacy"
    assert evaluate(RolloutState(stage_percent=45.20), cid).route == "new"
