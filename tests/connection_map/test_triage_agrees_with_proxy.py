"""Triage's routing verdict equals what a running proxy does with each connection's callback.

Hypothesis generates connection maps (SAML and OIDC, shared and missing IdP entity ids,
RelayState prefixes, own OIDC callback paths, legacy URLs on every kind of route and on none)
and route tables (every strategy). For each connection, triage says "the proxy recognises it"
(no routing reason) or names why not; an in-process AuthSwitch then receives the callback the
connection's IdP would send (a minted SAML response with its Issuer and RelayState, or an OIDC
`code` + `state` of a flow started through the flow-start endpoint) and its accounting says which
connection it took the callback for. The two must agree for every connection.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connection_map import Connection, Route, TriageSettings, triage_connections
from flags import RolloutState, write_rollout_state
from proxy.app import AuthSwitch
from proxy.config import load_config
from proxy.demo.idp import DemoIdP
from proxy.demo.keys import generate_keypair
from proxy.demo.loopback_server import LoopbackServer
from proxy.ops import metrics

LEGACY_PUBLIC = "https://login.legacy.example"
SP_ENTITY_ID = "https://login.legacy.example/sp"
SECRET = "property-flow-secret-0123456789"
ROUTING_CODES = frozenset(
    {"route_cannot_identify", "shared_idp_entity_id", "legacy_url_not_routed", "legacy_url_unknown"}
)
IDS = ("acme", "globex", "hooli", "initech", "piper")
ISSUERS = ("https://idp-one.example/saml", "https://idp-two.example/saml")
# The Issuer a real IdP sends when the map has no entity id for it: one the map doesn't know.
UNLISTED_ISSUER = "https://idp-not-in-the-map.example/saml"

# Every route a table may hold, by path; the strategies each may list.
SAML_ROUTES: dict[str, list[tuple[str, ...]]] = {
    "/sso/{connection}/acs": [("path",), ("path", "saml_issuer"), ("saml_issuer",)],
    "/login/callback": [
        ("saml_issuer",),
        ("relay_state_prefix",),
        ("relay_state_prefix", "saml_issuer"),
        ("query", "saml_issuer"),
    ],
    "/saml/acs": [("query",), ("query", "relay_state_prefix")],
}
OIDC_ROUTES: dict[str, list[tuple[str, ...]]] = {
    "/oidc/{connection}/callback": [("path",), ("path", "oidc_state")],
    "/oidc/callback": [("oidc_state",), ("query",), ("query", "oidc_state")],
    "/oidc-callback/{slug}": [("callback_path",), ("callback_path", "oidc_state")],
}
# The legacy callback URL a connection's IdP uses ({id}: the connection's id).
SAML_URLS = (
    "/sso/{id}/acs",
    "/login/callback",
    "/login/callback?connection={id}",
    "/saml/acs?connection={id}",
    "/unrouted/acs",
)
OIDC_URLS = (
    "/oidc/{id}/callback",
    "/oidc/callback",
    "/oidc/callback?connection={id}",
    "/oidc-callback/{id}-prod",
    "/oidc-callback/shared",
    "/elsewhere/callback",
)


@st.composite
def route_tables(draw: st.DrawFn) -> list[dict[str, Any]]:
    routes = []
    for path, choices in (*SAML_ROUTES.items(), *OIDC_ROUTES.items()):
        identify = draw(st.none() | st.sampled_from(choices))
        if identify is not None:
            protocol = "saml" if path in SAML_ROUTES else "oidc"
            routes.append({"path": path, "protocol": protocol, "identify": list(identify)})
    return routes


@st.composite
def connection_maps(draw: st.DrawFn) -> list[dict[str, Any]]:
    ids = draw(st.lists(st.sampled_from(IDS), min_size=1, max_size=4, unique=True))
    entries = []
    own_paths: set[str] = set()  # a callback path belongs to one connection (the map says so)
    for cid in ids:
        protocol = draw(st.sampled_from(("saml", "oidc")))
        url = draw(st.sampled_from(SAML_URLS if protocol == "saml" else OIDC_URLS))
        entry: dict[str, Any] = {
            "id": cid,
            "protocol": protocol,
            "legacy": {"callback_url": LEGACY_PUBLIC + url.format(id=cid)},
        }
        if protocol == "saml":
            entry["saml"] = {"idp_entity_id": draw(st.sampled_from((*ISSUERS, None)))}
            if draw(st.booleans()):
                entry["relay_state_prefix"] = f"{cid}:"
        else:
            entry["oidc"] = {"client_id": f"client-{cid}"}
            path = urlsplit(entry["legacy"]["callback_url"]).path
            if path.startswith("/oidc-callback/") and path not in own_paths and draw(st.booleans()):
                entry["oidc"]["callback_path"] = path
                own_paths.add(path)
        entries.append(entry)
    return entries


@pytest.fixture(scope="module")
def legacy() -> Iterator[LoopbackServer]:
    async def answer(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"legacy"})

    with LoopbackServer(answer, name="legacy-answers") as server:
        yield server


@pytest.fixture(scope="module")
def idp_keys() -> Any:
    return generate_keypair("property-idp")


def triage_verdicts(entries: list[dict[str, Any]], routes: list[dict[str, Any]]) -> dict[str, bool]:
    """Per connection: True when triage finds no routing reason (the proxy recognises it)."""
    connections = [Connection.model_validate(entry) for entry in entries]
    table = [Route.model_validate(route) for route in routes]
    results = triage_connections(connections, TriageSettings(routes=table))
    return {
        cid: not any(reason.code in ROUTING_CODES for reason in result.reasons)
        for cid, result in results.items()
    }


def write_config(
    directory: Path, legacy_url: str, entries: list[dict[str, Any]], routes: list[dict[str, Any]]
) -> Path:
    (directory / "connections.yaml").write_text(
        yaml.safe_dump({"version": 1, "connections": entries})
    )
    write_rollout_state(directory / "flags.yaml", RolloutState())
    (directory / "flow-secret").write_text(SECRET + "\n")
    document = {
        "legacy": {"url": legacy_url},
        "connection_map": "connections.yaml",
        "flags": {"file": "flags.yaml"},
        "routes": routes,
        "flow_affinity": {"enabled": True, "secret_file": "flow-secret", "store": "memory"},
        "timeouts": {"connect_seconds": 1, "read_seconds": 5},
    }
    path = directory / "authswitch.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _counted() -> dict[str, float]:
    """Requests counted so far: callbacks by the connection label the proxy gave them, and
    requests no route serves (passed through to legacy) as "(not a callback)"."""
    totals: dict[str, float] = {}
    for counter, label_of in (
        (metrics.CALLBACKS, lambda labels: labels["connection"]),
        (metrics.PASSTHROUGH, lambda labels: "(not a callback)"),
    ):
        for family in counter.collect():
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    label = label_of(sample.labels)
                    totals[label] = totals.get(label, 0.0) + sample.value
    return totals


async def proxy_verdicts(
    app: AuthSwitch, entries: list[dict[str, Any]], idp: DemoIdP
) -> dict[str, bool]:
    """Per connection: True when the running proxy takes its callback for that connection."""
    verdicts: dict[str, bool] = {}
    await app.startup()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=LEGACY_PUBLIC) as client:
            for entry in entries:
                before = _counted()
                response = await send_callback(client, entry, idp)
                assert response.status_code < 500, response.text
                after = _counted()
                changed = {k for k, v in after.items() if v != before.get(k, 0.0)}
                assert len(changed) == 1, changed  # every request is accounted for, once
                verdicts[entry["id"]] = changed == {entry["id"]}
    finally:
        await app.shutdown()
    return verdicts


async def send_callback(
    client: httpx.AsyncClient, entry: dict[str, Any], idp: DemoIdP
) -> httpx.Response:
    """The callback the connection's IdP sends to its legacy URL."""
    url = entry["legacy"]["callback_url"]
    prefix = entry.get("relay_state_prefix")
    if entry["protocol"] == "saml":
        issuer = entry["saml"]["idp_entity_id"] or UNLISTED_ISSUER
        sender = DemoIdP(issuer, idp.keys)
        body = sender.mint_form_body(
            destination=url,
            audience=SP_ENTITY_ID,
            name_id="alice@example.com",
            relay_state=(prefix or "") + "/app/home",
        )
        form = {"content-type": "application/x-www-form-urlencoded"}
        return await client.post(url, content=body, headers=form)
    state = secrets.token_urlsafe(16)
    started = await client.get(
        "/_authswitch/flows/start",
        params={"connection": entry["id"], "flow": state},
        headers={"x-authswitch-secret": SECRET},
    )
    assert started.status_code == 200, started.text
    separator = "&" if "?" in url else "?"
    return await client.get(f"{url}{separator}code=c0de&state={state}")


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(entries=connection_maps(), routes=route_tables())
def test_triage_verdict_equals_what_the_proxy_does(
    entries: list[dict[str, Any]],
    routes: list[dict[str, Any]],
    legacy: LoopbackServer,
    idp_keys: Any,
) -> None:
    expected = triage_verdicts(entries, routes)
    if not routes:
        return  # the proxy refuses a config without routes; triage has nothing to compare
    with TemporaryDirectory() as directory:
        config = load_config(write_config(Path(directory), legacy.url, entries, routes))
        app = AuthSwitch(config)
        idp = DemoIdP(ISSUERS[0], idp_keys)
        observed = asyncio.run(proxy_verdicts(app, entries, idp))
    assert observed == expected
