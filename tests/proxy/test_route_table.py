"""Which configured callback route, if any, a request path belongs to."""

from __future__ import annotations

import pytest

from proxy.callback.intake import SINGLE_VALUED
from proxy.callback.routes import CallbackRoutes
from proxy.config import Route


def route(path: str, *identify: str, protocol: str = "saml") -> Route:
    return Route.model_validate(
        {"path": path, "protocol": protocol, "identify": list(identify) or ["saml_issuer"]}
    )


ACS = route("/login/callback")
PER_CONNECTION = route("/sso/{connection}/acs", "path", "saml_issuer")
OIDC = route("/oidc/{connection}/callback", "path", protocol="oidc")
OIDC_REST = route("/oauth2/callback/{rest:path}", "callback_path", protocol="oidc")
TABLE = CallbackRoutes((ACS, PER_CONNECTION, OIDC, OIDC_REST))


def test_an_exact_path_matches_with_no_parameters() -> None:
    match = TABLE.match("/login/callback")
    assert match is not None
    assert match.route is ACS and match.params == {}


def test_a_template_captures_its_segment() -> None:
    match = TABLE.match("/sso/acme-corp.eu/acs")
    assert match is not None
    assert match.route is PER_CONNECTION and match.params == {"connection": "acme-corp.eu"}


@pytest.mark.parametrize(
    "path",
    [
        "/sso/acme/evil/acs",  # {connection} is one segment, never two
        "/sso//acs",  # and never empty
        "/sso/acme/acs/",
        "/sso/acme/acs/extra",
        "/prefix/sso/acme/acs",
        "/login/callback/",
        "/login/callback/extra",
        "/Login/Callback",
        "/login",
        "/",
        "/oauth2/callback/",  # {rest:path} needs at least one character
    ],
)
def test_paths_that_are_not_a_route_do_not_match(path: str) -> None:
    assert TABLE.match(path) is None


def test_a_path_parameter_takes_the_rest_of_the_path_slashes_included() -> None:
    match = TABLE.match("/oauth2/callback/tenants/hooli/prod")
    assert match is not None
    assert match.route is OIDC_REST and match.params == {"rest": "tenants/hooli/prod"}


def test_a_path_parameter_in_the_middle_still_needs_the_literal_tail() -> None:
    table = CallbackRoutes((route("/t/{rest:path}/acs", "callback_path", protocol="oidc"),))
    match = table.match("/t/a/b/acs")
    assert match is not None and match.params == {"rest": "a/b"}
    assert table.match("/t/a/b/acs/x") is None


def test_several_parameters_are_captured_by_name() -> None:
    table = CallbackRoutes((route("/t/{tenant}/sso/{connection}/acs", "path"),))
    match = table.match("/t/eu/sso/acme/acs")
    assert match is not None
    assert match.params == {"tenant": "eu", "connection": "acme"}


@pytest.mark.parametrize(
    ("template", "literal", "lookalike"),
    [
        ("/cb.php/{connection}", "/cb.php/acme", "/cbXphp/acme"),
        ("/a+b/{connection}", "/a+b/acme", "/aab/acme"),
        ("/(x)|y/{connection}", "/(x)|y/acme", "/y/acme"),
        ("/sso/{connection}/acs$", "/sso/acme/acs$", "/sso/acme/acs"),
        ("/^s*o?/{connection}", "/^s*o?/acme", "/sss/acme"),
        ("/[ab]/{connection}", "/[ab]/acme", "/a/acme"),
        ("/x\\d/{connection}", "/x\\d/acme", "/x1/acme"),
    ],
)
def test_regex_metacharacters_in_a_template_are_literal(
    template: str, literal: str, lookalike: str
) -> None:
    table = CallbackRoutes((route(template, "path"),))
    match = table.match(literal)
    assert match is not None and match.params == {"connection": "acme"}
    assert table.match(lookalike) is None


def test_braces_that_are_not_a_parameter_are_literal() -> None:
    table = CallbackRoutes((route("/cb/{not-a-param}/{connection}", "path"),))
    assert table.match("/cb/{not-a-param}/acme") is not None
    assert table.match("/cb/x/acme") is None


def test_an_exact_route_wins_over_a_template_that_also_matches() -> None:
    special = route("/sso/legacy-admin/acs")
    table = CallbackRoutes((PER_CONNECTION, special))
    match = table.match("/sso/legacy-admin/acs")
    assert match is not None and match.route is special and match.params == {}


def test_overlapping_templates_match_in_configuration_order() -> None:
    first = route("/sso/{connection}/acs", "path")
    second = route("/sso/{slug}/acs", "callback_path", protocol="oidc")
    for routes in ((first, second), (second, first)):
        match = CallbackRoutes(routes).match("/sso/a/acs")
        assert match is not None and match.route is routes[0]


def test_a_route_identifying_by_query_allows_its_parameter_once_only() -> None:
    """A second `?connection=` would be a second answer to "which connection is this?"."""
    by_query = Route.model_validate(
        {"path": "/cb", "protocol": "oidc", "identify": ["query"], "query_param": "tenant"}
    )
    table = CallbackRoutes((by_query, ACS))
    query_match = table.match("/cb")
    assert query_match is not None
    assert query_match.single_valued == SINGLE_VALUED | {"tenant"}
    acs_match = table.match("/login/callback")
    assert acs_match is not None
    assert acs_match.single_valued == SINGLE_VALUED


def test_a_template_match_carries_its_routes_single_valued_fields() -> None:
    by_path_and_query = route("/sso/{connection}/acs", "path", "query")
    match = CallbackRoutes((by_path_and_query,)).match("/sso/acme/acs")
    assert match is not None
    assert match.single_valued == SINGLE_VALUED | {"connection"}


def test_an_empty_table_matches_nothing() -> None:
    assert CallbackRoutes(()).match("/login/callback") is None
