"""The SCIM 2.0 provisioner (RFC 7643/7644), with scim2-client over aiohttp."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from scim2_client.client import BaseAsyncSCIMClient
from scim2_models import Email, ListResponse, Name, ScimProvider, UniquenessException, User

from proxy.broker.credential import Credential
from proxy.broker.http_client import HttpClient
from proxy.broker.provisioning import ProvisioningFailed
from proxy.broker.verifier import Profile


class _Answer:
    """An aiohttp answer as scim2-client reads it (status, headers, text)."""

    def __init__(self, status: int, headers: Any, text: str) -> None:
        self.status_code = status
        self.headers = headers
        self.text = text


class _AiohttpScimClient(BaseAsyncSCIMClient):
    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        super().__init__(provider=ScimProvider(models=[User]))
        self._session = session
        self._base = base_url.rstrip("/")

    def _stays_under_base_url(self, endpoint: str) -> bool:
        return endpoint.startswith("/") and not endpoint.startswith("//")

    async def request(self, method: str, url: str, **kwargs: Any) -> _Answer:
        async with self._session.request(method, self._base + url, **kwargs) as response:
            return _Answer(response.status, response.headers, await response.text())


class ScimProvisioner(HttpClient):
    """Creates a User with the verified password; finds users by userName."""

    def __init__(self, base_url: str, *, token: str | None, timeout_seconds: float) -> None:
        super().__init__(timeout_seconds, token=token)
        self._base_url = base_url
        self._client: _AiohttpScimClient | None = None

    async def start(self) -> None:
        await super().start()
        assert self._session is not None
        self._client = _AiohttpScimClient(self._session, self._base_url)

    async def exists(self, identifier: str, profile: Profile) -> bool:
        """Whether a User with this userName exists (userName is case-insensitive in SCIM)."""
        quoted = identifier.replace("\\", "\\\\").replace('"', '\\"')
        result = await self._call(
            self._scim.query(User, query_parameters={"filter": f'userName eq "{quoted}"'})
        )
        return isinstance(result, ListResponse) and bool(result.total_results)

    async def create(self, credential: Credential, profile: Profile) -> bool:
        """Create the user; False when the server says it already exists (409)."""
        user: User[Any] = User(
            user_name=credential.identifier,
            password=credential.password.reveal(),
            active=True,
            emails=[Email(value=profile.email, primary=True)] if profile.email else None,
            name=Name(
                formatted=profile.name,
                given_name=profile.given_name,
                family_name=profile.family_name,
            )
            if profile.name or profile.given_name or profile.family_name
            else None,
            display_name=profile.name,
        )
        try:
            await self._call(self._scim.create(user))
        except UniquenessException:
            return False
        return True

    @property
    def _scim(self) -> _AiohttpScimClient:
        assert self._client is not None, "start() first"
        return self._client

    async def _call(self, request: Any) -> Any:
        try:
            async with asyncio.timeout(self._timeout):
                return await request
        except UniquenessException:
            raise
        except Exception as exc:
            # scim2-client's errors can hold the request payload, password included.
            raise ProvisioningFailed(f"SCIM request failed ({type(exc).__name__})") from None
