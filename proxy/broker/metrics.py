"""Prometheus metrics of the password broker.

Label values are fixed codes: the front door (`generic`, `okta`, `kratos`, `cognito`, `auth0`)
and the outcome.
No identifier, password or client address is ever a label value.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Outcome of a hook call, as answered.
VERIFIED = "verified"
DENIED = "denied"
RATE_LIMITED = "rate_limited"
LEGACY_ERROR = "legacy_error"  # legacy down, slow or erroring: denied (fail closed)
PROVISION_ERROR = "provision_error"  # verified, but the user could not be provisioned: denied
BROKER_ERROR = "broker_error"  # Redis (limits, locks) unusable: denied
UNAUTHORIZED = "unauthorized"  # the hook's secret or signature is wrong, or too old: 401
REPLAYED = "replayed"  # a signature already used (a captured request sent again): 401
REJECTED = "rejected"  # not the door's documented request: 400 / 413 / 408

# Outcome of a provisioning attempt after a verified password.
PROVISIONED = "provisioned"
ALREADY_PRESENT = "already_present"
FAILED = "failed"

HOOK_CALLS = Counter(
    "authswitch_broker_hook_calls_total",
    "Broker hook calls, by front door and outcome.",
    ["door", "outcome"],
)
PROVISIONING = Counter(
    "authswitch_broker_provisioning_total",
    "Provisioning attempts after a verified password, by front door and outcome.",
    ["door", "outcome"],
)
HOOK_SECONDS = Histogram(
    "authswitch_broker_hook_duration_seconds",
    "Time from a hook call's arrival to the end of its answer, by front door.",
    ["door"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 2.5, 3, 5, 10),
)
