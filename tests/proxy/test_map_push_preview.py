"""`connections push --preview / --apply`, `history` and `rollback`, against real Redis and two
running replicas that follow the pushed map."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from connection_map import ConnectionMapDocument
from flags import RolloutState, write_rollout_state
from proxy.app import AuthSwitch
from proxy.cli.main import app as cli
from proxy.config import load_config
from proxy.demo.loopback_server import LoopbackServer
from proxy.map_preview import preview_map_push
from tests.conftest import free_port, write_proxy_files
from tests.flags.redis_support import (
    RedisTarget,
    shared_redis,  # noqa: F401  (registers the fixture for this module)
    wait_until,
)

ACTOR = {"AUTHSWITCH_ACTOR": "sre-on-call"}


def _cli(config: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, [*args, "--config", str(config)], env=ACTOR)


def _with_connection(config: Path, version: int, connection_id: str) -> None:
    """The map file with one more transparent OIDC connection, as an import would add it."""
    map_file = config.parent / "connections.yaml"
    document = yaml.safe_load(map_file.read_text())
    document["version"] = version
    document["connections"].append(
        {
            "id": connection_id,
            "protocol": "oidc",
            "assessment": "transparent",
            "new_provider": {"url": f"https://new.example/{connection_id}/cb", "mode": "redirect"},
        }
    )
    map_file.write_text(yaml.safe_dump(document))


def _route(base_url: str, connection_id: str) -> str:
    answer = httpx.get(f"{base_url}/oidc/{connection_id}/callback?code=c&state=s", timeout=5)
    return "new" if answer.status_code == 302 else "legacy"


def _apply_preview(config: Path, *args: str, reason: str) -> Any:
    preview = _cli(config, *args, "--preview", "--json")
    assert preview.exit_code == 0, preview.output
    token = json.loads(preview.stdout)["token"]
    return _cli(config, *args, "--apply", token, "--reason", reason)


@pytest.fixture
def deployment(
    tmp_path: Path,
    providers: dict[str, LoopbackServer],
    shared_redis: RedisTarget,  # noqa: F811  (the fixture imported above)
) -> Iterator[tuple[Path, list[str]]]:
    """Stage 100 %, map version 1 pushed, two replicas following Redis: (config, replica URLs)."""
    config = write_proxy_files(
        tmp_path,
        providers["legacy"].url,
        providers["new"].url,
        connection_map_redis={
            "url": shared_redis.url,
            "key_prefix": shared_redis.prefix,
            "resync_seconds": 0.5,
            "history": 3,
        },
    )
    write_rollout_state(tmp_path / "flags.yaml", RolloutState(version=1, stage_percent=100))
    first = _apply_preview(config, "connections", "push", reason="first map")
    assert first.exit_code == 0, first.output
    with ExitStack() as stack:
        replicas = [
            stack.enter_context(LoopbackServer(AuthSwitch(load_config(config)), name=f"r{n}"))
            for n in (1, 2)
        ]
        urls = [replica.url for replica in replicas]
        wait_until(lambda: all(_route(url, "hooli") == "new" for url in urls))
        yield config, urls


def test_a_push_that_moves_a_connection_needs_its_preview_and_moves_it_on_every_replica(
    deployment: tuple[Path, list[str]],
) -> None:
    config, urls = deployment
    _with_connection(config, 2, "newco")

    plain = _cli(config, "connections", "push", "--reason", "import newco")
    after_refusal = [_route(url, "newco") for url in urls]
    preview = _cli(config, "connections", "push", "--preview", "--json")
    token = json.loads(preview.stdout)["token"]
    # Someone changes the flags between the preview and the apply: the preview is stale.
    write_rollout_state(config.parent / "flags.yaml", RolloutState(version=2, stage_percent=100))
    stale = _cli(config, "connections", "push", "--apply", token, "--reason", "import newco")
    text_preview = _cli(config, "connections", "push", "--preview")
    token = text_preview.stdout.split("token: ", 1)[1].split()[0]
    applied = _cli(config, "connections", "push", "--apply", token, "--reason", "import newco")

    assert plain.exit_code == 5, plain.output
    assert "newco: legacy (not_in_map) -> new (stage_in)" in plain.stdout
    assert "--preview" in plain.stderr and "nothing pushed" in plain.stderr
    assert after_refusal == ["legacy", "legacy"], "a refused push moved nobody"
    shown = json.loads(preview.stdout)
    assert (shown["live_version"], shown["new_version"], shown["added"]) == (1, 2, ["newco"])
    assert shown["removed"] == [] and shown["changed"] == []
    assert shown["route_changes"] == [
        {
            "id": "newco",
            "before": "legacy",
            "after": "new",
            "reason_before": "not_in_map",
            "reason_after": "stage_in",
        }
    ]
    assert stale.exit_code == 4 and "is stale" in stale.stderr, stale.output
    assert "connections added: 1, removed: 0, changed: 0" in text_preview.stdout
    assert "route changes at stage 100% (flags version 2): 1" in text_preview.stdout
    assert applied.exit_code == 0, applied.output
    assert "callbacks now routed elsewhere (1): newco" in applied.stdout
    wait_until(lambda: [_route(url, "newco") for url in urls] == ["new", "new"])


def test_history_lists_pushes_and_rollback_goes_through_the_same_gate(
    deployment: tuple[Path, list[str]],
) -> None:
    config, urls = deployment
    map_file = config.parent / "connections.yaml"
    document = yaml.safe_load(map_file.read_text())
    document["version"] = 2
    document["connections"][0]["name"] = "Acme Inc."  # moves nobody: no preview needed
    map_file.write_text(yaml.safe_dump(document))
    renamed = _cli(config, "connections", "push", "--reason", "OPS-1 rename")
    _with_connection(config, 3, "newco")
    added = _apply_preview(config, "connections", "push", reason="OPS-2 newco")
    wait_until(lambda: all(_route(url, "newco") == "new" for url in urls))

    plain_rollback = _cli(config, "connections", "rollback", "2", "--reason", "OPS-3 undo")
    rolled = _apply_preview(config, "connections", "rollback", "2", reason="OPS-3 undo")
    history = _cli(config, "connections", "history", "--json")
    table = _cli(config, "connections", "history")
    not_kept = _cli(config, "connections", "rollback", "1", "--preview")

    assert renamed.exit_code == 0 and "changed: 1" in renamed.stdout, renamed.output
    assert added.exit_code == 0, added.output
    assert plain_rollback.exit_code == 5, plain_rollback.output
    assert "newco: new (stage_in) -> legacy (not_in_map)" in plain_rollback.stdout
    assert rolled.exit_code == 0, rolled.output
    wait_until(lambda: [_route(url, "newco") for url in urls] == ["legacy", "legacy"])
    pushes = json.loads(history.stdout)["pushes"]
    assert json.loads(history.stdout)["live_version"] == 4
    assert [(p["version"], p["action"], p["rolled_back_to"]) for p in pushes] == [
        (4, "rollback", 2),
        (3, "push", None),
        (2, "push", None),
        (1, "push", None),
    ]
    assert [p["kept"] for p in pushes] == [True, True, True, False]  # history: 3
    assert {p["actor"] for p in pushes} == {"sre-on-call"}
    assert pushes[0]["reason"] == "OPS-3 undo" and pushes[0]["live"] is True
    assert "4 (live)" in table.stdout and "rollback to 2" in table.stdout
    assert not_kept.exit_code == 2 and "version 1 is not kept" in not_kept.stderr


def test_the_preview_follows_the_proxys_own_join_of_map_and_flags() -> None:
    """Taken off the map -> legacy; no longer transparent -> legacy; unflagged -> no move."""

    def doc(version: int, *entries: dict[str, Any]) -> ConnectionMapDocument:
        return ConnectionMapDocument.model_validate(
            {"version": version, "connections": list(entries)}
        )

    def oidc(cid: str, assessment: str = "transparent") -> dict[str, Any]:
        return {
            "id": cid,
            "protocol": "oidc",
            "assessment": assessment,
            "new_provider": {"url": f"https://new.example/{cid}"},
        }

    live = doc(1, oidc("a"), oidc("b"), oidc("c"), oidc("d"))
    new = doc(2, oidc("a"), oidc("b", "needs_idp_change"), oidc("d"), oidc("e"))
    state = RolloutState(version=9, canary=["a", "b", "c", "e"], overrides={"d": "off"})

    preview = preview_map_push(live, new, state)
    moved = {(c.id, c.before, c.after, c.reason_after) for c in preview.route_changes or ()}
    unknown_flags = preview_map_push(live, new, None)

    assert moved == {
        ("b", "new", "legacy", "assessment_needs_idp_change"),
        ("c", "new", "legacy", "not_in_map"),
        ("e", "legacy", "new", "canary"),
    }
    assert preview.needs_apply and preview.token.startswith("1-")
    assert preview_map_push(live, new, state.model_copy(update={"version": 10})).token != (
        preview.token
    )
    assert unknown_flags.route_changes is None and unknown_flags.needs_apply
    assert not preview_map_push(live, live.model_copy(update={"version": 2}), state).needs_apply


def test_redis_down_exits_3_and_no_output_shows_the_redis_password(tmp_path: Path) -> None:
    closed = f"redis://ops:hunter2@127.0.0.1:{free_port()}/11"
    config = write_proxy_files(
        tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9", connection_map_redis={"url": closed}
    )
    runs = [
        _cli(config, "connections", "push", "--preview"),
        _cli(config, "connections", "push", "--reason", "r"),
        _cli(config, "connections", "history", "--json"),
        _cli(config, "connections", "rollback", "1", "--preview"),
    ]
    both = _cli(config, "connections", "push", "--preview", "--apply", "1-abc", "--reason", "r")

    for run in runs:
        assert run.exit_code == 3, run.output
        assert "hunter2" not in run.output
    assert both.exit_code == 2 and "not both" in both.stderr
