"""Routing precedence: kill_all > override off > override on > canary > stage."""

from __future__ import annotations

from typing import Any

import pytest

from flags import RolloutState, RouteDecision, evaluate
from flags.evaluation import CompiledRollout

CID = "acme"
KILL_ALL = {"kill_all": True}
OVERRIDE_OFF = {"overrides": {CID: "off"}}
OVERRIDE_ON = {"overrides": {CID: "on"}}
CANARY = {"canary": ["other", CID]}
STAGE_IN = {"stage_percent": 100}
STAGE_OUT = {"stage_percent": 0}


def _state(*rules: dict[str, Any]) -> RolloutState:
    merged: dict[str, Any] = {}
    for rule in rules:
        merged.update(rule)
    return RolloutState.model_validate(merged)


# Every pair of rules that can apply to one connection at once (a connection has one override
# value, and the stage is either in or out), with the rule that must win.
PAIRS = [
    pytest.param(KILL_ALL, OVERRIDE_OFF, RouteDecision("legacy", "kill_all"), id="kill>off"),
    pytest.param(KILL_ALL, OVERRIDE_ON, RouteDecision("legacy", "kill_all"), id="kill>on"),
    pytest.param(KILL_ALL, CANARY, RouteDecision("legacy", "kill_all"), id="kill>canary"),
    pytest.param(KILL_ALL, STAGE_IN, RouteDecision("legacy", "kill_all"), id="kill>stage_in"),
    pytest.param(KILL_ALL, STAGE_OUT, RouteDecision("legacy", "kill_all"), id="kill>stage_out"),
    pytest.param(OVERRIDE_OFF, CANARY, RouteDecision("legacy", "override_off"), id="off>canary"),
    pytest.param(OVERRIDE_OFF, STAGE_IN, RouteDecision("legacy", "override_off"), id="off>in"),
    pytest.param(OVERRIDE_OFF, STAGE_OUT, RouteDecision("legacy", "override_off"), id="off>out"),
    pytest.param(OVERRIDE_ON, CANARY, RouteDecision("new", "override_on"), id="on>canary"),
    pytest.param(OVERRIDE_ON, STAGE_IN, RouteDecision("new", "override_on"), id="on>in"),
    pytest.param(OVERRIDE_ON, STAGE_OUT, RouteDecision("new", "override_on"), id="on>out"),
    pytest.param(CANARY, STAGE_IN, RouteDecision("new", "canary"), id="canary>in"),
    pytest.param(CANARY, STAGE_OUT, RouteDecision("new", "canary"), id="canary>out"),
]


@pytest.mark.parametrize(("higher", "lower", "expected"), PAIRS)
def test_higher_rule_wins_whatever_the_order(
    higher: dict[str, Any], lower: dict[str, Any], expected: RouteDecision
) -> None:
    assert evaluate(_state(higher, lower), CID) == expected
    assert evaluate(_state(lower, higher), CID) == expected


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (KILL_ALL, RouteDecision("legacy", "kill_all")),
        (OVERRIDE_OFF, RouteDecision("legacy", "override_off")),
        (OVERRIDE_ON, RouteDecision("new", "override_on")),
        (CANARY, RouteDecision("new", "canary")),
        (STAGE_IN, RouteDecision("new", "stage_in")),
        (STAGE_OUT, RouteDecision("legacy", "stage_out")),
    ],
)
def test_each_rule_alone(rule: dict[str, Any], expected: RouteDecision) -> None:
    assert evaluate(_state(rule), CID) == expected


def test_rules_for_one_connection_leave_others_to_the_stage() -> None:
    state = _state({"overrides": {"globex": "on", "initech": "off"}, "canary": ["umbrella"]})
    assert evaluate(state, CID) == RouteDecision("legacy", "stage_out")


def test_compiled_rollout_decides_like_evaluate() -> None:
    state = _state(
        {"stage_percent": 37.5, "canary": [f"c{i}" for i in range(0, 300, 7)]},
        {"overrides": {f"c{i}": ("on" if i % 2 else "off") for i in range(0, 300, 11)}},
    )
    compiled = CompiledRollout.from_state(state)
    ids = [f"c{i}" for i in range(300)]
    decisions = [compiled.decide(cid) for cid in ids]
    assert decisions == [evaluate(state, cid) for cid in ids]
    assert {d.reason for d in decisions} == {
        "override_off",
        "override_on",
        "canary",
        "stage_in",
        "stage_out",
    }
