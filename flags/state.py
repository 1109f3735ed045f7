"""The rollout state: which connections go to the new provider, as one validated document."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
)
from pydantic_core import PydanticCustomError

from flags.bucketing import BUCKETS

DEFAULT_SALT = "authswitch-v1"
MAX_CONNECTION_ID_LENGTH = 256


def _check_connection_id(value: str) -> str:
    if not value:
        raise PydanticCustomError("connection_id", "connection id must not be empty")
    if len(value) > MAX_CONNECTION_ID_LENGTH:
        raise PydanticCustomError(
            "connection_id",
            "connection id must be at most {limit} characters (got {length})",
            {"limit": MAX_CONNECTION_ID_LENGTH, "length": len(value)},
        )
    # Category "C*" covers control, format (zero-width), surrogate and unassigned characters:
    # ids that look identical to a human but don't match would silently miss their override.
    if any(ch.isspace() or unicodedata.category(ch)[0] == "C" for ch in value):
        raise PydanticCustomError(
            "connection_id", "connection id must not contain whitespace or control characters"
        )
    return value


def _on_off_from_yaml_bool(value: Any) -> Any:
    # YAML 1.1 reads a bare `on` / `off` as a boolean; accept it so `globex: on` means "on".
    if value is True:
        return "on"
    if value is False:
        return "off"
    return value


def _check_stage_percent(value: float) -> float:
    if not 0.0 <= value <= 100.0:
        raise PydanticCustomError(
            "stage_percent", "must be between 0 and 100 (got {got})", {"got": f"{value:g}"}
        )
    basis_points = value * 100
    if abs(basis_points - round(basis_points)) > 1e-6:
        raise PydanticCustomError(
            "stage_percent",
            "must be a multiple of 0.01 (one bucket of {buckets}) (got {got})",
            {"buckets": BUCKETS, "got": repr(value)},
        )
    return value


ConnectionId = Annotated[StrictStr, AfterValidator(_check_connection_id)]
Override = Annotated[Literal["on", "off"], BeforeValidator(_on_off_from_yaml_bool)]


class RolloutState(BaseModel):
    """One deployment's rollout: the kill switch, overrides, canary list and percentage stage.

    Precedence when routing a connection: ``kill_all`` > override ``off`` > override ``on`` >
    ``canary`` > stage (``bucket(salt, id) < stage_percent * 100``).

    ``salt`` must never change during a migration: every connection's bucket is a hash of
    (salt, connection id), so a new salt reshuffles all buckets and, at any stage between 0 and
    100 %, sends a different set of connections to the new provider - connections already moved
    would fall back to legacy mid-migration and others would move without anyone choosing them.

    Build a changed state with ``RolloutState.model_validate({**old.model_dump(), ...})``;
    ``model_copy(update=...)`` skips validation.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Annotated[StrictInt, Field(ge=0)] = 0
    salt: Annotated[StrictStr, Field(min_length=1)] = DEFAULT_SALT
    kill_all: StrictBool = False
    stage_percent: Annotated[
        float, Field(strict=True, allow_inf_nan=False), AfterValidator(_check_stage_percent)
    ] = 0.0
    canary: tuple[ConnectionId, ...] = ()
    overrides: Mapping[ConnectionId, Override] = Field(default_factory=dict)

    @property
    def stage_basis_points(self) -> int:
        """The stage in buckets (0..10000); a connection is in iff its bucket is below this."""
        return round(self.stage_percent * 100)
