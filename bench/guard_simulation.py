"""How often the rollout guard kills a healthy connection, and how fast it kills a failing one.

Run: ``.venv/bin/python -m bench.guard_simulation`` (about a minute; ``--days`` to change the
sample). It drives the guard's own test (``proxy.outcomes.sequential_test.judge``, default
settings) with simulated logins and judges after every single one (the worst case: the real
guard looks every few seconds, i.e. less often), so the figures are upper bounds for false kills.

- False kills: 10 000 healthy connection-days; both sides fail at 2 %; the daily volume of a
  small canary is drawn log-uniformly between 5 and 500 logins; the legacy baseline is the
  connection's previous 7 days at the same volume (the traffic it had before the flip).
- Detection: every login fails at the new provider; success drops from 98 % to 80 %. Reported:
  forwarded logins until the kill (median, p90, max) over 2 000 connections each.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics

from proxy.outcomes.sequential_test import judge
from proxy.outcomes.settings import GuardSettings

POLICY = GuardSettings()
HEALTHY_FAILURE = 0.02
BASELINE_DAYS = 7


def _volume(rng: random.Random) -> int:
    return round(math.exp(rng.uniform(math.log(5), math.log(500))))


def _baseline(rng: random.Random, daily: int, failure: float) -> tuple[int, int]:
    total = daily * BASELINE_DAYS
    failed = sum(rng.random() < failure for _ in range(total))
    return total - failed, failed


def _logins_until_kill(
    rng: random.Random, failure: float, logins: int, baseline: tuple[int, int]
) -> int | None:
    succeeded = failed = 0
    for number in range(1, logins + 1):
        if rng.random() < failure:
            failed += 1
        else:
            succeeded += 1
        if judge(succeeded, failed, *baseline, POLICY).verdict == "failing":
            return number
    return None


def false_kill_rate(rng: random.Random, days: int) -> tuple[int, int]:
    killed = 0
    for _ in range(days):
        daily = _volume(rng)
        baseline = _baseline(rng, daily, HEALTHY_FAILURE)
        if _logins_until_kill(rng, HEALTHY_FAILURE, daily, baseline) is not None:
            killed += 1
    return killed, days


def detection(rng: random.Random, failure: float, trials: int, limit: int) -> tuple[list[int], int]:
    found: list[int] = []
    missed = 0
    for _ in range(trials):
        baseline = _baseline(rng, _volume(rng), HEALTHY_FAILURE)
        result = _logins_until_kill(rng, failure, limit, baseline)
        if result is None:
            missed += 1
        else:
            found.append(result)
    return found, missed


def _describe(found: list[int], missed: int) -> str:
    if not found:
        return f"never killed ({missed} missed)"
    ordered = sorted(found)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    return (
        f"median {statistics.median(ordered):g}, p90 {p90}, max {ordered[-1]} forwarded logins"
        f"{f'; {missed} not killed within the limit' if missed else ''}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=10_000)
    parser.add_argument("--trials", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    print(
        f"guard policy: false_kill_rate {POLICY.false_kill_rate}, relative x"
        f"{POLICY.relative_increase:g}, absolute +{POLICY.absolute_increase:g}, "
        f"min_new_samples {POLICY.min_new_samples}, min_baseline_samples "
        f"{POLICY.min_baseline_samples}"
    )
    killed, days = false_kill_rate(rng, args.days)
    print(
        f"false kills: {killed} of {days} healthy connection-days "
        f"({100 * killed / days:.2f} %; goal <= 0.5 %)"
    )
    all_fail, missed = detection(rng, 1.0, args.trials, 50)
    print(f"all logins failing: killed after {_describe(all_fail, missed)} (goal <= 10)")
    drop, missed = detection(rng, 0.20, args.trials, 2_000)
    print(f"98 % -> 80 % success: killed after {_describe(drop, missed)} (goal median <= 150)")


if __name__ == "__main__":
    main()
