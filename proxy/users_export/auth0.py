"""Auth0 Management API v2, with a token whose only scope is `read:users`
(`Authorization: Bearer`), by one of the two ways Auth0 documents:

- `GET /api/v2/users?page=N&per_page=M&include_totals=true&sort=created_at:1`: pages in order of
  creation (users added during the export land at the end); Auth0 serves the first 1000 users
  this way only, so a larger tenant is refused with a pointer to the other way;
- the user-export job (`--export-job`): `POST /api/v2/jobs/users-exports` (format `json`, the
  fields below), `GET /api/v2/jobs/{id}` until `completed`, then its `location`: gzipped NDJSON
  from a pre-signed URL (fetched without the token). The job id is the cursor: a resumed export
  polls the same job.

Password hashes: Auth0 exports them only through a support ticket, never by API. A line of that
export (`passwordHash`, bcrypt) read here keeps its hash. Blocked users are skipped (counted).
Fields: `user_id` → external_id, `email`, `email_verified`, `username`, `given_name`, `family_name`.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from proxy.http.rate_limits import RateLimitedClient
from proxy.users_export.source import ExportFailed, Page, import_line, page_of

PAGED_LIMIT = 1000  # Auth0 serves this many users by page; more only by an export job
_FIELDS = ("user_id", "email", "email_verified", "username", "given_name", "family_name", "blocked")
_JOB_PREFIX = "job:"


class Auth0Users:
    def __init__(
        self,
        domain_url: str,
        token: str,
        client: RateLimitedClient,
        *,
        page_size: int = 100,
        export_job: bool = False,
        connection_id: str | None = None,
        poll_seconds: float = 5.0,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self.base = httpx.URL(domain_url.rstrip("/"))
        self._auth = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self.client = client
        self.page_size = min(page_size, 100)
        self.export_job = export_job
        self.connection_id = connection_id
        self.poll_seconds = poll_seconds
        self._sleep = sleep or asyncio.sleep

    @property
    def identity(self) -> str:
        way = "export job" if self.export_job else "users"
        return f"auth0 {self.base} ({way})"

    async def page(self, cursor: str | None) -> Page:
        if self.export_job:
            return await self._job(cursor)
        number = int(cursor or "0")
        params = {
            "page": str(number),
            "per_page": str(self.page_size),
            "include_totals": "true",
            "sort": "created_at:1",
            "fields": ",".join(_FIELDS),
        }
        answer = await self._get_json("/api/v2/users", params)
        users, total = answer.get("users"), answer.get("total")
        if not isinstance(users, list) or not isinstance(total, int):
            raise ExportFailed("GET /api/v2/users: not a page of users with totals")
        if total > PAGED_LIMIT:
            raise ExportFailed(
                f"the tenant has {total} users; Auth0 pages through the first {PAGED_LIMIT} "
                "only: give --export-job to export them all by a user-export job"
            )
        last = (number + 1) * self.page_size >= total or not users
        return page_of(users, auth0_line, None if last else str(number + 1))

    async def close(self) -> None:
        await self.client.close()

    async def _job(self, cursor: str | None) -> Page:
        if cursor is None:
            body: dict[str, Any] = {
                "format": "json",
                "fields": [{"name": name} for name in _FIELDS],
            }
            if self.connection_id is not None:
                body["connection_id"] = self.connection_id
            response = await self.client.request(
                "POST",
                str(self.base.join("/api/v2/jobs/users-exports")),
                json=body,
                headers=self._auth,
            )
            job = self._json(response, "POST /api/v2/jobs/users-exports", ok=(200, 201))
            if not isinstance(job.get("id"), str):
                raise ExportFailed("POST /api/v2/jobs/users-exports: no job id in the answer")
            return Page([], _JOB_PREFIX + job["id"])
        job_id = cursor.removeprefix(_JOB_PREFIX)
        location = await self._completed(job_id)
        # A pre-signed URL on another host: the token must not go with it.
        response = await self.client.request("GET", location)
        if response.status_code != 200:
            raise ExportFailed(
                f"the export file of job {job_id}: HTTP {response.status_code} (expired? "
                "--restart starts a new job)"
            )
        content = response.content
        if content[:2] == b"\x1f\x8b":
            content = gzip.decompress(content)
        users = (json.loads(text) for text in content.splitlines() if text.strip())
        return page_of(users, auth0_line, None)

    async def _completed(self, job_id: str) -> str:
        while True:
            job = await self._get_json(f"/api/v2/jobs/{job_id}", {})
            status = job.get("status")
            if status == "completed" and isinstance(job.get("location"), str):
                return str(job["location"])
            if status not in ("pending", "processing"):
                raise ExportFailed(
                    f"Auth0 export job {job_id} is {status!r}: --restart starts a new one"
                )
            await self._sleep(self.poll_seconds)

    async def _get_json(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        url = str(self.base.join(path))
        response = await self.client.request("GET", url, params=params, headers=self._auth)
        return self._json(response, f"GET {path}", ok=(200,))

    def _json(self, response: httpx.Response, what: str, *, ok: tuple[int, ...]) -> dict[str, Any]:
        if response.status_code in (401, 403):
            raise ExportFailed(
                f"{what}: Auth0 refused the token (HTTP {response.status_code}): it needs the "
                "read:users scope"
            )
        if response.status_code not in ok:
            raise ExportFailed(f"{what}: HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            raise ExportFailed(f"{what}: the answer is not JSON") from None
        if not isinstance(answer, dict):
            raise ExportFailed(f"{what}: the answer is not a JSON object")
        return answer


def auth0_line(user: Any) -> dict[str, Any] | str:
    """An Auth0 user (Management API, export job or the support hash export) as an import line."""
    if not isinstance(user, dict):
        return "not an Auth0 user object"
    if user.get("blocked") is True:
        # Imported, a blocked user would be able to sign in again at the new provider.
        return "blocked at the source"
    external_id = user.get("user_id")
    if external_id is None and isinstance(user.get("_id"), dict):  # the support hash export
        external_id = user["_id"].get("$oid")
    password_hash = user.get("passwordHash")
    return import_line(
        {
            "email": user.get("email"),
            "email_verified": user.get("email_verified"),
            "username": user.get("username"),
            "external_id": external_id,
            "given_name": user.get("given_name"),
            "family_name": user.get("family_name"),
            "password_hash": password_hash,
            "password_hash_type": "bcrypt" if password_hash else None,
        }
    )
