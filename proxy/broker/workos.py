"""The WorkOS User Management provisioner: create a user with the verified password.

``POST /user_management/users`` ``{"email", "password", "first_name", "last_name",
"email_verified"}`` (``password`` left out for a profile-only create, as a bulk import of a
user without a password does; a bulk import's hash goes as ``password_hash`` +
``password_hash_type`` instead) with the API key as a bearer token; found by
``GET /user_management/users?email=``. A 409, or a 422 whose code says the email is taken
(``email_not_available``, ``user_already_exists``), means the user is already there.
"""

from __future__ import annotations

from typing import Any

from proxy.broker.credential import Credential, Password, PasswordHash
from proxy.broker.provisioning import ProvisioningFailed
from proxy.broker.user_api import UserApi
from proxy.broker.verifier import Profile

_TAKEN = frozenset({"email_not_available", "user_already_exists", "user_exists"})
_USERS = "/user_management/users"


class WorkosProvisioner:
    def __init__(self, base_url: str, *, api_key: str, timeout_seconds: float) -> None:
        self._api = UserApi(base_url, name="WorkOS", token=api_key, timeout_seconds=timeout_seconds)

    async def start(self) -> None:
        await self._api.start()

    async def close(self) -> None:
        await self._api.close()

    async def exists(self, identifier: str, profile: Profile) -> bool:
        status, answer = await self._api.call("GET", _USERS, params={"email": _email(profile)})
        if status != 200 or not isinstance(answer, dict):
            raise self._api.failed("user search", status)
        return bool(answer.get("data"))

    async def create(self, credential: Credential, profile: Profile) -> bool:
        return await self.create_user(credential.identifier, profile, credential.password)

    async def create_user(
        self,
        identifier: str,
        profile: Profile,
        password: Password | None,
        password_hash: PasswordHash | None = None,
    ) -> bool:
        """Create the user, with `password` or `password_hash` when given; False when it
        already exists."""
        user: dict[str, Any] = {"email": _email(profile)}
        if password is not None:
            user["password"] = password.reveal()
        elif password_hash is not None:
            user["password_hash"] = password_hash.encoded
            user["password_hash_type"] = password_hash.hash_type
        user["email_verified"] = profile.email_verified
        if profile.given_name is not None:
            user["first_name"] = profile.given_name
        if profile.family_name is not None:
            user["last_name"] = profile.family_name
        status, answer = await self._api.call("POST", _USERS, body=user)
        if status in (200, 201):
            return True
        if status == 409 or (status == 422 and _codes(answer) & _TAKEN):
            return False
        raise self._api.failed("user creation", status)


def _email(profile: Profile) -> str:
    if profile.email is None:
        raise ProvisioningFailed("WorkOS users need an email: none from legacy or the identifier")
    return profile.email


def _codes(answer: Any) -> set[str]:
    """The error codes of a WorkOS error answer: its own and each of its `errors`."""
    if not isinstance(answer, dict):
        return set()
    codes = {answer.get("code")}
    errors = answer.get("errors")
    if isinstance(errors, list):
        codes.update(e.get("code") for e in errors if isinstance(e, dict))
    return {c for c in codes if isinstance(c, str)}
