"""The Ory Kratos provisioner: an identity with the verified password, by the admin API.

``POST /admin/identities`` ``{"schema_id", "traits": {<identifier_trait>: ...},
"credentials": {"password": {"config": {"password": ...}}}}`` (no ``credentials`` for a
profile-only create, as a bulk import of a user without a password does; a bulk import's hash
goes as ``{"config": {"hashed_password": ...}}``); found by
``GET /admin/identities?credentials_identifier=``. 409 means the identity is already there.
"""

from __future__ import annotations

from typing import Any

from proxy.broker.credential import Credential, Password, PasswordHash
from proxy.broker.user_api import UserApi
from proxy.broker.verifier import Profile

_IDENTITIES = "/admin/identities"


class KratosProvisioner:
    def __init__(
        self,
        admin_url: str,
        *,
        token: str | None,
        schema_id: str,
        identifier_trait: str,
        timeout_seconds: float,
    ) -> None:
        self._api = UserApi(admin_url, name="Kratos", token=token, timeout_seconds=timeout_seconds)
        self._schema_id = schema_id
        self._trait = identifier_trait

    async def start(self) -> None:
        await self._api.start()

    async def close(self) -> None:
        await self._api.close()

    async def exists(self, identifier: str, profile: Profile) -> bool:
        status, answer = await self._api.call(
            "GET", _IDENTITIES, params={"credentials_identifier": self._value(identifier, profile)}
        )
        if status != 200 or not isinstance(answer, list):
            raise self._api.failed("identity search", status)
        return bool(answer)

    async def create(self, credential: Credential, profile: Profile) -> bool:
        return await self.create_user(credential.identifier, profile, credential.password)

    async def create_user(
        self,
        identifier: str,
        profile: Profile,
        password: Password | None,
        password_hash: PasswordHash | None = None,
    ) -> bool:
        """Create the identity, with `password` or `password_hash` when given; False when it
        already exists."""
        identity: dict[str, Any] = {
            "schema_id": self._schema_id,
            "traits": {self._trait: self._value(identifier, profile)},
        }
        if password is not None:
            identity["credentials"] = {"password": {"config": {"password": password.reveal()}}}
        elif password_hash is not None:
            config = {"hashed_password": password_hash.encoded}
            identity["credentials"] = {"password": {"config": config}}
        status, _ = await self._api.call("POST", _IDENTITIES, body=identity)
        if status in (200, 201):
            return True
        if status == 409:
            return False
        raise self._api.failed("identity creation", status)

    def _value(self, identifier: str, profile: Profile) -> str:
        """The trait holding the login identifier: the address for an `email` trait."""
        if self._trait == "email" and profile.email is not None:
            return profile.email
        return identifier
