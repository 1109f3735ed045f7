"""Flow affinity end to end: two replicas, one real Redis, signed SAML and OIDC over loopback.

The application asks replica A where to start a login; the flag flips; the callback arrives at
replica B and still goes where the login started. Callbacks of flows nobody recorded follow the
flag, so each test also shows the flip itself took effect.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from flags import RedisKeys, RedisRolloutStore, RolloutState, write_rollout_state
from flags.redis.keys import connect
from proxy.app import AuthSwitch
from proxy.config import load_config
from proxy.demo.idp import DemoIdP
from proxy.demo.loopback_server import LoopbackServer
from proxy.flow_store import RedisFlowStore, flow_key
from proxy.ops import metrics
from tests.conftest import LEGACY_SP_ENTITY_ID, PUBLIC_ACS, write_proxy_files
from tests.flags.redis_support import (
    RedisTarget,
    shared_redis,  # noqa: F401  (registers the fixture for this module)
    wait_until,
)

SECRET = "flow-secret-0123456789abcdef"
FORM = {"content-type": "application/x-www-form-urlencoded"}
START = "/_authswitch/flows/start"


@dataclass
class Replicas:
    urls: list[str]
    apps: list[AuthSwitch]
    flags: RedisRolloutStore
    redis: RedisTarget

    def set_flags(self, **changes: Any) -> None:
        """Write the rollout state as an SRE would; wait until both replicas have it."""
        current = self.flags.read()
        wanted = current.model_copy(update=changes)
        self.flags.write(current.version, wanted, actor="sre", reason="OPS-9 test", action="set")
        for app in self.apps:
            app.flag_provider.sync_now()  # type: ignore[attr-defined]

    def start_flow(self, replica: int, connection: str, flow: str) -> dict[str, Any]:
        response = httpx.get(
            self.urls[replica] + START,
            params={"connection": connection, "flow": flow},
            headers={"x-authswitch-secret": SECRET},
            timeout=5,
        )
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        answer: dict[str, Any] = response.json()
        return answer

    def seen_by(self, replica: int, flow: str) -> bool:
        store = self.apps[replica]._flows
        assert store is not None
        return store.memory.get(flow_key(flow)) is not None


def affinity_config(directory: Path, legacy: str, new: str, **extra: Any) -> Path:
    (directory / "flow-secret").write_text(SECRET + "\n")
    routes = [
        {"path": "/login/callback", "protocol": "saml", "identify": ["saml_issuer"]},
        {"path": "/oidc/{connection}/callback", "protocol": "oidc", "identify": ["path"]},
        {"path": "/oidc/callback", "protocol": "oidc", "identify": ["oidc_state"]},
    ]
    flow_affinity = {"enabled": True, "secret_file": "flow-secret", **extra.pop("flows", {})}
    return write_proxy_files(
        directory, legacy, new, routes=routes, flow_affinity=flow_affinity, **extra
    )


@pytest.fixture
def replicas(
    tmp_path: Path,
    providers: dict[str, LoopbackServer],
    shared_redis: RedisTarget,  # noqa: F811
) -> Iterator[Replicas]:
    flags = {
        "backend": "redis",
        "redis": {"url": shared_redis.url, "key_prefix": shared_redis.prefix},
    }
    apps, servers = [], []
    for number in (1, 2):
        directory = tmp_path / f"replica{number}"
        directory.mkdir()
        config = affinity_config(
            directory, providers["legacy"].url, providers["new"].url, flags=flags
        )
        app = AuthSwitch(load_config(config))
        apps.append(app)
        servers.append(LoopbackServer(app, name=f"authswitch-{number}").start())
    client = connect(shared_redis.url, socket_timeout=2, client_name="test")
    store = RedisRolloutStore(client, RedisKeys(shared_redis.prefix))
    try:
        yield Replicas([s.url for s in servers], apps, store, shared_redis)
    finally:
        with ThreadPoolExecutor() as pool:  # each waits for its listener threads to notice
            list(pool.map(LoopbackServer.stop, servers))
        client.close()


def saml_callback(url: str, idp: DemoIdP, in_response_to: str) -> httpx.Response:
    body = idp.mint_form_body(
        destination=PUBLIC_ACS,
        audience=LEGACY_SP_ENTITY_ID,
        name_id="alice@example.com",
        in_response_to=in_response_to,
        relay_state="/app/home",
    )
    return httpx.post(url + "/login/callback", content=body, headers=FORM, timeout=10)


def saml_landed(response: httpx.Response) -> str:
    """ "new" for the 307 towards the new provider, "legacy" for legacy's own answer."""
    if response.status_code == 307:
        return "new"
    assert response.status_code == 200, response.text
    assert response.json()["landed"] == "legacy"
    return "legacy"


def oidc_landed(url: str, path: str, state: str) -> str:
    query = urlencode({"code": "c0de-" + secrets.token_hex(4), "state": state})
    response = httpx.get(f"{url}{path}?{query}", timeout=10)
    if response.status_code == 302:
        return "new"
    assert response.status_code == 200, response.text
    return "legacy"


