"""Stage previews: exactly who changes route, and a token bound to that plan."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from flags import AuditRecord, RolloutState, bucket, plan_stage
from flags.route_report import ConnectionFacts, ids_not_in, route_report
from flags.stage_plan import token_version

IDS = [f"conn-{n}" for n in range(200)]


def _percent_above(connection_id: str, salt: str = "authswitch-v1") -> float:
    """The smallest stage that takes this connection in."""
    return (bucket(salt, connection_id) + 1) / 100


def test_preview_lists_exactly_the_connections_whose_route_changes() -> None:
    state = RolloutState(
        version=7, stage_percent=5, canary=("conn-1",), overrides={"conn-2": "off"}
    )
    movable = {cid: True for cid in IDS}

    plan = plan_stage(state, 25, movable)

    expected = sorted(
        cid for cid in IDS if 5 < _percent_above(cid) <= 25 and cid not in ("conn-1", "conn-2")
    )
    assert list(plan.to_new) == expected
    assert plan.to_legacy == ()
    assert (plan.version, plan.current_percent, plan.target_percent) == (7, 5.0, 25.0)
    assert plan.new_state.stage_percent == 25 and plan.new_state.version == 7
    lowered = plan_stage(plan.new_state, 5, movable)
    assert lowered.to_legacy == plan.to_new and lowered.to_new == ()


def test_connections_that_cannot_move_are_held_not_listed() -> None:
    state = RolloutState(version=1)
    movable = {"in-a": True, "in-b": False}

    plan = plan_stage(state, 100, movable)

    assert plan.to_new == ("in-a",)
    assert plan.held == ("in-b",)


def test_token_changes_with_version_target_and_who_moves() -> None:
    state = RolloutState(version=3, stage_percent=5)
    movable = {cid: True for cid in IDS}
    token = plan_stage(state, 25, movable).token

    assert plan_stage(state, 25, movable).token == token  # deterministic
    assert token_version(token) == 3
    assert plan_stage(state.model_copy(update={"version": 4}), 25, movable).token != token
    assert plan_stage(state, 26, movable).token != token
    some_mover = plan_stage(state, 25, movable).to_new[0]
    assert plan_stage(state, 25, {**movable, some_mover: False}).token != token
    assert token_version("not-a-token") is None


@pytest.mark.parametrize("target", [-1, 100.5, 12.345])
def test_an_invalid_target_is_refused(target: float) -> None:
    with pytest.raises(ValidationError):
        plan_stage(RolloutState(), target, {})


def test_route_report_joins_assessment_with_the_flag() -> None:
    state = RolloutState(stage_percent=100, overrides={"ghost": "on"})
    facts = [
        ConnectionFacts("acme", "saml", "transparent", imported=True),
        ConnectionFacts("umbrella", "saml", "needs_idp_change", imported=True),
        ConnectionFacts("hooli", "oidc", "transparent", imported=False),
    ]

    rows = {row.id: row for row in route_report(state, facts)}

    assert (rows["acme"].route, rows["acme"].reason) == ("new", "stage_in")
    assert (rows["umbrella"].route, rows["umbrella"].reason) == (
        "legacy",
        "assessment_needs_idp_change",
    )
    assert (rows["umbrella"].flag_route, rows["umbrella"].flag_reason) == ("new", "stage_in")
    assert rows["hooli"].reason == "not_imported"
    assert rows["acme"].bucket == bucket(state.salt, "acme")
    assert rows["acme"].enters_at_percent == _percent_above("acme")
    assert ids_not_in(state, rows) == ["ghost"]


def test_audit_record_lists_only_what_changed() -> None:
    before = RolloutState(version=4, stage_percent=5, overrides={"a": "on", "b": "off"})
    after = RolloutState(version=5, stage_percent=5, overrides={"a": "on", "b": "on", "c": "off"})

    record = AuditRecord.of_change(before, after, actor=" alice ", reason="OPS-9", action="enable")

    assert record.before == {"overrides": {"b": "off", "c": None}}
    assert record.after == {"overrides": {"b": "on", "c": "off"}}
    assert record.actor == "alice"
    assert record.summary() == "overrides.b: 'off' -> 'on'; overrides.c: None -> 'off'"
