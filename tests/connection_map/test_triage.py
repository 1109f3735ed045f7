"""Triage: every reason is produced by a connection that has exactly that problem, and only it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connection_map import (
    Assessment,
    Connection,
    ConnectionMapDocument,
    Route,
    TriageSettings,
    triage_connections,
    with_assessments,
)
from tests.connection_map.conftest import SHA1_CERT, make_certificate

LEGACY = "https://login.legacy.example"


def served(path: str, protocol: str, *identify: str) -> Route:
    """A route exactly as the proxy's config file declares one."""
    return Route.model_validate({"path": path, "protocol": protocol, "identify": identify})


ROUTES = (
    served("/login/callback", "saml", "saml_issuer"),
    served("/sso/{connection}/acs", "saml", "path", "saml_issuer"),
    served("/auth0/login/callback", "saml", "query", "saml_issuer"),
    served("/oidc/{connection}/callback", "oidc", "path"),
    served("/oauth2/callback/{rest:path}", "oidc", "callback_path"),
    served("/relay/acs", "saml", "relay_state_prefix", "saml_issuer"),
    served("/oidc/shared-callback", "oidc", "oidc_state"),
)
NOW = datetime.now(UTC)
SETTINGS = TriageSettings(routes=ROUTES, now=NOW)
X509_SUBJECT = "urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName"
EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"


def saml(cid: str, good_cert: str, **changes: Any) -> dict[str, Any]:
    """A SAML connection that moves transparently; `changes` replace top-level keys or saml.*."""
    entry: dict[str, Any] = {
        "id": cid,
        "protocol": "saml",
        "saml": {
            "idp_entity_id": f"https://idp.{cid}.example/saml",
            "signing_certificates": [good_cert],
            "name_id_format": EMAIL,
        },
        "legacy": {"callback_url": f"{LEGACY}/login/callback"},
        "new_provider": {"url": f"https://np.example/sso/{cid}/acs"},
    }
    for key, value in changes.items():
        if key.startswith("saml_"):
            entry["saml"][key.removeprefix("saml_")] = value
        elif value is None:
            entry.pop(key, None)
        else:
            entry[key] = value
    return entry


def oidc(cid: str, **changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": cid,
        "protocol": "oidc",
        "oidc": {"client_id": "abc", "discovery_url": f"https://{cid}.example/.well-known/x"},
        "legacy": {"callback_url": f"{LEGACY}/oidc/{cid}/callback"},
        "new_provider": {"url": f"https://np.example/oidc/{cid}/callback"},
    }
    entry.update(changes)
    return entry


def triage(*entries: dict[str, Any], settings: TriageSettings = SETTINGS) -> dict[str, Any]:
    connections = [Connection.model_validate(e) for e in entries]
    return triage_connections(connections, settings)


def codes(*entries: dict[str, Any], target: str, settings: TriageSettings = SETTINGS) -> list[str]:
    return [r.code for r in triage(*entries, settings=settings)[target].reasons]


def test_a_connection_without_problems_is_transparent(good_cert: str) -> None:
    results = triage(saml("acme", good_cert), oidc("hooli"))
    assert results["acme"].reasons == () and results["hooli"].reasons == ()
    assert results["acme"].assessment is Assessment.TRANSPARENT


