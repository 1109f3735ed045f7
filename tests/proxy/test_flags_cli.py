"""`authswitch flags ...` on the file backend and on a real Redis: output, exit codes, audit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from openfeature.evaluation_context import EvaluationContext
from typer.testing import CliRunner, Result

from connection_map import ConnectionMapDocument, read_connection_map_document
from connection_map.redis_store import MapKeys, RedisMapStore
from flags import RedisFlagProvider, load_rollout_state
from proxy.cli.exit_codes import ExitCode
from proxy.cli.main import app
from tests.conftest import write_proxy_files
from tests.flags.redis_support import (
    RedisTarget,
    free_port,
    shared_redis,  # noqa: F401  (registers the fixture for this module)
)

ACTOR = "alice@example.com"


@dataclass
class Cli:
    config: Path
    backend: str

    def run(self, *args: str, actor: str | None = ACTOR) -> Result:
        env = {"AUTHSWITCH_ACTOR": actor} if actor else {"AUTHSWITCH_ACTOR": ""}
        return CliRunner().invoke(app, ["flags", *args, "--config", str(self.config)], env=env)

    def json(self, *args: str) -> Any:
        result = self.run(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def routes(self) -> dict[str, tuple[str, str]]:
        rows = self.json("status")["connections"]
        return {row["id"]: (row["route"], row["reason"]) for row in rows}


@pytest.fixture(params=["file", "redis"])
def cli(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cli]:
    flags: dict[str, Any] = {"file": "flags.yaml"}
    if request.param == "redis":
        target: RedisTarget = request.getfixturevalue("shared_redis")
        flags = {"backend": "redis", "redis": {"url": target.url, "key_prefix": target.prefix}}
    config = write_proxy_files(tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9", flags=flags)
    yield Cli(config, request.param)


def _token(cli: Cli, percent: str) -> tuple[str, dict[str, Any]]:
    plan = cli.json("stage", percent, "--preview")
    return plan["token"], plan


def test_status_shows_assessment_bucket_route_and_reason(cli: Cli) -> None:
    result = cli.run("status")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.startswith("CONNECTION"))
    assert header.split() == ["CONNECTION", "PROTOCOL", "ASSESSMENT", "BUCKET", "IN", "FROM",
                              "ROUTE", "REASON"]  # fmt: skip
    umbrella = next(line for line in lines if line.startswith("umbrella"))
    assert "needs_idp_change" in umbrella and "legacy" in umbrella
    assert "0 of 6 connections go to the new provider" in result.stdout
    report = cli.json("status")
    assert report["state"]["version"] == 0
    row = next(r for r in report["connections"] if r["id"] == "acme")
    assert set(row) == {
        "id", "protocol", "assessment", "bucket", "enters_at_percent",
        "flag_route", "flag_reason", "route", "reason",
    }  # fmt: skip
    assert (row["route"], row["reason"]) == ("legacy", "stage_out")


def test_a_rollout_from_one_canary_to_everyone_with_kill_switches(cli: Cli) -> None:
    assert cli.run("canary", "add", "acme", "--reason", "OPS-1 low-risk customer").exit_code == 0
    assert cli.routes()["acme"] == ("new", "canary")

    for percent in ("5", "25", "100"):
        token, plan = _token(cli, percent)
        before = cli.routes()
        applied = cli.run("stage", percent, "--apply", token, "--reason", f"OPS-2 to {percent}%")
        assert applied.exit_code == 0, applied.output
        after = cli.routes()
        changed = sorted(c for c in after if after[c][0] != before[c][0])
        assert changed == sorted(plan["to_new"] + plan["to_legacy"]), percent

    routes = cli.routes()
    assert routes["umbrella"] == ("legacy", "assessment_needs_idp_change")
    assert {c for c, (route, _) in routes.items() if route == "new"} == {
        "acme", "globex", "initech", "hooli", "piedpiper"
    }  # fmt: skip

    assert cli.run("disable", "globex", "--reason", "OPS-3 errors at globex").exit_code == 0
    assert cli.routes()["globex"] == ("legacy", "override_off")
    assert cli.run("kill", "--all", "--reason", "OPS-4 incident").exit_code == 0
    assert {route for route, _ in cli.routes().values()} == {"legacy"}
    assert cli.run("unkill", "--all", "--reason", "OPS-4 resolved").exit_code == 0
    assert cli.routes()["acme"] == ("new", "canary")

    history = cli.json("history")
    assert [r["action"] for r in history] == [
        "unkill_all", "kill_all", "disable", "stage", "stage", "stage", "canary_add"
    ]  # fmt: skip
    assert [r["version"] for r in history] == [7, 6, 5, 4, 3, 2, 1]
    assert {r["actor"] for r in history} == {ACTOR}
    assert history[3]["before"] == {"stage_percent": 25.0}
    assert history[3]["after"] == {"stage_percent": 100.0}
    assert history[4]["reason"] == "OPS-2 to 25%"
    table = cli.run("history", "--limit", "2")
    assert table.exit_code == 0
    assert "kill_all: True -> False" in table.stdout and "OPS-4 resolved" in table.stdout
    assert "canary_add" not in table.stdout


def test_apply_with_a_stale_preview_token_is_refused_and_writes_nothing(cli: Cli) -> None:
    token, _ = _token(cli, "25")
    assert cli.run("enable", "hooli", "--reason", "meanwhile, another SRE").exit_code == 0

    stale = cli.run("stage", "25", "--apply", token, "--reason", "from an old preview")

    assert stale.exit_code == ExitCode.CONFLICT
    assert "state changed since the preview (version 0 -> 1)" in stale.stderr
    assert cli.json("status")["state"]["stage_percent"] == 0.0
    other_percent, _ = _token(cli, "30")
    wrong = cli.run("stage", "25", "--apply", other_percent, "--reason", "r")
    assert wrong.exit_code == ExitCode.CONFLICT
    assert "plan differs" in wrong.stderr
    assert cli.run("stage", "25", "--apply", "nonsense", "--reason", "r").exit_code == 2
    fresh, _ = _token(cli, "25")
    assert cli.run("stage", "25", "--apply", fresh, "--reason", "r").exit_code == 0


def test_preview_token_goes_stale_when_the_connection_map_changes_who_moves(
    cli: Cli, tmp_path: Path
) -> None:
    token, plan = _token(cli, "100")
    assert "umbrella" not in plan["to_new"]
    connections = tmp_path / "connections.yaml"
    # umbrella's assessment is revised: at 100 % it would now move too, unlike the preview.
    connections.write_text(connections.read_text().replace("needs_idp_change", "transparent"))

    result = cli.run("stage", "100", "--apply", token, "--reason", "r")

    assert result.exit_code == ExitCode.CONFLICT, result.output
    assert "plan differs" in result.stderr
    assert cli.json("status")["state"]["stage_percent"] == 0.0


def test_preview_prints_the_movers_the_held_and_the_apply_command(cli: Cli) -> None:
    result = cli.run("stage", "100", "--preview")

    assert result.exit_code == 0, result.output
    assert "would move to the new provider (5): acme, globex, hooli, initech, piedpiper" in (
        result.stdout
    )
    assert "kept on legacy by their assessment (1): umbrella" in result.stdout
    token, _ = _token(cli, "100")
    assert f"authswitch flags stage 100 --apply {token}" in result.stdout
    assert cli.json("status")["state"]["version"] == 0  # a preview writes nothing


def test_a_connection_that_cannot_move_is_refused_and_the_cli_says_why(cli: Cli) -> None:
    refused = cli.run("enable", "umbrella", "--reason", "try")

    assert refused.exit_code == ExitCode.REFUSED
    assert "stays on legacy whatever the flags say" in refused.stderr
    assert "assessment_needs_idp_change" in refused.stderr
    assert cli.run("canary", "add", "umbrella", "--reason", "r").exit_code == ExitCode.REFUSED
    forced = cli.run("enable", "umbrella", "--reason", "pre-stage", "--force")
    assert forced.exit_code == 0
    assert "umbrella now goes to legacy (assessment_needs_idp_change)" in forced.stdout
    assert cli.routes()["umbrella"] == ("legacy", "assessment_needs_idp_change")


def test_an_unknown_connection_is_refused_unless_forced(cli: Cli) -> None:
    typo = cli.run("disable", "acmee", "--reason", "kill acme")

    assert typo.exit_code == ExitCode.REFUSED
    assert "not in the connection map" in typo.stderr
    assert cli.json("history") == []
    assert cli.run("disable", "acmee", "--reason", "r", "--force").exit_code == 0


def test_usage_errors_exit_2_and_write_nothing(cli: Cli) -> None:
    no_actor = cli.run("kill", "--all", "--reason", "r", actor=None)
    assert no_actor.exit_code == ExitCode.USAGE
    assert "AUTHSWITCH_ACTOR" in no_actor.stderr
    assert cli.run("kill", "--all").exit_code == 2  # --reason is required
    assert cli.run("kill", "--reason", "r").exit_code == 2  # --all is required
    assert cli.run("stage", "25", "--reason", "r").exit_code == 2  # --preview or --apply
    assert cli.run("stage", "250", "--preview").exit_code == 2
    assert cli.run("stage", "12.345", "--preview").exit_code == 2
    assert cli.run("enable", "acme", "--reason", "two\nlines").exit_code == 2
    assert cli.json("history") == []


def test_a_change_that_is_already_in_force_writes_nothing(cli: Cli) -> None:
    assert cli.run("enable", "acme", "--reason", "r").exit_code == 0

    again = cli.json("enable", "acme", "--reason", "r")

    assert again == {
        "changed": False,
        "version": 1,
        "effect": {"route": "new", "reason": "override_on"},
    }
    assert len(cli.json("history")) == 1


def test_json_errors_are_machine_readable(cli: Cli) -> None:
    result = cli.run("enable", "umbrella", "--reason", "r", "--json")

    assert result.exit_code == ExitCode.REFUSED
    assert json.loads(result.stdout) == {
        "error": "not_migratable",
        "message": json.loads(result.stdout)["message"],
        "exit_code": 5,
    }


def test_file_backend_writes_the_file_the_proxy_watches(tmp_path: Path) -> None:
    config = write_proxy_files(tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9")
    cli = Cli(config, "file")

    assert cli.run("disable", "initech", "--reason", "r").exit_code == 0

    assert load_rollout_state(tmp_path / "flags.yaml").overrides == {"initech": "off"}
    assert (tmp_path / "flags.audit.jsonl").read_text().count("\n") == 1


def test_redis_down_exits_3_quickly_and_never_prints_the_password(tmp_path: Path) -> None:
    url = f"redis://:hunter2-SEEKRIT@127.0.0.1:{free_port()}/0"
    config = write_proxy_files(
        tmp_path,
        "http://127.0.0.1:9",
        "http://127.0.0.1:9",
        flags={"backend": "redis", "redis": {"url": url}},
    )
    cli = Cli(config, "redis")

    for args in (("status",), ("kill", "--all", "--reason", "r"), ("history",)):
        result = cli.run(*args)
        assert result.exit_code == ExitCode.BACKEND_UNAVAILABLE, result.output
        assert "Connection refused" in result.stderr
        assert "hunter2" not in result.output


def test_a_broken_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    config = write_proxy_files(
        tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9", flags={"backend": "redis",
        "redis": {"key_prefix": "has space"}},
    )  # fmt: skip

    result = Cli(config, "redis").run("status")

    assert result.exit_code == ExitCode.USAGE
    assert "flags.redis.key_prefix" in result.stderr


def test_with_the_map_in_redis_ids_are_checked_against_the_pushed_map(
    tmp_path: Path,
    shared_redis: RedisTarget,  # noqa: F811
) -> None:
    """Not against a map file the replicas don't read."""
    map_redis = {"url": shared_redis.url, "key_prefix": shared_redis.prefix}
    config = write_proxy_files(
        tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9", connection_map_redis=map_redis
    )
    cli = Cli(config, "file")
    nothing_pushed = cli.run("enable", "acme", "--reason", "r")
    assert nothing_pushed.exit_code == ExitCode.USAGE
    assert "no connection map in" in nothing_pushed.stderr
    assert "connections push" in nothing_pushed.stderr

    # The pushed map knows only "newco"; the file next to the config still lists acme.
    document = read_connection_map_document(tmp_path / "connections.yaml")
    newco = document.connections[0].model_copy(update={"id": "newco"})
    store = RedisMapStore(shared_redis.client(), MapKeys(shared_redis.prefix))
    store.push(
        ConnectionMapDocument(version=1, connections=(newco,)),
        expected_version=None,
        actor="a",
        reason="r",
    )
    store.close()

    acme = cli.run("disable", "acme", "--reason", "kill acme")
    assert acme.exit_code == ExitCode.REFUSED, acme.output
    assert f"key prefix {shared_redis.prefix!r} in Redis" in acme.stderr
    assert cli.run("disable", "newco", "--reason", "kill newco").exit_code == 0
    assert [row["id"] for row in cli.json("status")["connections"]] == ["newco"]


