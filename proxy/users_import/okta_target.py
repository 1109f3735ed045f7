"""Okta as the bulk import's target: the Users API with an API token (`SSWS`), behind the same
ProvisionerImportTarget as WorkOS and Kratos.

`POST /api/v1/users?activate=true` with `profile` (`login`, `email`, `firstName`, `lastName`)
and `credentials.password`: `{"value": ...}` for a clear-text password, `{"hash": {...}}` for a
hash in Okta's documented form (hash_passing.for_okta: BCRYPT, salted SHA-1/256/512). A user
without either is created with `activate=false` (STAGED): Okta would otherwise email them an
activation link. Found by `GET /api/v1/users/{login}` (200 / 404). Okta's default profile
requires firstName and lastName: a line without them is refused by Okta, for that user only.
An `E0000001` whose cause says the login already exists means the user is already there.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from proxy.broker.credential import Password, PasswordHash
from proxy.broker.user_api import UserApi
from proxy.broker.verifier import Profile

_USERS = "/api/v1/users"


class OktaProvisioner:
    def __init__(self, org_url: str, *, api_token: str, timeout_seconds: float) -> None:
        self._api = UserApi(
            org_url,
            name="Okta",
            token=None,
            timeout_seconds=timeout_seconds,
            headers={"Authorization": f"SSWS {api_token}"},
        )

    async def start(self) -> None:
        await self._api.start()

    async def close(self) -> None:
        await self._api.close()

    async def exists(self, identifier: str, profile: Profile) -> bool:
        status, _ = await self._api.call("GET", f"{_USERS}/{quote(identifier, safe='@')}")
        if status == 200:
            return True
        if status == 404:
            return False
        raise self._api.failed("user lookup", status)

    async def create_user(
        self,
        identifier: str,
        profile: Profile,
        password: Password | None,
        password_hash: PasswordHash | None = None,
    ) -> bool:
        """Create the user; False when its login is already taken."""
        user: dict[str, Any] = {
            "profile": {
                "login": identifier,
                "email": profile.email,
                "firstName": profile.given_name,
                "lastName": profile.family_name,
            }
        }
        if password is not None:
            user["credentials"] = {"password": {"value": password.reveal()}}
        elif password_hash is not None:
            user["credentials"] = {"password": {"hash": json.loads(password_hash.encoded)}}
        activate = "true" if "credentials" in user else "false"
        status, answer = await self._api.call(
            "POST", _USERS, body=user, params={"activate": activate}
        )
        if status == 200:
            return True
        if status == 400 and _login_taken(answer):
            return False
        raise self._api.failed("user creation", status)


def _login_taken(answer: Any) -> bool:
    if not isinstance(answer, dict) or answer.get("errorCode") != "E0000001":
        return False
    causes = answer.get("errorCauses")
    return isinstance(causes, list) and any(
        isinstance(cause, dict) and "already exists" in str(cause.get("errorSummary", ""))
        for cause in causes
    )
