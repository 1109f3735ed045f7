"""Okta Users API: `GET /api/v1/users?limit=N`, `Authorization: SSWS <token>`, the next page in
the `Link: <...>; rel="next"` header (an opaque `after` cursor; no such link on the last page).

Okta never exports password hashes (its API has no read of them): these users keep their
passwords through the JIT broker (Okta's password import inline hook at the new side) or a
reset. The list omits DEPROVISIONED users, as Okta's default does; SUSPENDED ones are skipped
(counted). Fields: `id` → external_id,
`profile.email`, `profile.login` → username, `profile.firstName`/`lastName` → given/family name.
"""

from __future__ import annotations

from typing import Any

import httpx

from proxy.http.rate_limits import RateLimitedClient
from proxy.users_export.source import ExportFailed, Page, import_line, page_of

MAX_PAGE_SIZE = 200
_INACTIVE = frozenset({"SUSPENDED", "DEPROVISIONED"})


class OktaUsers:
    def __init__(self, org_url: str, client: RateLimitedClient, *, page_size: int = 200) -> None:
        self.org = httpx.URL(org_url.rstrip("/"))
        self.client = client
        self.page_size = min(page_size, MAX_PAGE_SIZE)

    @property
    def identity(self) -> str:
        return f"okta {self.org}"

    async def page(self, cursor: str | None) -> Page:
        url = cursor or str(self.org.join(f"/api/v1/users?limit={self.page_size}"))
        response = await self.client.request("GET", url, headers={"Accept": "application/json"})
        if response.status_code in (401, 403):
            raise ExportFailed(
                f"Okta refused the API token (HTTP {response.status_code}): it needs read "
                "access to users (okta.users.read, or a read-only admin's token)"
            )
        if response.status_code != 200:
            raise ExportFailed(f"GET /api/v1/users: HTTP {response.status_code}")
        try:
            users = response.json()
        except ValueError:
            users = None
        if not isinstance(users, list):
            raise ExportFailed("GET /api/v1/users: the answer is not a list of users")
        return page_of(users, okta_line, next_page(response, self.org))

    async def close(self) -> None:
        await self.client.close()


def next_page(response: httpx.Response, org: httpx.URL) -> str | None:
    """The `Link: rel="next"` URL, or None on the last page; refused when it leaves the org."""
    link = response.links.get("next", {}).get("url")
    if link is None:
        return None
    url = httpx.URL(link)
    # The token goes with every page: never to a host the org URL did not name.
    if (url.scheme, url.host, url.port) != (org.scheme, org.host, org.port):
        raise ExportFailed(f"Okta's next-page link points to another origin ({url.host})")
    return str(url)


def okta_line(user: Any) -> dict[str, Any] | str:
    """An Okta user object as an import line, or why it can't be one."""
    if not isinstance(user, dict) or not isinstance(user.get("profile"), dict):
        return "not an Okta user object"
    if user.get("status") in _INACTIVE:
        # Imported, a suspended user would be able to sign in again at the new provider.
        return f"{user['status'].lower()} at the source"
    profile = user["profile"]
    email, login = profile.get("email"), profile.get("login")
    return import_line(
        {
            "email": email,
            "username": login if login != email else None,
            "external_id": user.get("id"),
            "given_name": profile.get("firstName"),
            "family_name": profile.get("lastName"),
        }
    )
