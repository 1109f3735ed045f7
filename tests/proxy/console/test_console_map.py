"""The console's Map page over real HTTP against a real, password-protected Redis and a running
proxy that follows the pushed map: the file's diff and the connections it would move, a push
previewed, confirmed and applied that the proxy then routes, a rollback through the same gate,
roles, CSRF, stale previews, the audit trail, and never the Redis password on any page."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from connection_map import read_connection_map_document
from flags import RolloutState, write_rollout_state
from proxy.app import AuthSwitch
from proxy.config import Config, load_config
from proxy.console.app import build_console_app
from proxy.demo.loopback_server import LoopbackServer
from proxy.map_backend import open_map_store
from tests.flags.redis_support import PrivateRedis, wait_until
from tests.proxy.console.console_env import (
    OPERATOR,
    VIEWER,
    Browserless,
    ConsoleEnv,
    hidden,
    running_console,
    trusted_header_console,
    write_console_files,
)

PASSWORD = "map-" + secrets.token_hex(12)


@dataclass
class MapEnv:
    config: Config
    dir: Path
    proxy: LoopbackServer
    console: LoopbackServer
    redis: PrivateRedis


def as_person(url: str, email: str) -> Browserless:
    return Browserless(url, {"x-forwarded-email": email, "x-forwarded-user": email.split("@")[0]})


def route_of(env: MapEnv, connection_id: str) -> str:
    answer = httpx.get(f"{env.proxy.url}/oidc/{connection_id}/callback?code=c&state=s", timeout=5)
    return "new" if answer.status_code == 302 else "legacy"


def live_version(env: MapEnv) -> int | None:
    store = open_map_store(env.config, min_timeout=1.0)
    try:
        return store.version()
    finally:
        store.close()


def add_to_file(env: MapEnv, connection_id: str) -> None:
    """One more transparent OIDC connection in the map file, as an import adds it."""
    map_file = env.dir / "connections.yaml"
    document = yaml.safe_load(map_file.read_text())
    document["version"] += 1
    document["connections"].append(
        {
            "id": connection_id,
            "protocol": "oidc",
            "assessment": "transparent",
            "new_provider": {"url": f"https://new.example/{connection_id}/cb", "mode": "redirect"},
        }
    )
    map_file.write_text(yaml.safe_dump(document))


@contextmanager
def map_in_redis(
    directory: Path, providers: dict[str, LoopbackServer], console: dict[str, Any] | None = None
) -> Iterator[MapEnv]:
    """Stage 100 %, map version 1 pushed to a Redis that needs a password, the proxy following
    it and the console beside it (trusted-header sign-in unless `console` says otherwise)."""
    server = PrivateRedis(directory).start()
    try:
        server.client().config_set("requirepass", PASSWORD)
        (directory / "redis-password").write_text(PASSWORD)
        path = write_console_files(
            directory,
            providers["legacy"].url,
            providers["new"].url,
            console or trusted_header_console(),
        )
        document = yaml.safe_load(path.read_text())
        document["connection_map_redis"] = {
            "url": server.url,
            "password_file": "redis-password",
            "resync_seconds": 0.5,
            "history": 5,
        }
        path.write_text(yaml.safe_dump(document))
        write_rollout_state(directory / "flags.yaml", RolloutState(version=1, stage_percent=100))
        config = load_config(path)
        store = open_map_store(config, min_timeout=1.0)
        store.push(
            read_connection_map_document(config.connection_map),
            expected_version=None,
            actor="deploy-hook",
            reason="first map",
        )
        store.close()
        with (
            LoopbackServer(AuthSwitch(config), name="authswitch") as proxy,
            LoopbackServer(build_console_app(config), name="console") as served,
        ):
            env = MapEnv(config, directory, proxy, served, server)
            wait_until(lambda: route_of(env, "hooli") == "new", deadline=30)
            yield env
    finally:
        server.stop()


@pytest.fixture
def env(tmp_path: Path, providers: dict[str, LoopbackServer]) -> Iterator[MapEnv]:
    with map_in_redis(tmp_path, providers) as running:
        yield running


def confirm_fields(page: str, reason: str) -> dict[str, str]:
    return {
        "csrf_token": hidden(page, "csrf_token"),
        "change": hidden(page, "change"),
        "version": hidden(page, "version"),
        "token": hidden(page, "token"),
        "reason": reason,
        "confirm": "yes",
    }


def test_an_operator_pushes_the_file_and_the_running_proxy_routes_the_new_connection(
    env: MapEnv,
) -> None:
    add_to_file(env, "newco")
    viewer, operator = as_person(env.console.url, VIEWER), as_person(env.console.url, OPERATOR)
    pages: list[str] = []

    shown = viewer.get("/console/map")
    pages.append(shown.text)
    assert shown.status_code == 200, shown.text
    assert "Live map: version 1, from redis" in shown.text
    assert "Added: <strong>newco</strong>" in shown.text
    assert "Route changes at stage 100% (flags version 1): 1" in shown.text
    assert "<strong>newco</strong>: legacy (not_in_map) &rarr; new (stage_in)" in shown.text
    assert "Preview the push" not in shown.text, "a viewer is offered no action"
    assert "deploy-hook" in shown.text and "first map" in shown.text  # the history
    assert viewer.get("/console/map/preview?change=push").status_code == 403

    preview = operator.get("/console/map/preview?change=push")
    pages.append(preview.text)
    assert preview.status_code == 200, preview.text
    assert "I confirm: this moves newco" in preview.text
    fields = confirm_fields(preview.text, "import newco")

    viewer_post = viewer.post("/console/map/apply", data=fields)
    assert viewer_post.status_code == 403
    forged = operator.post("/console/map/apply", data={**fields, "csrf_token": "forged"})
    assert forged.status_code == 403 and "CSRF" in forged.text
    # The flags change between the preview and the apply: that preview is stale.
    write_rollout_state(env.dir / "flags.yaml", RolloutState(version=2, stage_percent=100))
    stale = operator.post("/console/map/apply", data=fields)
    pages.append(stale.text)
    assert stale.status_code == 409 and "is stale" in stale.text, stale.text
    assert live_version(env) == 1 and route_of(env, "newco") == "legacy", "nothing was written"

    fresh = operator.get("/console/map/preview?change=push")
    applied = operator.post("/console/map/apply", data=confirm_fields(fresh.text, "import newco"))
    pages.append(applied.text)
    assert applied.status_code == 200, applied.text
    assert f"Pushed version 2 (7 connections) by {OPERATOR}" in applied.text
    assert "Callbacks now routed elsewhere: newco." in applied.text
    assert live_version(env) == 2
    wait_until(lambda: route_of(env, "newco") == "new", deadline=10)

    after = viewer.get("/console/map")
    pages.append(after.text)
    assert "Live map: version 2" in after.text
    assert "No change: the file holds what is live." in after.text
    audit = viewer.get("/console/audit?kind=map")
    pages.append(audit.text)
    rows = re.findall(
        r'<tr data-kind="(\w+)"><td>\w+</td><td>(\d+)</td><td>[^<]*</td>'
        r"<td>([^<]*)</td><td>(\w+)</td>",
        audit.text,
    )
    assert rows == [("map", "2", OPERATOR, "push"), ("map", "1", "deploy-hook", "push")]
    assert "import newco" in audit.text
    export = viewer.get("/console/api/audit.jsonl?kind=map&actor=ops")
    lines = [json.loads(line) for line in export.text.splitlines()]
    assert [(x["kind"], x["version"], x["actor"], x["reason"]) for x in lines] == [
        ("map", 2, OPERATOR, "import newco")
    ]
    pages.append(export.text)
    for page in pages:
        assert PASSWORD not in page


def test_a_rollback_to_a_kept_version_is_previewed_and_the_proxy_follows(env: MapEnv) -> None:
    add_to_file(env, "newco")
    operator = as_person(env.console.url, OPERATOR)
    first = operator.get("/console/map/preview?change=push")
    assert (
        operator.post(
            "/console/map/apply", data=confirm_fields(first.text, "import newco")
        ).status_code
        == 200
    )
    wait_until(lambda: route_of(env, "newco") == "new", deadline=10)

    history = operator.get("/console/map").text
    assert "Preview rollback" in history
    preview = operator.get("/console/map/preview?change=rollback&version=1")
    assert preview.status_code == 200, preview.text
    assert "Removed: <strong>newco</strong>" in preview.text
    assert "<strong>newco</strong>: new (stage_in) &rarr; legacy (not_in_map)" in preview.text
    no_reason = {**confirm_fields(preview.text, ""), "reason": "  "}
    assert operator.post("/console/map/apply", data=no_reason).status_code == 400
    unconfirmed = {**confirm_fields(preview.text, "newco breaks logins"), "confirm": ""}
    assert operator.post("/console/map/apply", data=unconfirmed).status_code == 400
    control = confirm_fields(preview.text, "bad\x00reason")
    assert operator.post("/console/map/apply", data=control).status_code == 400
    assert live_version(env) == 2
    rolled = operator.post(
        "/console/map/apply", data=confirm_fields(preview.text, "newco breaks logins")
    )
    assert rolled.status_code == 200, rolled.text
    assert "Pushed version 3" in rolled.text and "routed elsewhere: newco" in rolled.text
    wait_until(lambda: route_of(env, "newco") == "legacy", deadline=10)
    page = operator.get("/console/map").text
    assert "rollback to 1" in page and "newco breaks logins" in page
    assert operator.get("/console/map/preview?change=rollback&version=99").status_code == 404


def test_redis_down_is_a_clear_answer_without_the_password_and_the_audit_keeps_flags(
    env: MapEnv,
) -> None:
    env.redis.stop()
    viewer = as_person(env.console.url, VIEWER)
    page = viewer.get("/console/map")
    assert page.status_code == 503
    assert "redis" in page.text and "127.0.0.1" in page.text
    audit = viewer.get("/console/audit")
    assert audit.status_code == 200, "flag changes are still listed"
    assert "map pushes not shown" in audit.text
    export = viewer.get("/console/api/audit.jsonl")
    assert export.status_code == 503, "an export without the map pushes would mislead"
    for text in (page.text, audit.text, export.text):
        assert PASSWORD not in text


@pytest.fixture
def file_env(tmp_path: Path, providers: dict[str, LoopbackServer]) -> Iterator[ConsoleEnv]:
    with running_console(tmp_path, providers, trusted_header_console()) as running:
        yield running


def test_with_the_map_as_a_file_the_page_shows_its_version_and_pushes_need_redis(
    file_env: ConsoleEnv,
) -> None:
    operator = as_person(file_env.url, OPERATOR)
    page = operator.get("/console/map")
    assert page.status_code == 200
    assert "Live map: version 1, from the file" in page.text
    assert "pushes, history and rollbacks need Redis" in page.text
    refused = operator.get("/console/map/preview?change=push")
    assert refused.status_code == 409 and "pushes need Redis" in refused.text
    assert operator.get("/console/map/preview?change=other").status_code == 400
