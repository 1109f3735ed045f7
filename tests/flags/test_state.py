"""The RolloutState model: defaults, immutability and what counts as a connection id."""

from __future__ import annotations

import pydantic
import pytest

from flags import RolloutState


def test_defaults_route_nobody_to_new() -> None:
    state = RolloutState()
    assert (state.version, state.salt, state.kill_all) == (0, "authswitch-v1", False)
    assert (state.stage_percent, state.canary, dict(state.overrides)) == (0.0, (), {})


def test_state_is_frozen() -> None:
    state = RolloutState()
    with pytest.raises(pydantic.ValidationError):
        state.kill_all = True


def test_yaml_booleans_are_read_as_on_and_off() -> None:
    state = RolloutState.model_validate({"overrides": {"globex": True, "initech": False}})
    assert dict(state.overrides) == {"globex": "on", "initech": "off"}


@pytest.mark.parametrize(
    ("percent", "basis_points"), [(0, 0), (33.33, 3333), (5, 500), (100, 10_000)]
)
def test_stage_in_basis_points(percent: float, basis_points: int) -> None:
    assert RolloutState(stage_percent=percent).stage_basis_points == basis_points


@pytest.mark.parametrize("percent", [-0.01, 100.01, 12.345, float("nan"), float("inf")])
def test_stage_outside_range_or_resolution_is_rejected(percent: float) -> None:
    with pytest.raises(pydantic.ValidationError):
        RolloutState(stage_percent=percent)


@pytest.mark.parametrize("connection_id", ["acme", "a" * 256, "conn_ü-01.prod:eu", "x|y"])
def test_valid_connection_ids(connection_id: str) -> None:
    state = RolloutState(canary=(connection_id,), overrides={connection_id: "on"})
    assert state.canary == (connection_id,)


@pytest.mark.parametrize(
    "connection_id", ["", "a" * 257, "has space", "tab\there", "new\nline", "nul\x00", "zw\u200bsp"]
)
def test_invalid_connection_ids_are_rejected_in_canary_and_overrides(connection_id: str) -> None:
    with pytest.raises(pydantic.ValidationError, match="connection id"):
        RolloutState(canary=(connection_id,))
    with pytest.raises(pydantic.ValidationError, match="connection id"):
        RolloutState(overrides={connection_id: "on"})


def test_strict_types_do_not_coerce_strings() -> None:
    with pytest.raises(pydantic.ValidationError):
        RolloutState.model_validate({"kill_all": "false"})
    with pytest.raises(pydantic.ValidationError):
        RolloutState.model_validate({"version": "3"})