SINGLE_PROBLEMS: list[tuple[str, dict[str, Any], str, Assessment]] = [
    (
        "hold",
        {"hold": {"assessment": "blocked", "reason": "customer asked to wait until Q3"}},
        "manual_hold",
        Assessment.BLOCKED,
    ),
    ("no target", {"new_provider": None}, "no_new_provider_target", Assessment.BLOCKED),
    (
        "request signing",
        {"saml_request_signing": {"enabled": True}},
        "request_signing_key_not_exportable",
        Assessment.NEEDS_IDP_CHANGE,
    ),
    (
        "assertion encryption",
        {"saml_assertion_encryption": {"enabled": True, "key_exportable": False}},
        "assertion_encryption_key_not_exportable",
        Assessment.NEEDS_IDP_CHANGE,
    ),
    (
        "nameid encryption",
        {"saml_name_id_encryption": {"enabled": True}},
        "name_id_encryption_key_not_exportable",
        Assessment.NEEDS_IDP_CHANGE,
    ),
    (
        "nameid format",
        {"saml_name_id_format": X509_SUBJECT},
        "name_id_format_unsupported",
        Assessment.NEEDS_IDP_CHANGE,
    ),
    (
        "only unsupported formats offered",
        {"saml_name_id_format": None, "saml_idp_name_id_formats": [X509_SUBJECT]},
        "name_id_format_unsupported",
        Assessment.NEEDS_IDP_CHANGE,
    ),
    (
        "url not routed",
        {"legacy": {"callback_url": f"{LEGACY}/saml2/acs"}},
        "legacy_url_not_routed",
        Assessment.BLOCKED,
    ),
    (
        "url routed for oidc only",
        {"legacy": {"callback_url": f"{LEGACY}/oidc/acme/callback"}},
        "legacy_url_not_routed",
        Assessment.BLOCKED,
    ),
    (
        "path names another connection",
        {"legacy": {"callback_url": f"{LEGACY}/sso/globex/acs"}},
        "route_cannot_identify",
        Assessment.BLOCKED,
    ),
    (
        "issuer route without entity id",
        {"saml_idp_entity_id": None},
        "route_cannot_identify",
        Assessment.BLOCKED,
    ),
    (
        "query names another connection",
        {"legacy": {"callback_url": f"{LEGACY}/auth0/login/callback?connection=globex"}},
        "route_cannot_identify",
        Assessment.BLOCKED,
    ),
    (
        "no legacy url, only the url could identify it",
        {"legacy": None, "saml_idp_entity_id": None},
        "legacy_url_unknown",
        Assessment.BLOCKED,
    ),
]


@pytest.mark.parametrize(
    ("changes", "code", "assessment"),
    [case[1:] for case in SINGLE_PROBLEMS],
    ids=[case[0] for case in SINGLE_PROBLEMS],
)
def test_each_saml_problem_gives_exactly_its_reason(
    good_cert: str, changes: dict[str, Any], code: str, assessment: Assessment
) -> None:
    result = triage(saml("acme", good_cert, **changes))["acme"]
    assert [r.code for r in result.reasons] == [code]
    assert result.assessment is assessment
    assert result.messages[0].startswith(f"{code}: ")


@pytest.mark.parametrize(
    ("cert", "code", "words"),
    [
        (
            lambda: make_certificate("old", valid_for=timedelta(days=-3)),
            "certificate_expired",
            "expired on",
        ),
        (
            lambda: make_certificate("soon", valid_for=timedelta(days=10, hours=1)),
            "certificate_expiring",
            "(in 10 days)",
        ),
        (lambda: make_certificate("small", bits=1024), "certificate_weak_key", "1024-bit RSA"),
        (lambda: SHA1_CERT, "certificate_sha1_signature", "signed with SHA1"),
    ],
    ids=["expired", "expiring", "rsa-1024", "sha1"],
)
def test_each_certificate_problem_gives_exactly_its_reason(
    good_cert: str, cert: Any, code: str, words: str
) -> None:
    result = triage(saml("acme", good_cert, saml_signing_certificates=[good_cert, cert()]))["acme"]
    assert [r.code for r in result.reasons] == [code]
    assert result.assessment is Assessment.NEEDS_IDP_CHANGE
    assert "signing certificate #2 CN=" in result.reasons[0].message
    assert words in result.reasons[0].message


def test_a_certificate_expiring_after_the_warning_window_is_fine(good_cert: str) -> None:
    later = make_certificate("later", valid_for=timedelta(days=31))
    assert codes(saml("acme", good_cert, saml_signing_certificates=[later]), target="acme") == []


