"""Identifying a callback by its RelayState prefix or by its OIDC state's flow record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connection_map import ConnectionMap, ConnectionMapDocument
from connection_map.routes import Identification, Outcome, identify_connection
from proxy.callback.intake import parse_fields
from proxy.config import ConfigError, FlowAffinity, Route, Strategy, parse_config
from proxy.flow_store import FlowRecord

CONNECTIONS = ConnectionMap.build(
    ConnectionMapDocument.model_validate(
        {
            "version": 1,
            "connections": [
                {
                    "id": "acme",
                    "protocol": "saml",
                    "saml": {"idp_entity_id": "https://idp.acme.example/saml"},
                    "relay_state_prefix": "acme:",
                },
                {"id": "globex", "protocol": "saml", "relay_state_prefix": "gx-"},
                {"id": "hooli", "protocol": "oidc"},
            ],
        }
    )
)
RELAY_ROUTE = Route.model_validate(
    {"path": "/login/callback", "protocol": "saml", "identify": ["relay_state_prefix"]}
)
RELAY_AND_ISSUER = Route.model_validate(
    {
        "path": "/login/callback",
        "protocol": "saml",
        "identify": ["relay_state_prefix", "saml_issuer"],
    }
)
STATE_ROUTE = Route.model_validate(
    {"path": "/oidc/callback", "protocol": "oidc", "identify": ["oidc_state"]}
)


def identify(
    route: Route,
    body: bytes = b"",
    *,
    query: bytes = b"",
    issuer: str | None = None,
    flow: FlowRecord | None = None,
) -> tuple[Outcome, str | None, Strategy | None]:
    fields = parse_fields(query, body, b"application/x-www-form-urlencoded", 64)
    result: Identification = identify_connection(
        route,
        {},
        fields.query,
        route.path,
        CONNECTIONS,
        issuer=issuer,
        relay_state=fields.get("RelayState"),
        flow_connection=flow.connection_id if flow is not None else None,
    )
    connection_id = result.connection.id if result.connection is not None else None
    return result.outcome, connection_id, result.strategy


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"RelayState=acme%3A%2Fhome", (Outcome.IDENTIFIED, "acme", Strategy.RELAY_STATE_PREFIX)),
        (b"RelayState=gx-123", (Outcome.IDENTIFIED, "globex", Strategy.RELAY_STATE_PREFIX)),
        # An ordinary return URL claims no connection: unidentified, not "unknown".
        (b"RelayState=https%3A%2F%2Fapp.example%2F", (Outcome.UNIDENTIFIED, None, None)),
        (b"SAMLResponse=x", (Outcome.UNIDENTIFIED, None, None)),
    ],
    ids=["acme", "globex", "return-url", "no-relay-state"],
)
def test_relay_state_prefix_identifies_the_connection(
    body: bytes, expected: tuple[Outcome, str | None, Strategy | None]
) -> None:
    assert identify(RELAY_ROUTE, body) == expected


def test_relay_state_prefix_and_issuer_must_agree() -> None:
    agree = identify(
        RELAY_AND_ISSUER, b"RelayState=acme%3Ax", issuer="https://idp.acme.example/saml"
    )
    assert agree == (Outcome.IDENTIFIED, "acme", Strategy.RELAY_STATE_PREFIX)
    disagree = identify(
        RELAY_AND_ISSUER, b"RelayState=gx-1", issuer="https://idp.acme.example/saml"
    )
    assert disagree[0] is Outcome.AMBIGUOUS


@pytest.mark.parametrize(
    ("flow", "expected"),
    [
        (FlowRecord("hooli", "new"), (Outcome.IDENTIFIED, "hooli", Strategy.OIDC_STATE)),
        (FlowRecord("hooli", "legacy"), (Outcome.IDENTIFIED, "hooli", Strategy.OIDC_STATE)),
        # The record names a connection the map no longer has.
        (FlowRecord("deleted", "new"), (Outcome.UNKNOWN, None, None)),
        (None, (Outcome.UNIDENTIFIED, None, None)),
    ],
    ids=["recorded-new", "recorded-legacy", "connection-gone", "no-record"],
)
def test_oidc_state_identifies_by_the_flow_record(
    flow: FlowRecord | None, expected: tuple[Outcome, str | None, Strategy | None]
) -> None:
    assert identify(STATE_ROUTE, query=b"code=c&state=s", flow=flow) == expected


def _config(routes: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "legacy": {"url": "http://127.0.0.1:9000"},
        "connection_map": "connections.yaml",
        "flags": {"file": "flags.yaml"},
        "routes": routes,
        **extra,
    }


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (
            _config([{"path": "/cb", "protocol": "oidc", "identify": ["relay_state_prefix"]}]),
            "strategy 'relay_state_prefix' only applies to saml routes",
        ),
        (
            _config([{"path": "/cb", "protocol": "saml", "identify": ["oidc_state"]}]),
            "strategy 'oidc_state' only applies to oidc routes",
        ),
        (
            _config([{"path": "/cb", "protocol": "oidc", "identify": ["oidc_state"]}]),
            "strategy 'oidc_state' needs flow_affinity.enabled: true",
        ),
        (
            _config(
                [{"path": "/cb", "protocol": "oidc", "identify": ["path"]}],
                flow_affinity={"enabled": True},
            ),
            "'secret_file' is required when flow affinity is enabled",
        ),
    ],
    ids=["relay-on-oidc", "state-on-saml", "state-without-affinity", "no-secret-file"],
)
def test_config_refuses_strategies_that_cannot_work(document: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError, match=r"^config 'authswitch\.yaml': ") as caught:
        parse_config(document, source=Path("authswitch.yaml"))
    assert problem in str(caught.value)


def test_an_unreadable_or_short_flow_secret_is_named_in_the_error(tmp_path: Path) -> None:
    missing = FlowAffinity(enabled=True, secret_file=tmp_path / "missing")
    with pytest.raises(ConfigError, match=r"^flow_affinity\.secret_file '.*missing': cannot read"):
        missing.secret()
    (tmp_path / "short").write_text("tooshort\n")
    short = FlowAffinity(enabled=True, secret_file=tmp_path / "short")
    with pytest.raises(ConfigError, match="at least 16 bytes"):
        short.secret()
    (tmp_path / "good").write_text("0123456789abcdef\r\n")
    good = FlowAffinity(enabled=True, secret_file=tmp_path / "good")
    assert good.secret() == b"0123456789abcdef"
