"""The new provider's users from WorkOS User Management: `GET /user_management/users?limit=100`
with `Authorization: Bearer <API key>`, following `list_metadata.after` until it is null.

WorkOS never shows a password hash, so `has_hash` is unknown (not compared) for its users.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

from proxy.http.rate_limits import ApiUnavailable, RateLimitedClient
from proxy.users_import.diff import UserRecord

_USERS = "/user_management/users"


async def workos_users(
    base_url: str, client: RateLimitedClient, *, page_size: int = 100
) -> AsyncIterator[UserRecord | str]:
    """Every user, page by page (a user that is not a WorkOS user object: why)."""
    url = base_url.rstrip("/") + _USERS
    after: str | None = None
    while True:
        params = {"limit": str(page_size), "order": "asc"}
        if after is not None:
            params["after"] = after
        response = await client.request("GET", url, params=params)
        if response.status_code in (401, 403):
            raise ApiUnavailable(f"GET {_USERS}: WorkOS refused the API key (HTTP 401/403)")
        if response.status_code != 200:
            raise ApiUnavailable(f"GET {_USERS}: HTTP {response.status_code}")
        page = _page(response)
        for user in page["data"]:
            yield workos_record(user)
        after = page["list_metadata"].get("after")
        if not after:
            return


def workos_record(user: Any) -> UserRecord | str:
    if not isinstance(user, dict) or not isinstance(user.get("email"), str):
        return "not a WorkOS user object"
    verified = user.get("email_verified")
    return UserRecord(
        email=user["email"],
        email_verified=verified if isinstance(verified, bool) else None,
        given_name=user.get("first_name") or None,
        family_name=user.get("last_name") or None,
        has_hash=None,
    )


def _page(response: httpx.Response) -> dict[str, Any]:
    try:
        page = response.json()
    except ValueError:
        page = None
    if (
        not isinstance(page, dict)
        or not isinstance(page.get("data"), list)
        or not isinstance(page.get("list_metadata"), dict)
    ):
        raise ApiUnavailable(f"GET {_USERS}: not a WorkOS list (data, list_metadata)")
    return page
