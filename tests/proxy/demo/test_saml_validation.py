from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from proxy.demo import (
    DemoIdP,
    KeyPair,
    SamlResponseValidator,
    TrustedIdP,
    generate_keypair,
)

from .conftest import IDP_ENTITY_ID, LEGACY_ACS_URL, LEGACY_SP_ENTITY_ID


def validator(
    trusted: TrustedIdP, acs_url: str = LEGACY_ACS_URL, **kwargs: Any
) -> SamlResponseValidator:
    return SamlResponseValidator(
        sp_entity_id=LEGACY_SP_ENTITY_ID, public_acs_url=acs_url, trusted_idps=[trusted], **kwargs
    )


def mint(idp: DemoIdP, **overrides: Any) -> str:
    kwargs: dict[str, Any] = {
        "destination": LEGACY_ACS_URL,
        "audience": LEGACY_SP_ENTITY_ID,
        "name_id": "ada@acme.example",
        **overrides,
    }
    return idp.mint_response(**kwargs)


def test_minted_response_validates_with_issuer_name_id_and_connection(
    idp: DemoIdP, trusted: TrustedIdP
) -> None:
    verdict = validator(trusted).validate(mint(idp, in_response_to="_sp-request-1"))

    assert verdict.error is None
    assert verdict.valid
    assert verdict.issuer == IDP_ENTITY_ID
    assert verdict.name_id == "ada@acme.example"
    assert verdict.connection == "acme"


@pytest.mark.parametrize("sign_response", [True, False])
def test_tampered_name_id_is_rejected(
    idp: DemoIdP, trusted: TrustedIdP, sign_response: bool
) -> None:
    xml = base64.b64decode(mint(idp, sign_response=sign_response))
    forged = xml.replace(b">ada@acme.example</saml:NameID>", b">eve@acme.example</saml:NameID>")
    assert forged != xml

    verdict = validator(trusted).validate(base64.b64encode(forged).decode())

    assert not verdict.valid
    assert verdict.name_id is None
    assert verdict.error is not None
    assert "Signature validation failed" in verdict.error


def test_signature_by_another_key_under_the_same_entity_id_is_rejected(
    trusted: TrustedIdP,
) -> None:
    impostor = DemoIdP(IDP_ENTITY_ID, generate_keypair("impostor"))
    verdict = validator(trusted).validate(mint(impostor))
    assert not verdict.valid
    assert verdict.error is not None
    assert "Signature validation failed" in verdict.error


@pytest.mark.parametrize(
    ("overrides", "error_part"),
    [
        ({"destination": "https://attacker.example/sso/acme/acs"}, "was received at"),
        ({"audience": "urn:some-other-sp"}, "is not a valid audience"),
    ],
)
def test_response_meant_for_someone_else_is_rejected(
    idp: DemoIdP, trusted: TrustedIdP, overrides: dict[str, str], error_part: str
) -> None:
    verdict = validator(trusted).validate(mint(idp, **overrides))
    assert not verdict.valid
    assert verdict.error is not None
    assert error_part in verdict.error


@pytest.mark.parametrize(("sign_assertion", "sign_response"), [(False, True), (False, False)])
def test_unsigned_assertion_is_rejected(
    idp: DemoIdP, trusted: TrustedIdP, sign_assertion: bool, sign_response: bool
) -> None:
    response = mint(idp, sign_assertion=sign_assertion, sign_response=sign_response)
    assert not validator(trusted).validate(response).valid


def test_assertion_signed_alone_is_accepted(idp: DemoIdP, trusted: TrustedIdP) -> None:
    assert validator(trusted).validate(mint(idp, sign_response=False)).valid


@pytest.mark.parametrize(
    ("clock_offset", "valid"),
    [
        (timedelta(minutes=-2), True),  # IdP clock a little behind: still inside the window
        (timedelta(minutes=2), True),  # a little ahead: inside python3-saml's 300 s drift
        (timedelta(minutes=-10), False),  # expired
        (timedelta(minutes=10), False),  # not yet valid
    ],
)
def test_validity_window_follows_the_real_clock(
    idp: DemoIdP, trusted: TrustedIdP, clock_offset: timedelta, valid: bool
) -> None:
    response = mint(idp, now=datetime.now(UTC) + clock_offset)
    assert validator(trusted).validate(response).valid is valid


def test_padded_8kb_response_validates(idp: DemoIdP, trusted: TrustedIdP) -> None:
    response = mint(idp, padding_bytes=8192)
    assert len(base64.b64decode(response)) > 8192
    assert validator(trusted).validate(response).valid


def test_unknown_issuer_is_untrusted(trusted: TrustedIdP, idp_keys: KeyPair) -> None:
    stranger = DemoIdP("https://idp.stranger.example", idp_keys)
    verdict = validator(trusted).validate(mint(stranger))
    assert (verdict.valid, verdict.error, verdict.issuer) == (
        False,
        "untrusted issuer",
        "https://idp.stranger.example",
    )
    assert verdict.connection is None


@pytest.mark.parametrize("garbage", ["", "not base64 at all!", base64.b64encode(b"<a>").decode()])
def test_malformed_response_is_invalid_not_an_error(trusted: TrustedIdP, garbage: str) -> None:
    verdict = validator(trusted).validate(garbage)
    assert (verdict.valid, verdict.error) == (False, "malformed SAMLResponse")


def test_replayed_assertion_is_rejected(idp: DemoIdP, trusted: TrustedIdP) -> None:
    sp = validator(trusted)
    response = mint(idp)
    assert sp.validate(response).valid
    assert sp.validate(response).error == "replayed assertion"


def test_replays_can_be_allowed(idp: DemoIdP, trusted: TrustedIdP) -> None:
    sp = validator(trusted, reject_replays=False)
    response = mint(idp)
    assert sp.validate(response).valid
    assert sp.validate(response).valid


@pytest.mark.parametrize(
    ("acs_url", "destination", "valid"),
    [
        ("http://localhost:8080/sso/acme/acs", "http://localhost:8080/sso/acme/acs", True),
        ("http://localhost:8080/sso/acme/acs", "http://localhost/sso/acme/acs", False),
        ("https://t.legacy.example/login/callback?connection=acme", None, True),
    ],
)
def test_destination_is_checked_against_the_public_acs_url(
    idp: DemoIdP, trusted: TrustedIdP, acs_url: str, destination: str | None, valid: bool
) -> None:
    response = mint(idp, destination=destination or acs_url)
    assert validator(trusted, acs_url).validate(response).valid is valid


def test_two_trusted_idps_with_one_entity_id_are_refused(trusted: TrustedIdP) -> None:
    twin = TrustedIdP("acme-2", trusted.entity_id, trusted.cert_pem)
    with pytest.raises(ValueError, match="share the entity id"):
        SamlResponseValidator(
            sp_entity_id=LEGACY_SP_ENTITY_ID,
            public_acs_url=LEGACY_ACS_URL,
            trusted_idps=[trusted, twin],
        )


def test_relative_acs_url_is_refused(trusted: TrustedIdP) -> None:
    with pytest.raises(ValueError, match="absolute http"):
        validator(trusted, "/sso/acme/acs")
