"""What the authswitch OpenFeature providers share: answering ``authswitch.route`` from memory.

A provider keeps one ``CompiledRollout`` reference and replaces it whole; ``resolve_*`` only
reads that reference, so evaluation never locks, never waits and never touches the network.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
from openfeature.provider import AbstractProvider

from flags.evaluation import FLAG_KEY, CompiledRollout

T = TypeVar("T")

_REASONS: Mapping[str, Reason] = {
    "kill_all": Reason.DISABLED,
    "override_off": Reason.DISABLED,
    "override_on": Reason.TARGETING_MATCH,
    "canary": Reason.TARGETING_MATCH,
    "stage_in": Reason.SPLIT,
    "stage_out": Reason.SPLIT,
}


@dataclass(frozen=True, slots=True)
class FlagSourceHealth:
    """What a provider knows about the state it serves, for ``/readyz`` and metrics."""

    backend: str
    has_state: bool
    """False only before any state was ever loaded: then every connection gets legacy."""
    version: int | None
    stale: bool
    """True while the backend can't be read and the last known good state is served."""
    stale_seconds: float | None
    """Seconds since the state in memory was last confirmed against the backend, when stale."""
    last_error: str | None

    def as_dict(self) -> dict[str, Any]:
        report = asdict(self)
        if self.stale_seconds is not None:
            report["stale_seconds"] = round(self.stale_seconds, 3)
        return report


@runtime_checkable
class ReportsFlagHealth(Protocol):
    def health(self) -> FlagSourceHealth: ...


class RouteFlagProvider(AbstractProvider):
    """Base of the file and Redis providers: resolves ``authswitch.route`` from ``_rollout``.

    Answers (targeting key = connection id): value ``new``/``legacy``, variant = the deciding
    rule, reason ``DISABLED`` (kill_all, override_off), ``TARGETING_MATCH`` (override_on,
    canary), ``SPLIT`` (stage_in, stage_out), or ``STALE`` while the backend is unreachable and
    the last known good state answers; flag_metadata ``{"version", "stage_percent"}``.
    """

    def __init__(self) -> None:
        super().__init__()
        # The one reference readers use; replaced whole, never mutated, so reads need no lock.
        self._rollout: CompiledRollout | None = None
        self._serving_stale = False

    def resolve_string_details(
        self,
        flag_key: str,
        default_value: str,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[str]:
        if flag_key != FLAG_KEY:
            return _unknown_flag(flag_key, default_value)
        rollout = self._rollout
        if rollout is None:
            return _error(default_value, ErrorCode.PROVIDER_NOT_READY, "no rollout state known")
        connection_id = evaluation_context.targeting_key if evaluation_context else None
        if not connection_id:
            message = "targeting_key (the connection id) is required"
            return _error(default_value, ErrorCode.TARGETING_KEY_MISSING, message)
        decision = rollout.decide(connection_id)
        return FlagResolutionDetails(
            value=decision.route,
            reason=Reason.STALE if self._serving_stale else _REASONS[decision.reason],
            variant=decision.reason,
            flag_metadata=rollout.flag_metadata,
        )

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        return _not_a_string(flag_key, default_value)

    def resolve_integer_details(
        self,
        flag_key: str,
        default_value: int,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[int]:
        return _not_a_string(flag_key, default_value)

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return _not_a_string(flag_key, default_value)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        return _not_a_string(flag_key, default_value)


def _error(default_value: T, code: ErrorCode, message: str) -> FlagResolutionDetails[T]:
    # Error results carry the caller's default: the SDK's async path would pass any other value on.
    return FlagResolutionDetails(
        value=default_value, error_code=code, error_message=message, reason=Reason.ERROR
    )


def _unknown_flag(flag_key: str, default_value: T) -> FlagResolutionDetails[T]:
    message = f"flag {flag_key!r} not found; this provider serves only {FLAG_KEY!r}"
    return _error(default_value, ErrorCode.FLAG_NOT_FOUND, message)


def _not_a_string(flag_key: str, default_value: T) -> FlagResolutionDetails[T]:
    if flag_key != FLAG_KEY:
        return _unknown_flag(flag_key, default_value)
    message = f"flag {FLAG_KEY!r} is a string flag ('new' or 'legacy')"
    return _error(default_value, ErrorCode.TYPE_MISMATCH, message)
