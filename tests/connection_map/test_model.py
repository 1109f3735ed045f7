"""The connection model: what a valid entry is, and when a connection may move."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from connection_map import (
    Assessment,
    Connection,
    ConnectionMapDocument,
    ForwardMode,
    Protocol,
)

NEW_PROVIDER = {"url": "https://auth.new-provider.example/sso/acme/acs"}


def saml(cid: str = "acme", **fields: Any) -> dict[str, Any]:
    return {
        "id": cid,
        "protocol": "saml",
        "saml": {"idp_entity_id": f"https://idp.{cid}.example/saml"},
        **fields,
    }


def oidc(cid: str = "hooli", **fields: Any) -> dict[str, Any]:
    return {
        "id": cid,
        "protocol": "oidc",
        "oidc": {"callback_path": f"/oauth2/callback/{cid}"},
        **fields,
    }


def problems(raw: dict[str, Any], model: type[Connection | ConnectionMapDocument]) -> list[str]:
    """Every problem as 'dotted.location: message'."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate(raw)
    return [
        f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
        for error in caught.value.errors(include_url=False)
    ]


def test_defaults_keep_a_bare_connection_on_legacy() -> None:
    connection = Connection.model_validate({"id": "acme", "protocol": "saml"})
    assert connection.protocol is Protocol.SAML
    assert connection.new_provider is None
    assert connection.assessment is Assessment.TRANSPARENT
    assert connection.assessment_reasons == ()
    assert connection.idp_initiated is True
    assert connection.migratable is False


def test_new_provider_defaults_to_redirect_mode() -> None:
    connection = Connection.model_validate(saml(new_provider=NEW_PROVIDER))
    assert connection.new_provider is not None
    assert connection.new_provider.mode is ForwardMode.REDIRECT
    assert str(connection.new_provider.url) == NEW_PROVIDER["url"]


@pytest.mark.parametrize(
    ("new_provider", "assessment", "migratable"),
    [
        (NEW_PROVIDER, "transparent", True),
        (NEW_PROVIDER, "needs_idp_change", False),
        (NEW_PROVIDER, "blocked", False),
        (None, "transparent", False),
    ],
)
def test_only_an_imported_transparent_connection_is_migratable(
    new_provider: dict[str, str] | None, assessment: str, migratable: bool
) -> None:
    connection = Connection.model_validate(saml(new_provider=new_provider, assessment=assessment))
    assert connection.migratable is migratable


@pytest.mark.parametrize(
    "cid", ["acme", "a", "ACME-01", "conn_01HXYZ", "acme.eu:prod@idp", "9lives", "a" * 256]
)
def test_valid_connection_ids(cid: str) -> None:
    assert Connection.model_validate(saml(cid)).id == cid


@pytest.mark.parametrize(
    "cid",
    [
        "",
        "-acme",
        ".acme",
        "acme corp",
        "acme/../globex",
        "acme\n",  # a trailing newline would forge log lines and metric labels
        "acme\nlevel=error",
        "ac\tme",
        "acmé",
        "a" * 257,
    ],
    ids=repr,
)
def test_invalid_connection_ids_are_refused(cid: str) -> None:
    assert problems(saml(cid), Connection) == [
        "id: Value error, must be 1-256 characters of letters, digits and . _ : @ -, "
        "starting with a letter or digit"
    ]


def test_an_oidc_connection_cannot_carry_saml_settings() -> None:
    raw = oidc(saml={"idp_entity_id": "https://idp.example/saml"})
    assert problems(raw, Connection) == [
        ": Value error, an oidc connection cannot have 'saml' settings"
    ]


def test_a_saml_connection_cannot_carry_oidc_settings() -> None:
    raw = saml(oidc={"callback_path": "/oauth2/callback/acme"})
    assert problems(raw, Connection) == [
        ": Value error, a saml connection cannot have 'oidc' settings"
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (saml(protocol="ws-fed"), "protocol: Input should be 'saml' or 'oidc'"),
        (saml(saml={"idp_entity_id": ""}), "saml.idp_entity_id: String should have at least"),
        (
            saml(saml={"idp_entity_id": "x", "entity_id": "x"}),
            "saml.entity_id: Extra inputs are not permitted",
        ),
        (oidc(oidc={"callback_path": "cb"}), "oidc.callback_path: String should match pattern"),
        (oidc(oidc={"callback_path": "/cb?x=1"}), "oidc.callback_path: String should match"),
        (oidc(oidc={"callback_path": "/c b"}), "oidc.callback_path: String should match"),
        (saml(new_provider={"url": "ftp://np.example/x"}), "new_provider.url: URL scheme"),
        (
            saml(new_provider={**NEW_PROVIDER, "mode": "iframe"}),
            "new_provider.mode: Input should be 'redirect', 'form_post' or 'proxy'",
        ),
        (
            saml(assessment="maybe"),
            "assessment: Input should be 'transparent', 'needs_idp_change' or 'blocked'",
        ),
        (saml(idp_initiated="sometimes"), "idp_initiated: Input should be a valid boolean"),
        (saml(tenant="eu"), "tenant: Extra inputs are not permitted"),
    ],
)
def test_bad_fields_are_refused_with_their_location(raw: dict[str, Any], expected: str) -> None:
    found = problems(raw, Connection)
    assert len(found) == 1 and found[0].startswith(expected), found


def test_a_document_with_unique_connections_is_valid() -> None:
    document = ConnectionMapDocument.model_validate(
        {"version": 3, "connections": [saml("acme"), saml("globex"), oidc("hooli")]}
    )
    assert document.version == 3
    assert [c.id for c in document.connections] == ["acme", "globex", "hooli"]