def _redis_cli(tmp_path: Path, target: RedisTarget) -> Cli:
    flags = {"backend": "redis", "redis": {"url": target.url, "key_prefix": target.prefix}}
    config = write_proxy_files(tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9", flags=flags)
    return Cli(config, "redis")


def test_after_redis_lost_its_data_a_write_is_refused_until_the_store_is_initialised(
    tmp_path: Path,
    shared_redis: RedisTarget,  # noqa: F811
) -> None:
    cli = _redis_cli(tmp_path, shared_redis)
    for connection in ("acme", "globex"):
        assert cli.run("enable", connection, "--reason", "OPS-1 move").exit_code == 0
    replica = RedisFlagProvider(shared_redis.url, key_prefix=shared_redis.prefix)
    replica.initialize(EvaluationContext())
    try:
        assert replica.state.version == 2
        client = shared_redis.client()
        keys = list(client.scan_iter(match=f"{shared_redis.prefix}:*"))
        assert client.delete(*keys) >= 3  # doc, version, audit: what a Redis without data has
        replica.sync_now()  # the replica's resync finds the doc gone and keeps version 2

        refused = cli.run("disable", "hooli", "--reason", "OPS-2 errors at hooli")
        assert refused.exit_code == ExitCode.REFUSED, refused.output
        assert "the rollout state is missing, but replicas were serving version 2" in refused.stderr
        assert "initialise-empty-store" in refused.stderr
        assert client.get(f"{shared_redis.prefix}:flags:doc") is None, "nothing was written"
        assert replica.state.overrides == {"acme": "on", "globex": "on"}

        init = cli.json("initialise-empty-store", "--reason", "OPS-3 Redis lost its data")
        assert init["version"] == 3
        assert init["record"]["action"] == "initialise_empty_store"
        assert init["record"]["actor"] == ACTOR
        assert init["record"]["reason"] == "OPS-3 Redis lost its data"
        assert init["record"]["before"] == {"replica_version": 2}
        again = cli.run("initialise-empty-store", "--reason", "twice")
        assert again.exit_code == ExitCode.REFUSED and "not an empty store" in again.stderr

        assert cli.run("disable", "hooli", "--reason", "OPS-2 errors at hooli").exit_code == 0
        assert [r["action"] for r in cli.json("history")] == ["disable", "initialise_empty_store"]
        replica.sync_now()
        assert replica.state.version == 4
        assert replica.state.overrides == {"hooli": "off"}
    finally:
        replica.shutdown()


def test_a_store_that_was_never_served_is_written_without_initialising(
    tmp_path: Path,
    shared_redis: RedisTarget,  # noqa: F811
) -> None:
    # No replica ever served a version: an empty store is a new deployment, not a lost one.
    assert (
        _redis_cli(tmp_path, shared_redis).run("enable", "acme", "--reason", "first").exit_code == 0
    )
