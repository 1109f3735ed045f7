"""Attributing a callback to a connection: every outcome, against a real connection map."""

from __future__ import annotations

from typing import Any

import pytest

from connection_map import ConnectionMap, ConnectionMapDocument
from connection_map.routes import Identification, Outcome, identify_connection
from proxy.callback.intake import parse_fields
from proxy.config import Route, Strategy

ACME_ISSUER = "https://idp.acme.example/saml"
SHARED_ISSUER = "https://sts.globex.example/adfs/services/trust"

CONNECTIONS = ConnectionMap.build(
    ConnectionMapDocument.model_validate(
        {
            "version": 1,
            "connections": [
                {"id": "acme", "protocol": "saml", "saml": {"idp_entity_id": ACME_ISSUER}},
                {"id": "globex-us", "protocol": "saml", "saml": {"idp_entity_id": SHARED_ISSUER}},
                {"id": "globex-eu", "protocol": "saml", "saml": {"idp_entity_id": SHARED_ISSUER}},
                {"id": "initech", "protocol": "saml"},
                {"id": "hooli", "protocol": "oidc", "oidc": {"callback_path": "/oidc-cb/hooli"}},
            ],
        }
    )
)


def route(path: str, *identify: str, protocol: str = "saml", **options: Any) -> Route:
    return Route.model_validate(
        {"path": path, "protocol": protocol, "identify": list(identify), **options}
    )


def identify(
    route: Route,
    *,
    params: dict[str, str] | None = None,
    query: bytes = b"",
    issuer: str | None = None,
    path: str = "/login/callback",
) -> Identification:
    fields = parse_fields(query, b"", None, 64)
    return identify_connection(
        route,
        params or {},
        fields.query,
        path,
        CONNECTIONS,
        issuer=issuer,
        relay_state=fields.get("RelayState"),
    )


def identified_as(result: Identification) -> tuple[Outcome, str | None, Strategy | None]:
    connection_id = result.connection.id if result.connection is not None else None
    return result.outcome, connection_id, result.strategy


ISSUER_ROUTE = route("/login/callback", "saml_issuer")
PATH_AND_ISSUER = route("/sso/{connection}/acs", "path", "saml_issuer")
QUERY_ROUTE = route("/login/callback", "query", "saml_issuer")
OIDC_PATH = route("/oidc-cb/{rest:path}", "callback_path", protocol="oidc")


# -- one strategy finds one connection ------------------------------------------------------


def test_identified_by_path() -> None:
    result = identify(route("/sso/{connection}/acs", "path"), params={"connection": "initech"})
    assert identified_as(result) == (Outcome.IDENTIFIED, "initech", Strategy.PATH)


def test_identified_by_query_parameter() -> None:
    result = identify(route("/cb", "query"), query=b"connection=acme&lang=de")
    assert identified_as(result) == (Outcome.IDENTIFIED, "acme", Strategy.QUERY)


def test_identified_by_the_routes_own_query_parameter_name() -> None:
    custom = route("/cb", "query", query_param="tenant")
    assert identified_as(identify(custom, query=b"tenant=acme&connection=globex-us")) == (
        Outcome.IDENTIFIED,
        "acme",
        Strategy.QUERY,
    )


def test_identified_by_issuer() -> None:
    result = identify(ISSUER_ROUTE, issuer=ACME_ISSUER)
    assert identified_as(result) == (Outcome.IDENTIFIED, "acme", Strategy.SAML_ISSUER)


def test_identified_by_oidc_callback_path() -> None:
    result = identify(OIDC_PATH, path="/oidc-cb/hooli")
    assert identified_as(result) == (Outcome.IDENTIFIED, "hooli", Strategy.CALLBACK_PATH)


# -- nothing found --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("the_route", "kwargs"),
    [
        (ISSUER_ROUTE, {}),  # no SAMLResponse, so no issuer
        (QUERY_ROUTE, {"query": b"lang=de"}),
        (route("/cb", "query", query_param="tenant"), {"query": b"connection=acme"}),
        (OIDC_PATH, {"path": "/oidc-cb/nobody"}),
    ],
    ids=["no-issuer", "no-query-param", "other-query-param", "unlisted-callback-path"],
)
def test_unidentified_when_no_strategy_finds_anything(
    the_route: Route, kwargs: dict[str, Any]
) -> None:
    assert identify(the_route, **kwargs) == Identification(Outcome.UNIDENTIFIED)


def test_a_strategy_the_route_does_not_list_is_not_consulted() -> None:
    """A `?connection=` claim on an issuer-only route must not pick the connection."""
    result = identify(ISSUER_ROUTE, query=b"connection=acme", path="/oidc-cb/hooli")
    assert result.outcome is Outcome.UNIDENTIFIED


# -- something found that the map doesn't have ----------------------------------------------