def test_an_empty_document_is_an_empty_map() -> None:
    assert ConnectionMapDocument.model_validate({}) == ConnectionMapDocument(
        version=0, connections=()
    )


def test_a_duplicate_id_is_refused_naming_the_id_and_both_rows() -> None:
    raw = {"connections": [saml("acme"), oidc("hooli"), saml("acme")]}
    assert problems(raw, ConnectionMapDocument) == [
        "connections: Value error, connection id 'acme' appears more than once "
        "(connections[0] and connections[2])"
    ]


def test_two_connections_claiming_one_oidc_callback_path_are_refused() -> None:
    """Otherwise the later one would silently receive the earlier one's callbacks."""
    shared = {"callback_path": "/oauth2/callback/shared"}
    raw = {"connections": [oidc("hooli", oidc=shared), saml("acme"), oidc("piper", oidc=shared)]}
    assert problems(raw, ConnectionMapDocument) == [
        "connections: Value error, oidc.callback_path '/oauth2/callback/shared' is used by "
        "connections[0] (id 'hooli') and connections[2] (id 'piper')"
    ]


def test_connections_may_share_a_saml_issuer() -> None:
    """One customer IdP may serve several connections; the index treats that as ambiguous."""
    issuer = {"idp_entity_id": "https://sts.globex.example/adfs/services/trust"}
    document = ConnectionMapDocument.model_validate(
        {"connections": [saml("globex-eu", saml=issuer), saml("globex-us", saml=issuer)]}
    )
    assert len(document.connections) == 2


@pytest.mark.parametrize("version", [-1, "latest", 1.5])
def test_version_must_be_a_whole_number_from_zero(version: object) -> None:
    found = problems({"version": version}, ConnectionMapDocument)
    assert len(found) == 1 and found[0].startswith("version: ")


def test_new_provider_url_with_a_fragment_is_refused() -> None:
    from pydantic import ValidationError

    from connection_map import NewProvider

    with pytest.raises(ValidationError, match="must not have a #fragment"):
        NewProvider.model_validate({"url": "https://new.example/acs#frag"})
    assert NewProvider.model_validate({"url": "https://new.example/acs?a=1"}).url.query == "a=1"


# -- the fields importers and triage use --------------------------------------------------------


def test_a_full_saml_entry_is_valid(good_cert: str) -> None:
    connection = Connection.model_validate(
        saml(
            name="Acme SSO",
            external_id="acme-ext",
            organization={"id": "org_1", "name": "Acme", "domains": ["acme.example"]},
            legacy={
                "callback_url": "https://Login.Legacy.example/login/callback?connection=acme",
                "sp_entity_id": "urn:auth0:legacy",
            },
            relay_state_prefix="acme:",
            hold={"assessment": "needs_idp_change", "reason": "customer rotates keys in May"},
        )
        | {
            "saml": {
                "idp_entity_id": "https://idp.acme.example/saml",
                "idp_sso_urls": [{"url": "https://idp.acme.example/sso", "binding": "x"}],
                "signing_certificates": [good_cert],
                "assertion_encryption": {"enabled": True, "key_exportable": True},
            }
        }
    )
    assert connection.legacy is not None
    assert connection.legacy.callback_url == (
        "https://Login.Legacy.example/login/callback?connection=acme"
    ), "URLs are kept exactly as written: IdPs compare them as strings"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            saml(legacy={"callback_url": "/login/callback"}),
            "legacy.callback_url: Value error, must be an http",
        ),
        (
            saml(legacy={"callback_url": "https://l.example/cb#x"}),
            "legacy.callback_url: Value error, must not have a #fragment",
        ),
        (
            saml(saml={"signing_certificates": ["MIIB"]}),
            "saml.signing_certificates.0: Value error, must be one PEM",
        ),
        (
            saml(
                saml={
                    "signing_certificates": [
                        "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----"
                    ]
                }
            ),
            "saml.signing_certificates.0: Value error, the PEM certificate is not valid",
        ),
        (
            saml(organization={"domains": ["Acme.example"]}),
            "organization.domains.0: Value error, must be a lower-case",
        ),
        (
            saml(hold={"assessment": "transparent", "reason": "x"}),
            "hold.assessment: Value error, a hold is",
        ),
        (
            oidc(oidc={"discovery_url": "idp.example"}),
            "oidc.discovery_url: Value error, must be an http",
        ),
        (
            oidc(legacy={"sp_entity_id": "urn:x"}),
            ": Value error, an oidc connection cannot have 'legacy.sp_entity_id'",
        ),
    ],
)
def test_new_fields_are_validated_with_their_location(raw: dict[str, Any], expected: str) -> None:
    found = problems(raw, Connection)
    assert len(found) == 1 and found[0].startswith(expected), found


def test_a_saml_block_without_an_entity_id_is_valid_and_not_indexed() -> None:
    """A connection imported from a metadata URL only; the Issuer strategy won't find it."""
    connection = Connection.model_validate(saml(saml={"idp_metadata_url": "https://idp/md"}))
    assert connection.saml is not None and connection.saml.idp_entity_id is None


def test_relay_state_prefixes_must_not_overlap() -> None:
    raw = {
        "connections": [
            saml("acme", relay_state_prefix="ac"),
            saml("globex", relay_state_prefix="gl"),
            saml("acme2", relay_state_prefix="acme:"),
        ]
    }
    assert problems(raw, ConnectionMapDocument) == [
        "connections: Value error, relay_state_prefix of connections[0] (id 'acme') and "
        "connections[2] (id 'acme2') overlap: 'ac' starts 'acme:'"
    ]
    raw["connections"][0]["relay_state_prefix"] = "acx"
    assert len(ConnectionMapDocument.model_validate(raw).connections) == 3
