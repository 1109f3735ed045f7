from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from proxy.demo import DemoIdP, KeyPair, TrustedIdP, create_service_provider_app, generate_keypair

IDP_ENTITY_ID = "https://idp.acme.example/saml/metadata"
LEGACY_ACS_URL = "https://auth.legacy.example/sso/acme/acs"
LEGACY_SP_ENTITY_ID = "urn:legacy:sp"
FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="session")
def idp_keys() -> KeyPair:
    return generate_keypair("idp.acme.example")


@pytest.fixture
def idp(idp_keys: KeyPair) -> DemoIdP:
    return DemoIdP(IDP_ENTITY_ID, idp_keys)


@pytest.fixture
def trusted(idp_keys: KeyPair) -> TrustedIdP:
    return TrustedIdP(connection_id="acme", entity_id=IDP_ENTITY_ID, cert_pem=idp_keys.cert_pem)


@pytest.fixture
def new_provider(trusted: TrustedIdP) -> Starlette:
    return create_service_provider_app(
        name="new_provider",
        sp_entity_id=LEGACY_SP_ENTITY_ID,
        public_acs_url=LEGACY_ACS_URL,
        trusted_idps=[trusted],
    )


@pytest.fixture
async def client(new_provider: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=new_provider)
    async with httpx.AsyncClient(transport=transport, base_url="http://new-provider") as client:
        yield client