@pytest.mark.parametrize(
    ("the_route", "kwargs"),
    [
        (route("/sso/{connection}/acs", "path"), {"params": {"connection": "nobody"}}),
        (QUERY_ROUTE, {"query": b"connection=nobody"}),
        (ISSUER_ROUTE, {"issuer": "https://idp.stranger.example/saml"}),
        (ISSUER_ROUTE, {"issuer": ACME_ISSUER + "/"}),  # issuers match exactly
        (QUERY_ROUTE, {"query": b"connection=ACME"}),  # ids too
    ],
    ids=["path", "query", "issuer", "issuer-near-miss", "id-case"],
)
def test_unknown_when_a_strategy_names_a_connection_the_map_lacks(
    the_route: Route, kwargs: dict[str, Any]
) -> None:
    assert identify(the_route, **kwargs) == Identification(Outcome.UNKNOWN)


def test_unknown_issuer_with_a_known_path_is_not_identified() -> None:
    """A foreign IdP posting to a known connection's ACS URL must not borrow its identity."""
    result = identify(
        PATH_AND_ISSUER, params={"connection": "acme"}, issuer="https://idp.stranger.example/x"
    )
    assert result.outcome is Outcome.UNKNOWN and result.connection is None


def test_unknown_path_with_a_known_issuer_is_not_identified() -> None:
    result = identify(PATH_AND_ISSUER, params={"connection": "nobody"}, issuer=ACME_ISSUER)
    assert result.outcome is Outcome.UNKNOWN and result.connection is None


# -- votes that disagree --------------------------------------------------------------------


def test_path_and_issuer_that_agree_identify_by_the_first_strategy() -> None:
    result = identify(PATH_AND_ISSUER, params={"connection": "acme"}, issuer=ACME_ISSUER)
    assert identified_as(result) == (Outcome.IDENTIFIED, "acme", Strategy.PATH)


def test_path_alone_identifies_when_there_is_no_saml_response() -> None:
    result = identify(PATH_AND_ISSUER, params={"connection": "acme"})
    assert identified_as(result) == (Outcome.IDENTIFIED, "acme", Strategy.PATH)


@pytest.mark.parametrize(
    ("the_route", "kwargs"),
    [
        (PATH_AND_ISSUER, {"params": {"connection": "initech"}, "issuer": ACME_ISSUER}),
        (QUERY_ROUTE, {"query": b"connection=initech", "issuer": ACME_ISSUER}),
        (
            route("/sso/{connection}/acs", "path", "query"),
            {"params": {"connection": "acme"}, "query": b"connection=initech"},
        ),
        (
            route("/oidc-cb/{connection}", "path", "callback_path", protocol="oidc"),
            {"params": {"connection": "acme"}, "path": "/oidc-cb/hooli"},
        ),
    ],
    ids=["path-vs-issuer", "query-vs-issuer", "path-vs-query", "path-vs-callback-path"],
)
def test_conflicting_votes_are_ambiguous(the_route: Route, kwargs: dict[str, Any]) -> None:
    assert identify(the_route, **kwargs) == Identification(Outcome.AMBIGUOUS)


# -- an issuer shared by several connections ------------------------------------------------


def test_a_shared_issuer_alone_is_ambiguous() -> None:
    assert identify(ISSUER_ROUTE, issuer=SHARED_ISSUER) == Identification(
        Outcome.AMBIGUOUS, shared_issuer=("globex-eu", "globex-us")
    )


@pytest.mark.parametrize("sharer", ["globex-us", "globex-eu"])
def test_a_shared_issuer_is_accepted_when_the_path_picks_one_of_its_connections(
    sharer: str,
) -> None:
    result = identify(PATH_AND_ISSUER, params={"connection": sharer}, issuer=SHARED_ISSUER)
    assert identified_as(result) == (Outcome.IDENTIFIED, sharer, Strategy.PATH)


def test_a_shared_issuer_is_accepted_when_the_path_comes_after_it() -> None:
    issuer_first = route("/sso/{connection}/acs", "saml_issuer", "path")
    result = identify(issuer_first, params={"connection": "globex-eu"}, issuer=SHARED_ISSUER)
    assert identified_as(result) == (Outcome.IDENTIFIED, "globex-eu", Strategy.PATH)


def test_a_shared_issuer_is_accepted_when_the_query_picks_one_of_its_connections() -> None:
    result = identify(QUERY_ROUTE, query=b"connection=globex-us", issuer=SHARED_ISSUER)
    assert identified_as(result) == (Outcome.IDENTIFIED, "globex-us", Strategy.QUERY)


@pytest.mark.parametrize("third", ["acme", "initech"])
def test_a_shared_issuer_is_ambiguous_when_the_path_picks_a_third_connection(third: str) -> None:
    result = identify(PATH_AND_ISSUER, params={"connection": third}, issuer=SHARED_ISSUER)
    assert result == Identification(Outcome.AMBIGUOUS)


def test_a_shared_issuer_with_an_unknown_path_is_unknown() -> None:
    result = identify(PATH_AND_ISSUER, params={"connection": "nobody"}, issuer=SHARED_ISSUER)
    assert result == Identification(Outcome.UNKNOWN)