def test_a_certificate_that_does_not_parse_blocks(good_cert: str) -> None:
    not_a_cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    entry = saml("acme", good_cert, saml_signing_certificates=[not_a_cert])
    result = triage(entry)["acme"]
    assert [r.code for r in result.reasons] == ["certificate_unreadable"]
    assert result.assessment is Assessment.BLOCKED


def test_keys_that_can_move_are_no_reason(good_cert: str) -> None:
    movable = {"enabled": True, "key_exportable": True}
    entry = saml(
        "acme",
        good_cert,
        saml_request_signing=movable,
        saml_assertion_encryption=movable,
        saml_name_id_encryption=movable,
    )
    assert codes(entry, target="acme") == []


def test_every_reason_is_listed_and_the_worst_wins(good_cert: str) -> None:
    entry = saml(
        "acme",
        good_cert,
        new_provider=None,
        saml_assertion_encryption={"enabled": True},
        saml_name_id_format=X509_SUBJECT,
    )
    result = triage(entry)["acme"]
    assert [r.code for r in result.reasons] == [
        "no_new_provider_target",
        "assertion_encryption_key_not_exportable",
        "name_id_format_unsupported",
    ]
    assert result.assessment is Assessment.BLOCKED


def test_an_http_oidc_discovery_url_needs_the_idp_to_change() -> None:
    entry = oidc("hooli", oidc={"client_id": "abc", "discovery_url": "http://hooli.example/x"})
    result = triage(entry)["hooli"]
    assert [r.code for r in result.reasons] == ["oidc_discovery_not_https"]
    assert result.assessment is Assessment.NEEDS_IDP_CHANGE


def test_an_oidc_callback_path_route_recognises_its_connection() -> None:
    path = "/oauth2/callback/hooli-prod"
    entry = oidc(
        "hooli",
        oidc={"client_id": "abc", "callback_path": path},
        legacy={"callback_url": f"{LEGACY}{path}"},
    )
    assert codes(entry, target="hooli") == []
    stray = oidc("piper", legacy={"callback_url": f"{LEGACY}{path}"})
    assert codes(entry, stray, target="piper") == ["route_cannot_identify"]


# -- triage asks the proxy's own identification ----------------------------------------------


def test_an_oidc_connection_behind_a_shared_redirect_uri_moves_by_its_state() -> None:
    """The proxy routes these by the flow record of `state`: triage must not block them."""
    url = f"{LEGACY}/oidc/shared-callback"
    hooli = oidc("hooli", legacy={"callback_url": url})
    piper = oidc("piper", legacy={"callback_url": url})
    results = triage(hooli, piper)
    assert results["hooli"].reasons == () and results["piper"].reasons == ()


def test_a_shared_issuer_told_apart_by_relay_state_prefix_moves(good_cert: str) -> None:
    """RelayState prefixes tell two connections of one IdP apart, as the proxy does."""
    url = {"callback_url": f"{LEGACY}/relay/acs"}
    eu = saml("globex-eu", good_cert, saml_idp_entity_id=SHARED, legacy=url)
    us = saml("globex-us", good_cert, saml_idp_entity_id=SHARED, legacy=url)
    eu["relay_state_prefix"], us["relay_state_prefix"] = "eu:", "us:"
    results = triage(eu, us)
    assert results["globex-eu"].reasons == () and results["globex-us"].reasons == ()
    del us["relay_state_prefix"]  # without its prefix, only the shared Issuer is left
    (reason,) = triage(eu, us)["globex-us"].reasons
    assert reason.code == "shared_idp_entity_id"


def test_an_issuer_the_map_does_not_know_blocks_a_route_that_reads_it(good_cert: str) -> None:
    """The real callback carries an Issuer; with no entity id in the map the proxy sees an
    unknown connection, whatever the path says."""
    entry = saml("acme", good_cert, legacy={"callback_url": f"{LEGACY}/sso/acme/acs"})
    del entry["saml"]["idp_entity_id"]
    (reason,) = triage(entry)["acme"].reasons
    assert reason.code == "route_cannot_identify"
    assert "no saml.idp_entity_id" in reason.message


