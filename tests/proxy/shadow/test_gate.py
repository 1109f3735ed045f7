"""The readiness gate's thresholds, exactly at their edges."""

from __future__ import annotations

from proxy.shadow.gate import not_ready_because
from proxy.shadow.readiness_store import Readiness
from proxy.shadow.settings import ShadowSettings

SETTINGS = ShadowSettings(min_samples=50, min_accept_ratio=0.98)


def _readiness(samples: int, accepted: int) -> Readiness:
    reasons = {"audience_not_accepted": samples - accepted} if samples > accepted else {}
    details = {"audience_not_accepted": "Audience https://sp.example is not accepted"}
    return Readiness("acme", "digest", samples, accepted, reasons=reasons, details=details)


def test_one_sample_short_of_the_minimum_is_not_ready() -> None:
    why = not_ready_because(_readiness(49, 49), SETTINGS)
    assert why == "49 checked samples of its current import, 50 needed"
    assert not_ready_because(_readiness(50, 50), SETTINGS) is None


def test_a_ratio_just_below_the_threshold_is_not_ready_and_says_why() -> None:
    assert not_ready_because(_readiness(50, 49), SETTINGS) is None  # 98.0 %: enough
    why = not_ready_because(_readiness(100, 97), SETTINGS)  # 97.0 %
    assert why == (
        "the new provider would accept 97.0% of its live logins (at least 98.0% needed): "
        "Audience https://sp.example is not accepted"
    )
