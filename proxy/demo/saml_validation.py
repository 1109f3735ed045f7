"""SAML Response validation for the demo service providers, done by python3-saml."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from onelogin.saml2.constants import OneLogin_Saml2_Constants as Saml
from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.settings import OneLogin_Saml2_Settings
from onelogin.saml2.utils import OneLogin_Saml2_Utils
from onelogin.saml2.xml_utils import OneLogin_Saml2_XML

# Replay memory is pruned of expired assertions once it holds this many.
_REPLAY_PRUNE_AT = 10_000


@dataclass(frozen=True)
class TrustedIdP:
    """An IdP the service provider accepts logins from, and the connection it stands for."""

    connection_id: str
    entity_id: str
    cert_pem: str


@dataclass(frozen=True)
class SamlVerdict:
    """What the service provider concluded about one SAMLResponse."""

    valid: bool
    error: str | None
    issuer: str | None
    name_id: str | None
    connection: str | None


class SamlResponseValidator:
    """Validates SAMLResponses the way an SP set up by a transparent import would.

    The SP is configured with the *public* (legacy) ACS URL and entity id, so a response
    addressed to the legacy callback validates wherever it is delivered.
    """

    def __init__(
        self,
        *,
        sp_entity_id: str,
        public_acs_url: str,
        trusted_idps: Sequence[TrustedIdP],
        reject_replays: bool = True,
    ) -> None:
        self._request_data = _request_data(public_acs_url)
        self._idps: dict[str, tuple[TrustedIdP, Any]] = {}
        for idp in trusted_idps:
            if idp.entity_id in self._idps:
                raise ValueError(f"two trusted IdPs share the entity id {idp.entity_id!r}")
            settings = _settings(sp_entity_id, public_acs_url, idp)
            self._idps[idp.entity_id] = (idp, settings)
        self._reject_replays = reject_replays
        self._seen: dict[str, float] = {}

    def validate(self, saml_response: str) -> SamlVerdict:
        """Validate one base64 SAMLResponse (signature, issuer, audience, destination, time)."""
        issuer = _claimed_issuer(saml_response)
        if issuer is None:
            return SamlVerdict(False, "malformed SAMLResponse", None, None, None)
        trusted = self._idps.get(issuer)
        if trusted is None:
            return SamlVerdict(False, "untrusted issuer", issuer, None, None)
        idp, settings = trusted
        response = OneLogin_Saml2_Response(settings, saml_response)
        # request_id=None: IdP-initiated logins are allowed, so InResponseTo is not matched.
        if not response.is_valid(self._request_data, request_id=None):
            return SamlVerdict(False, str(response.get_error()), issuer, None, idp.connection_id)
        if self._reject_replays and not self._first_use(response):
            return SamlVerdict(False, "replayed assertion", issuer, None, idp.connection_id)
        name_id = str(response.get_nameid())
        return SamlVerdict(True, None, issuer, name_id, idp.connection_id)

    def _first_use(self, response: Any) -> bool:
        """Remember the assertion id; False when it was already used."""
        assertion_id = str(response.get_assertion_id())
        now = time.time()
        if assertion_id in self._seen:
            return False
        if len(self._seen) >= _REPLAY_PRUNE_AT:
            self._seen = {key: until for key, until in self._seen.items() if until > now}
        until = response.get_assertion_not_on_or_after() or now
        self._seen[assertion_id] = float(until)
        return True


def _request_data(public_acs_url: str) -> dict[str, str]:
    """python3-saml's view of "the URL this request arrived at": always the public ACS URL."""
    parts = urlsplit(public_acs_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"public_acs_url must be an absolute http(s) URL, got {public_acs_url!r}")
    # The port stays inside http_host: python3-saml deprecates the server_port key.
    return {
        "https": "on" if parts.scheme == "https" else "off",
        "http_host": parts.netloc,
        "script_name": parts.path or "/",
    }


def _settings(sp_entity_id: str, public_acs_url: str, idp: TrustedIdP) -> Any:
    return OneLogin_Saml2_Settings(
        {
            "strict": True,
            "debug": False,
            "sp": {
                "entityId": sp_entity_id,
                "assertionConsumerService": {
                    "url": public_acs_url,
                    "binding": Saml.BINDING_HTTP_POST,
                },
            },
            "idp": {"entityId": idp.entity_id, "x509cert": idp.cert_pem},
            "security": {
                "wantAssertionsSigned": True,
                "rejectDeprecatedAlgorithm": True,
            },
        },
        # The demo IdPs have no SSO URL: only the settings a response check needs are given.
        sp_validation_only=True,
    )


def _claimed_issuer(saml_response: str) -> str | None:
    """The Response's Issuer (or the Assertion's when the Response has none), unverified."""
    try:
        document = OneLogin_Saml2_XML.to_etree(OneLogin_Saml2_Utils.b64decode(saml_response))
    except Exception:  # any decode or parse failure means the same thing here
        return None
    for path in ("/samlp:Response/saml:Issuer", "/samlp:Response/saml:Assertion/saml:Issuer"):
        nodes = OneLogin_Saml2_XML.query(document, path)
        if nodes:
            text = OneLogin_Saml2_XML.element_text(nodes[0])
            return str(text) if text else None
    return None
