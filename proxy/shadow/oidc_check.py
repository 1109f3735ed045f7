"""What an OIDC callback shows without redeeming its code, checked against the import.

Only two facts are visible before the code is redeemed (which only the relying party may do,
once): the ``iss`` parameter (RFC 9207), when the IdP sends it, must be the issuer of the
imported discovery document, and the callback must arrive at the imported redirect URI's path.
Whether the new provider's client id, secret and redirect URI registration work shows only at
the token endpoint, so an OIDC connection's readiness is evidence, not proof; the gate leaves
OIDC connections to triage.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from connection_map import Connection
from proxy.shadow.saml_check import Verdict

_DISCOVERY_SUFFIX = "/.well-known/openid-configuration"


def expected_issuer(connection: Connection) -> str | None:
    """The issuer the imported discovery URL names (RFC 8414 / OIDC Discovery layout)."""
    url = connection.oidc.discovery_url if connection.oidc else None
    if url is None or not url.endswith(_DISCOVERY_SUFFIX):
        return None
    return url.removesuffix(_DISCOVERY_SUFFIX)


def check_oidc_callback(connection: Connection, iss: str | None, path: str) -> Verdict:
    """Check the callback's `iss` parameter (when sent) and the path it arrived at."""
    reasons: list[str] = []
    details: dict[str, str] = {}
    issuer = expected_issuer(connection)
    if iss is not None and issuer is not None and iss != issuer:
        reasons.append("issuer_mismatch")
        details["issuer_mismatch"] = f"iss is not the imported issuer {issuer}"
    callback_url = connection.legacy.callback_url if connection.legacy else None
    if callback_url is not None and urlsplit(callback_url).path != path:
        reasons.append("callback_url_mismatch")
        details["callback_url_mismatch"] = f"callback path is not that of {callback_url}"
    return Verdict(not reasons, tuple(reasons), details)
