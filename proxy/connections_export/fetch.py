"""The legacy provider's SSO connections from its API, every page, rate limits waited out.

Auth0: `GET /api/v2/connections?strategy=...&page=N&per_page=50&include_totals=true` (a token
with `read:connections`; client secrets are in `options` as Auth0 returns them). Okta:
`GET /api/v1/idps?limit=200` with `Link: rel="next"`, and each SAML IdP's signing key from
`GET /api/v1/idps/credentials/keys/{kid}` (an API token that can read identity providers).
Cognito: `DescribeUserPool` (its domain), `ListIdentityProviders` (`NextToken`) and
`DescribeIdentityProvider` for each (credentials allowed those three `cognito-idp:` actions).
"""

from __future__ import annotations

from typing import Any

import httpx

from connection_map.exports import (
    ExportedConnection,
    auth0_connection,
    cognito_domain_url,
    cognito_idp,
    okta_idp,
)
from proxy.http.rate_limits import RateLimitedClient
from proxy.users_export.cognito import cognito_action, region_of
from proxy.users_export.okta import next_page
from proxy.users_export.source import ExportFailed

AUTH0_STRATEGIES = ("samlp", "oidc", "okta", "waad", "adfs")
_AUTH0_PAGE = 50
_COGNITO_PAGE = 60  # ListIdentityProviders' MaxResults ceiling

Fetched = list[tuple[str, ExportedConnection | str]]  # (source id or name, row or why not)


async def auth0_connections(base_url: str, client: RateLimitedClient) -> Fetched:
    base = base_url.rstrip("/")
    found: Fetched = []
    page = 0
    while True:
        params = [("strategy", strategy) for strategy in AUTH0_STRATEGIES] + [
            ("page", str(page)),
            ("per_page", str(_AUTH0_PAGE)),
            ("include_totals", "true"),
        ]
        answer = _json(
            await client.request("GET", base + "/api/v2/connections", params=params),
            "GET /api/v2/connections",
            "read:connections",
        )
        connections, total = answer.get("connections"), answer.get("total")
        if not isinstance(connections, list) or not isinstance(total, int):
            raise ExportFailed("GET /api/v2/connections: not a page of connections with totals")
        for connection in connections:
            name = str(connection.get("name")) if isinstance(connection, dict) else "?"
            found.append((name, auth0_connection(connection, base)))
        page += 1
        if page * _AUTH0_PAGE >= total or not connections:
            return found


async def okta_idps(org_url: str, client: RateLimitedClient) -> Fetched:
    org = httpx.URL(org_url.rstrip("/"))
    url: str | None = str(org.join("/api/v1/idps?limit=200"))
    idps: list[Any] = []
    while url is not None:
        response = await client.request("GET", url)
        page = _json(response, "GET /api/v1/idps", "okta.idps.read")
        if not isinstance(page, list):
            raise ExportFailed("GET /api/v1/idps: not a list of identity providers")
        idps.extend(page)
        url = next_page(response, org)
    keys: dict[str, list[str]] = {}
    for idp in idps:
        kid = _trust_kid(idp)
        if kid is not None and kid not in keys:
            keys[kid] = await _okta_key(org, client, kid)
    return [
        (str(idp.get("id")) if isinstance(idp, dict) else "?", okta_idp(idp, str(org), keys))
        for idp in idps
    ]


async def cognito_idps(endpoint: str, pool_id: str, client: RateLimitedClient) -> Fetched:
    pool = await cognito_action(client, endpoint, "DescribeUserPool", {"UserPoolId": pool_id})
    described = pool.get("UserPool")
    if not isinstance(described, dict):
        raise ExportFailed("Cognito DescribeUserPool: no UserPool in the answer")
    domain = described.get("CustomDomain") or described.get("Domain")
    domain_url = cognito_domain_url(domain if isinstance(domain, str) else None, region_of(pool_id))
    names: list[str] = []
    token: str | None = None
    while True:
        body: dict[str, Any] = {"UserPoolId": pool_id, "MaxResults": _COGNITO_PAGE}
        if token is not None:
            body["NextToken"] = token
        page = await cognito_action(client, endpoint, "ListIdentityProviders", body)
        providers = page.get("Providers")
        if not isinstance(providers, list):
            raise ExportFailed("Cognito ListIdentityProviders: no Providers list in the answer")
        names.extend(str(p.get("ProviderName")) for p in providers if isinstance(p, dict))
        next_token = page.get("NextToken")
        if not isinstance(next_token, str) or not next_token or not providers:
            break
        token = next_token
    found: Fetched = []
    for name in names:
        body = {"UserPoolId": pool_id, "ProviderName": name}
        answer = await cognito_action(client, endpoint, "DescribeIdentityProvider", body)
        found.append((name, cognito_idp(answer.get("IdentityProvider"), pool_id, domain_url)))
    return found


async def _okta_key(org: httpx.URL, client: RateLimitedClient, kid: str) -> list[str]:
    path = f"/api/v1/idps/credentials/keys/{kid}"
    response = await client.request("GET", str(org.join(path)))
    if response.status_code == 404:
        return []
    key = _json(response, "GET /api/v1/idps/credentials/keys/{kid}", "okta.idps.read")
    x5c = key.get("x5c") if isinstance(key, dict) else None
    return [str(value) for value in x5c] if isinstance(x5c, list) else []


def _trust_kid(idp: Any) -> str | None:
    try:
        kid = idp["protocol"]["credentials"]["trust"]["kid"]
    except (KeyError, TypeError):
        return None
    return kid if isinstance(kid, str) and kid else None


def _json(response: httpx.Response, what: str, scope: str) -> Any:
    if response.status_code in (401, 403):
        raise ExportFailed(
            f"{what}: the provider refused the token (HTTP {response.status_code}): it needs "
            f"{scope}"
        )
    if response.status_code != 200:
        raise ExportFailed(f"{what}: HTTP {response.status_code}")
    try:
        return response.json()
    except ValueError:
        raise ExportFailed(f"{what}: the answer is not JSON") from None