# -- two connections sharing one IdP entity id ----------------------------------------------

SHARED = "https://sts.globex.example/adfs/services/trust"


def test_a_shared_issuer_on_an_issuer_only_url_needs_an_idp_change(good_cert: str) -> None:
    eu = saml("globex-eu", good_cert, saml_idp_entity_id=SHARED)
    us = saml("globex-us", good_cert, saml_idp_entity_id=SHARED)
    results = triage(eu, us)
    for cid, other in (("globex-eu", "globex-us"), ("globex-us", "globex-eu")):
        (reason,) = results[cid].reasons
        assert reason.code == "shared_idp_entity_id"
        assert reason.assessment is Assessment.NEEDS_IDP_CHANGE
        assert f"shared with {other!r}" in reason.message and "by path" in reason.message


def test_a_shared_issuer_whose_url_names_the_connection_is_our_fix(good_cert: str) -> None:
    url = f"{LEGACY}/login/callback?connection=globex-eu"
    eu = saml("globex-eu", good_cert, saml_idp_entity_id=SHARED, legacy={"callback_url": url})
    us = saml("globex-us", good_cert, saml_idp_entity_id=SHARED)
    (reason,) = triage(eu, us)["globex-eu"].reasons
    assert reason.code == "shared_idp_entity_id"
    assert reason.assessment is Assessment.BLOCKED
    assert "route /login/callback doesn't read that" in reason.message


@pytest.mark.parametrize(
    "path", ["/sso/globex-eu/acs", "/auth0/login/callback?connection=globex-eu"]
)
def test_a_shared_issuer_recognised_by_path_or_query_is_fine(good_cert: str, path: str) -> None:
    eu = saml(
        "globex-eu", good_cert, saml_idp_entity_id=SHARED, legacy={"callback_url": LEGACY + path}
    )
    us = saml("globex-us", good_cert, saml_idp_entity_id=SHARED)
    assert codes(eu, us, target="globex-eu") == []


def test_without_routes_a_shared_issuer_is_still_reported(good_cert: str) -> None:
    eu = saml("globex-eu", good_cert, saml_idp_entity_id=SHARED)
    us = saml("globex-us", good_cert, saml_idp_entity_id=SHARED)
    settings = TriageSettings(routes=None, now=NOW)
    assert codes(eu, us, target="globex-eu", settings=settings) == ["shared_idp_entity_id"]
    assert codes(saml("acme", good_cert, legacy=None), target="acme", settings=settings) == []


def test_without_a_legacy_url_a_unique_issuer_on_an_issuer_route_is_enough(good_cert: str) -> None:
    assert codes(saml("acme", good_cert, legacy=None), target="acme") == []


def test_the_new_provider_nameid_formats_are_configurable(good_cert: str) -> None:
    settings = TriageSettings(routes=ROUTES, now=NOW, name_id_formats=frozenset({X509_SUBJECT}))
    entry = saml("acme", good_cert, saml_name_id_format=X509_SUBJECT)
    assert codes(entry, target="acme", settings=settings) == []
    assert codes(saml("acme", good_cert), target="acme", settings=settings) == [
        "name_id_format_unsupported"
    ]


def test_with_assessments_rewrites_only_the_named_connections(good_cert: str) -> None:
    document = ConnectionMapDocument.model_validate(
        {
            "connections": [
                saml("acme", good_cert, new_provider=None),
                saml("globex", good_cert, new_provider=None, assessment="transparent"),
            ]
        }
    )
    updated = with_assessments(document, ["acme"], SETTINGS)
    acme, globex = updated.connections
    assert acme.assessment is Assessment.BLOCKED
    assert acme.assessment_reasons == (
        "no_new_provider_target: no new-provider target: set new_provider.url once it is "
        "imported there",
    )
    assert globex == document.connections[1], "an import owns only what it imported"