def _affinity_count() -> float:
    total = 0.0
    for family in metrics.CALLBACKS.collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels["reason"] == "flow_affinity":
                total += sample.value
    return total


@pytest.mark.parametrize(
    ("started", "flipped"),
    [({}, {"overrides": {"acme": "on"}}), ({"overrides": {"acme": "on"}}, {"overrides": {}})],
    ids=["legacy-then-flag-on", "new-then-flag-off"],
)
def test_a_saml_flow_keeps_the_provider_it_started_with_after_the_flag_flips(
    replicas: Replicas,
    idps: dict[str, DemoIdP],
    started: dict[str, Any],
    flipped: dict[str, Any],
) -> None:
    replicas.set_flags(**started)
    request_id = "_" + secrets.token_hex(16)  # the application's AuthnRequest ID
    answer = replicas.start_flow(0, "acme", request_id)
    began = answer["provider"]
    assert answer["recorded"] is True
    assert began == ("new" if started else "legacy")
    wait_until(lambda: replicas.seen_by(1, request_id), deadline=2)
    replicas.set_flags(**flipped)
    before = _affinity_count()

    # The other replica takes the callback: it learnt the flow through Redis.
    assert saml_landed(saml_callback(replicas.urls[1], idps["acme"], request_id)) == began
    wait_until(lambda: _affinity_count() == before + 1, deadline=2)  # counted after answering
    # A login nobody recorded (another AuthnRequest) follows the flipped flag.
    other = "_" + secrets.token_hex(16)
    expected_now = "legacy" if began == "new" else "new"
    assert saml_landed(saml_callback(replicas.urls[1], idps["acme"], other)) == expected_now


@pytest.mark.parametrize(
    ("started", "flipped"),
    [({}, {"canary": ("hooli",)}), ({"canary": ("hooli",)}, {"canary": ()})],
    ids=["legacy-then-flag-on", "new-then-flag-off"],
)
def test_an_oidc_flow_keeps_the_provider_it_started_with_after_the_flag_flips(
    replicas: Replicas, started: dict[str, Any], flipped: dict[str, Any]
) -> None:
    replicas.set_flags(**started)
    state = secrets.token_urlsafe(24)
    began = replicas.start_flow(1, "hooli", state)["provider"]
    assert began == ("new" if started else "legacy")
    wait_until(lambda: replicas.seen_by(0, state), deadline=2)
    replicas.set_flags(**flipped)

    assert oidc_landed(replicas.urls[0], "/oidc/hooli/callback", state) == began
    # Identified by its state alone: the route has no connection in it.
    assert oidc_landed(replicas.urls[0], "/oidc/callback", state) == began
    expected_now = "legacy" if began == "new" else "new"
    assert oidc_landed(replicas.urls[0], "/oidc/hooli/callback", "never-recorded") == expected_now


def test_kill_switch_stops_new_flows_but_lets_started_ones_finish_at_the_new_provider(
    replicas: Replicas,
) -> None:
    replicas.set_flags(overrides={"hooli": "on"})
    in_flight = secrets.token_urlsafe(24)
    assert replicas.start_flow(0, "hooli", in_flight)["provider"] == "new"
    wait_until(lambda: replicas.seen_by(1, in_flight), deadline=2)

    replicas.set_flags(kill_all=True)

    # Legacy never saw this state: sending the callback there would fail the login for sure.
    assert oidc_landed(replicas.urls[1], "/oidc/hooli/callback", in_flight) == "new"
    later = secrets.token_urlsafe(24)
    answer = replicas.start_flow(1, "hooli", later)
    assert (answer["provider"], answer["reason"]) == ("legacy", "kill_all")
    assert oidc_landed(replicas.urls[0], "/oidc/hooli/callback", later) == "legacy"


def test_a_flow_recorded_for_one_connection_does_not_steer_another(replicas: Replicas) -> None:
    replicas.set_flags(overrides={"hooli": "on"})
    state = secrets.token_urlsafe(24)
    assert replicas.start_flow(0, "hooli", state)["provider"] == "new"
    wait_until(lambda: replicas.seen_by(1, state), deadline=2)
    # piedpiper's flag is off: a state recorded for hooli must not move piedpiper's callback.
    assert oidc_landed(replicas.urls[1], "/oidc/piedpiper/callback", state) == "legacy"


