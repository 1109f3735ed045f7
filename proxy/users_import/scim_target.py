"""The SCIM 2.0 import target: /Bulk when the server offers it, else parallel single creates
over one keep-alive session.

The hot loop builds each User document as a plain dict (tested to equal what scim2-models
builds): a pydantic model per user would cost more than the HTTP request itself.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import aiohttp

from proxy.broker.http_client import HttpClient
from proxy.users_import.hash_passing import HashTarget
from proxy.users_import.line_schema import UserLine
from proxy.users_import.target import (
    CREATED,
    EXISTS,
    UPDATED,
    Outcome,
    TargetUnavailable,
    failed,
)

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
_JSON = "application/scim+json"
_FILTER_TERMS = 50  # userName terms per lookup: keeps the query string under ~4 KB
_RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})


def scim_user_document(user: UserLine) -> dict[str, Any]:
    """The SCIM User the line describes (`email_verified` has no SCIM core attribute)."""
    document: dict[str, Any] = {"schemas": [USER_SCHEMA]}
    if user.external_id is not None:
        document["externalId"] = user.external_id
    document["userName"] = user.user_name
    if user.given_name is not None or user.family_name is not None:
        name: dict[str, str] = {}
        if user.family_name is not None:
            name["familyName"] = user.family_name
        if user.given_name is not None:
            name["givenName"] = user.given_name
        document["name"] = name
    document["active"] = True
    if user.password is not None:
        document["password"] = user.password.get_secret_value()
    document["emails"] = [{"value": user.email, "primary": True}]
    return document


class ScimImportTarget(HttpClient):
    """Creates users at a SCIM server; `use_bulk` None = when ServiceProviderConfig says so."""

    # SCIM 2.0 (RFC 7643) has no attribute for a password hash, and no extension for one is
    # standard: users with a hash are listed as not passable.
    hash_target: HashTarget | None = None

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None,
        timeout_seconds: float,
        connections: int = 64,
        use_bulk: bool | None = None,
    ) -> None:
        super().__init__(
            timeout_seconds,
            token=token,
            headers={"Content-Type": _JSON, "Accept": _JSON},
            connections=connections,
        )
        self._base = base_url.rstrip("/")
        self._use_bulk = use_bulk
        self.bulk_max_operations = 0  # 0: no /Bulk, single creates
        self.bulk_max_bytes = 0

    async def start(self) -> None:
        await super().start()
        status, config = await self._request("GET", "/ServiceProviderConfig")
        if status in (401, 403):
            raise TargetUnavailable(f"SCIM answered {status}: check the bearer token")
        if self._use_bulk is False:
            return
        bulk = config.get("bulk") if status == 200 and isinstance(config, dict) else None
        if isinstance(bulk, dict) and bulk.get("supported") is True:
            self.bulk_max_operations = int(bulk.get("maxOperations") or 0)
            self.bulk_max_bytes = int(bulk.get("maxPayloadSize") or 0)
        elif self._use_bulk:
            raise TargetUnavailable("the SCIM server does not offer /Bulk")

    @property
    def transport(self) -> str:
        return "bulk" if self.bulk_max_operations else "single"

    async def create_many(self, users: Sequence[UserLine]) -> list[Outcome]:
        documents = [scim_user_document(user) for user in users]
        if not self.bulk_max_operations:
            return list(await asyncio.gather(*(self._create_one(d) for d in documents)))
        outcomes: list[Outcome] = []
        step = self.bulk_max_operations
        for start in range(0, len(documents), step):
            outcomes += await self._bulk(documents[start : start + step])
        return outcomes

    async def existing(self, users: Sequence[UserLine]) -> set[str]:
        present: set[str] = set()
        for start in range(0, len(users), _FILTER_TERMS):
            chunk = users[start : start + _FILTER_TERMS]
            query = " or ".join(f'userName eq "{_quoted(user.user_name)}"' for user in chunk)
            params = {"filter": query, "attributes": "userName", "count": str(len(chunk))}
            status, found = await self._request("GET", "/Users", params=params)
            if status != 200 or not isinstance(found, dict):
                raise TargetUnavailable(f"SCIM GET /Users answered {status}")
            present.update(
                str(resource.get("userName", "")).casefold()
                for resource in found.get("Resources") or []
            )
        return present

    async def update(self, user: UserLine) -> Outcome:
        status, found = await self._request(
            "GET",
            "/Users",
            params={"filter": f'userName eq "{_quoted(user.user_name)}"', "attributes": "id"},
        )
        resources = found.get("Resources") if status == 200 and isinstance(found, dict) else None
        if not resources:
            return failed(f"SCIM {status} looking the existing user up")
        user_id = str(resources[0]["id"])
        body = json.dumps(scim_user_document(user) | {"id": user_id}).encode()
        status, answer = await self._request("PUT", f"/Users/{user_id}", body=body)
        return UPDATED if status == 200 else failed(_refusal(status, answer))

    async def _create_one(self, document: dict[str, Any]) -> Outcome:
        status, answer = await self._request("POST", "/Users", body=json.dumps(document).encode())
        return _outcome(status, answer)

    async def _bulk(self, documents: list[dict[str, Any]]) -> list[Outcome]:
        operations = [
            {"method": "POST", "path": "/Users", "bulkId": str(i), "data": document}
            for i, document in enumerate(documents)
        ]
        body = json.dumps({"schemas": [BULK_REQUEST], "Operations": operations}).encode()
        if self.bulk_max_bytes and len(body) > self.bulk_max_bytes and len(documents) > 1:
            half = len(documents) // 2
            return await self._bulk(documents[:half]) + await self._bulk(documents[half:])
        status, answer = await self._request("POST", "/Bulk", body=body)
        if status != 200 or not isinstance(answer, dict):
            raise TargetUnavailable(f"SCIM /Bulk answered {status}")
        by_id: dict[str, Outcome] = {}
        for result in answer.get("Operations") or []:
            op_status = _int(result.get("status"))
            if op_status in _RETRYABLE:
                raise TargetUnavailable(f"SCIM /Bulk operation answered {op_status}")
            by_id[str(result.get("bulkId"))] = _outcome(op_status, result.get("response"))
        missing = failed("SCIM /Bulk gave no result for the user")
        return [by_id.get(str(i), missing) for i in range(len(documents))]

    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        params: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        assert self._session is not None, "start() first"
        try:
            async with self._session.request(
                method, self._base + path, data=body, params=params
            ) as response:
                status = response.status
                text = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            # The type only: an aiohttp message may quote the request.
            raise TargetUnavailable(f"SCIM {method} {path} failed ({type(exc).__name__})") from None
        if status in _RETRYABLE:
            raise TargetUnavailable(f"SCIM {method} {path} answered {status}")
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            return status, None


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _outcome(status: int, answer: Any) -> Outcome:
    if status == 201:
        return CREATED
    if status == 409 and _scim_type(answer) in (None, "uniqueness"):
        return EXISTS
    return failed(_refusal(status, answer))


def _refusal(status: int, answer: Any) -> str:
    # status and scimType only: a `detail` may quote the submitted value.
    scim_type = _scim_type(answer)
    return f"SCIM {status}" + (f" {scim_type}" if scim_type else "")


def _scim_type(answer: Any) -> str | None:
    scim_type = answer.get("scimType") if isinstance(answer, dict) else None
    return scim_type if isinstance(scim_type, str) else None


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
