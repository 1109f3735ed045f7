"""The guard's test: Wald's sequential probability ratio test against the connection's baseline.

H0: the new side fails at the baseline rate p0 (the 95 % upper confidence bound of the
connection's own legacy failure rate, floored: a noisy baseline errs towards not killing); H1: it
fails at p1 = max(p * relative, p + absolute, p0 + 0.05), p the baseline's point estimate (so a
small, uncertain baseline does not push the alternative out of reach). After f failures and s
successes the log likelihood ratio is

    LLR = f * ln(p1 / p0) + s * ln((1 - p1) / (1 - p0))

Under H0 the likelihood ratio is a non-negative martingale, so by Ville's inequality the chance it
ever reaches 1/alpha is at most alpha - however many times the guard looks. "Failing" is
LLR >= ln(1/alpha); "healthy" (what gated promotion wants) is LLR <= -ln(1/alpha), the same
evidence the other way; in between the connection is "unproven".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from proxy.outcomes.settings import GuardSettings

Verdict = Literal["healthy", "unproven", "failing", "silent"]
_Z = 1.644854  # 95 % one-sided
MIN_GAP = 0.05  # p1 is at least this far above p0


def wilson_upper(failed: int, total: int, z: float = _Z) -> float:
    """The Wilson score interval's upper end for a failure proportion."""
    if total == 0:
        return 1.0
    p = failed / total
    denominator = 1 + z * z / total
    centre = p + z * z / (2 * total)
    spread = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    return min(1.0, (centre + spread) / denominator)


def baseline_failure_rate(failed: int, total: int, policy: GuardSettings) -> float:
    """p0: the legacy failure rate's upper bound, or the configured default with little data."""
    if total < policy.min_baseline_samples:
        rate = policy.default_baseline_failure_rate
    else:
        rate = wilson_upper(failed, total)
    return min(max(rate, policy.min_baseline_failure_rate), 0.5)


def failing_rate(failed: int, total: int, baseline: float, policy: GuardSettings) -> float:
    """p1: the failure rate the test is built to detect, from the baseline's point estimate."""
    if total < policy.min_baseline_samples:
        point = policy.default_baseline_failure_rate
    else:
        point = failed / total
    point = max(point, policy.min_baseline_failure_rate)
    rate = max(point * policy.relative_increase, point + policy.absolute_increase)
    return min(0.99, max(rate, baseline + MIN_GAP))


@dataclass(frozen=True, slots=True)
class Judgement:
    """The verdict and the numbers behind it (what the audit record and the CLI show)."""

    verdict: Verdict
    new_succeeded: int
    new_failed: int
    baseline_succeeded: int
    baseline_failed: int
    baseline_rate: float
    failing_rate: float
    log_likelihood_ratio: float
    threshold: float
    forwarded: int = 0

    def summary(self) -> str:
        """One line of numbers, for the audit reason and the log (no personal data)."""
        new_total = self.new_succeeded + self.new_failed
        base_total = self.baseline_succeeded + self.baseline_failed
        return (
            f"{self.verdict}: new side {self.new_failed} failed of {new_total}; legacy baseline "
            f"{self.baseline_failed} failed of {base_total} (p0 {self.baseline_rate:.4f}, "
            f"p1 {self.failing_rate:.4f}); SPRT log LR {self.log_likelihood_ratio:.2f} "
            f"(threshold {self.threshold:.2f}); forwarded {self.forwarded}"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "verdict": self.verdict,
            "new": {"succeeded": self.new_succeeded, "failed": self.new_failed},
            "baseline": {"succeeded": self.baseline_succeeded, "failed": self.baseline_failed},
            "baseline_failure_rate": round(self.baseline_rate, 6),
            "failing_rate": round(self.failing_rate, 6),
            "log_likelihood_ratio": round(self.log_likelihood_ratio, 4),
            "threshold": round(self.threshold, 4),
            "forwarded": self.forwarded,
        }


def judge(
    new_succeeded: int,
    new_failed: int,
    baseline_succeeded: int,
    baseline_failed: int,
    policy: GuardSettings,
    *,
    forwarded: int = 0,
) -> Judgement:
    """The SPRT verdict for one connection's counts."""
    baseline_total = baseline_succeeded + baseline_failed
    p0 = baseline_failure_rate(baseline_failed, baseline_total, policy)
    p1 = failing_rate(baseline_failed, baseline_total, p0, policy)
    llr = new_failed * math.log(p1 / p0) + new_succeeded * math.log((1 - p1) / (1 - p0))
    threshold = math.log(1 / policy.false_kill_rate)
    verdict: Verdict
    if new_succeeded + new_failed < policy.min_new_samples:
        verdict = "unproven"
    elif llr >= threshold:
        verdict = "failing"
    elif llr <= -threshold:
        verdict = "healthy"
    else:
        verdict = "unproven"
    return Judgement(
        verdict,
        new_succeeded,
        new_failed,
        baseline_succeeded,
        baseline_failed,
        p0,
        p1,
        llr,
        threshold,
        forwarded,
    )