def test_flow_ids_are_stored_hashed_and_never_logged(
    replicas: Replicas, captured_logs: pytest.LogCaptureFixture
) -> None:
    state = "leaky-" + secrets.token_urlsafe(24)
    replicas.start_flow(0, "hooli", state)
    assert oidc_landed(replicas.urls[1], "/oidc/hooli/callback", state) == "legacy"

    client = replicas.redis.client()
    keys = list(client.scan_iter(match=f"{replicas.redis.prefix}:flows:*"))
    assert [k.decode() for k in keys] == [f"{replicas.redis.prefix}:flows:{flow_key(state)}"]
    assert client.get(keys[0]) == b"legacy hooli"
    ttl_ms = client.pttl(keys[0])
    assert 590_000 < ttl_ms <= 600_000
    client.close()
    ours = [r for r in captured_logs.records if r.name.startswith(("authswitch", "proxy"))]
    assert [r for r in ours if r.getMessage() == "flow started"], "the flow start is logged"
    assert not [r for r in ours if state in r.getMessage() + str(r.__dict__)]


@pytest.mark.parametrize(
    ("method", "query", "headers", "status"),
    [
        ("GET", {"connection": "acme", "flow": "f1"}, {}, 401),
        ("GET", {"connection": "acme", "flow": "f1"}, {"x-authswitch-secret": "wrong"}, 401),
        ("GET", {"connection": "acme", "flow": "f1"}, {"x-authswitch-secret": SECRET + "x"}, 401),
        ("POST", {"connection": "acme", "flow": "f1"}, {"x-authswitch-secret": SECRET}, 405),
        ("GET", {"connection": "acme"}, {"x-authswitch-secret": SECRET}, 400),
        ("GET", {"flow": "f1"}, {"x-authswitch-secret": SECRET}, 400),
        ("GET", {"connection": "acme", "flow": "x" * 1025}, {"x-authswitch-secret": SECRET}, 400),
    ],
    ids=["no-secret", "wrong-secret", "longer-secret", "post", "no-flow", "no-connection", "long"],
)
def test_the_decision_endpoint_refuses_what_it_should(
    replicas: Replicas, method: str, query: dict[str, str], headers: dict[str, str], status: int
) -> None:
    response = httpx.request(
        method, replicas.urls[0] + START, params=query, headers=headers, timeout=5
    )
    assert response.status_code == status
    assert not replicas.seen_by(0, "f1")


def test_the_decision_endpoint_refuses_a_repeated_flow_parameter(replicas: Replicas) -> None:
    response = httpx.get(
        replicas.urls[0] + START + "?connection=acme&flow=a&flow=b",
        headers={"x-authswitch-secret": SECRET},
        timeout=5,
    )
    assert response.status_code == 400


def test_unknown_and_non_transparent_connections_start_at_legacy(replicas: Replicas) -> None:
    replicas.set_flags(stage_percent=100)
    assert replicas.start_flow(0, "nope", "f2") == {
        "provider": "legacy",
        "reason": "unknown_connection",
        "recorded": False,
    }
    answer = replicas.start_flow(0, "umbrella", "f3")  # assessment: needs_idp_change
    assert (answer["provider"], answer["reason"]) == ("legacy", "assessment_needs_idp_change")
    assert replicas.start_flow(0, "acme", "f4")["provider"] == "new"


def test_without_flow_affinity_the_endpoint_does_not_exist(
    tmp_path: Path, providers: dict[str, LoopbackServer]
) -> None:
    config = write_proxy_files(tmp_path, providers["legacy"].url, providers["new"].url)
    legacy = providers["legacy"].app.state.received  # type: ignore[union-attr]
    before = len(legacy)
    with LoopbackServer(AuthSwitch(load_config(config)), name="authswitch") as server:
        response = httpx.get(
            server.url + START,
            params={"connection": "acme", "flow": "f"},
            timeout=5,
        )
    # Not an endpoint here: the legacy host's own path, passed through.
    assert [r["path"] for r in legacy[before:]] == [START]
    assert "route" not in response.text


def test_in_process_store_serves_one_replica_without_redis(
    tmp_path: Path, providers: dict[str, LoopbackServer]
) -> None:
    config = affinity_config(
        tmp_path,
        providers["legacy"].url,
        providers["new"].url,
        flags={"file": "flags.yaml", "poll_interval_seconds": 0.1},
    )
    app = AuthSwitch(load_config(config))
    assert app._flows is not None and not isinstance(app._flows, RedisFlowStore)
    with LoopbackServer(app, name="authswitch") as server:
        state = secrets.token_urlsafe(24)
        response = httpx.get(
            server.url + START,
            params={"connection": "hooli", "flow": state},
            headers={"x-authswitch-secret": SECRET},
            timeout=5,
        )
        assert response.json()["provider"] == "legacy"
        write_rollout_state(tmp_path / "flags.yaml", RolloutState(version=1, canary=("hooli",)))
        app.flag_provider.reload_now()  # type: ignore[attr-defined]
        assert oidc_landed(server.url, "/oidc/callback", state) == "legacy"
        assert oidc_landed(server.url, "/oidc/hooli/callback", "fresh-state") == "new"
        # A state nobody recorded identifies nothing on a state-only route: legacy.
        assert oidc_landed(server.url, "/oidc/callback", "fresh-state") == "legacy"
