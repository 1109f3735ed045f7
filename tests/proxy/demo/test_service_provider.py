from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlencode

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.types import Message

from proxy.demo import (
    BIG_BODY_SHA256,
    BIG_BODY_SIZE,
    DemoIdP,
    TrustedIdP,
    create_service_provider_app,
)

from .conftest import FORM, LEGACY_ACS_URL, LEGACY_SP_ENTITY_ID

pytestmark = pytest.mark.anyio


def saml_body(idp: DemoIdP, **overrides: Any) -> bytes:
    fields: dict[str, Any] = {
        "destination": LEGACY_ACS_URL,
        "audience": LEGACY_SP_ENTITY_ID,
        "name_id": "ada@acme.example",
        **overrides,
    }
    return idp.mint_form_body(**fields, relay_state="acme:/dashboard")


async def test_valid_login_lands_with_identity_and_a_session_cookie(
    client: httpx.AsyncClient, idp: DemoIdP
) -> None:
    body = saml_body(idp)
    response = await client.post("/sso/acme/acs", content=body, headers=FORM)

    assert response.status_code == 200
    assert response.json() == {
        "landed": "new_provider",
        "valid": True,
        "error": None,
        "issuer": "https://idp.acme.example/saml/metadata",
        "name_id": "ada@acme.example",
        "connection": "acme",
        "path": "/sso/acme/acs",
        "body_sha256": hashlib.sha256(body).hexdigest(),
    }
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("new_provider_session=")
    for attribute in ("HttpOnly", "Secure", "SameSite=lax", "Path=/"):
        assert attribute in cookie


async def test_invalid_login_gets_no_session_and_no_payload_echo(
    client: httpx.AsyncClient, idp: DemoIdP
) -> None:
    body = saml_body(idp, audience="urn:some-other-sp")
    response = await client.post("/sso/acme/acs", content=body, headers=FORM)
    saml_response = dict(httpx.QueryParams(body.decode()))["SAMLResponse"]

    assert response.json()["valid"] is False
    assert "not a valid audience" in response.json()["error"]
    assert "set-cookie" not in response.headers
    assert saml_response[:40] not in response.text


async def test_saml_response_outside_a_form_post_is_not_a_login(
    client: httpx.AsyncClient, idp: DemoIdP
) -> None:
    body = saml_body(idp)
    as_json = await client.post("/sso/acme/acs", content=body)  # no urlencoded content type
    as_query = await client.get("/sso/acme/acs?" + body.decode())
    assert as_json.json() == {"landed": "new_provider", "path": "/sso/acme/acs"}
    assert as_query.json() == {"landed": "new_provider", "path": "/sso/acme/acs"}


async def test_duplicate_saml_response_is_a_bad_request(
    client: httpx.AsyncClient, idp: DemoIdP
) -> None:
    body = saml_body(idp) + b"&SAMLResponse=x"
    response = await client.post("/sso/acme/acs", content=body, headers=FORM)
    assert response.status_code == 400
    assert response.json()["error"] == "duplicate SAMLResponse"


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_oidc_callback_is_recorded_as_hashes_only(
    client: httpx.AsyncClient, new_provider: Starlette, method: str
) -> None:
    code, state = "SplxlOBeZQQYbYS6WxSbIA-code", "af0ifjsldkj-state"
    query = urlencode({"code": code, "state": state})
    if method == "GET":
        response = await client.get(f"/oauth2/callback?{query}")
    else:  # response_mode=form_post
        response = await client.post("/oauth2/callback", content=query.encode(), headers=FORM)

    assert response.json() == {
        "landed": "new_provider",
        "oidc": True,
        "code_sha256": hashlib.sha256(code.encode()).hexdigest(),
        "state_sha256": hashlib.sha256(state.encode()).hexdigest(),
        "path": "/oauth2/callback",
        "body_sha256": response.json()["body_sha256"],
    }
    assert code not in response.text
    assert state not in response.text
    recorded = new_provider.state.received[-1]
    assert recorded["method"] == method
    assert recorded["query_string"] == (query if method == "GET" else "")


async def test_received_log_hashes_the_exact_raw_bytes(
    client: httpx.AsyncClient, new_provider: Starlette
) -> None:
    # Same fields as "SAMLResponse=a%2Bb&RelayState=x", spelled differently on the wire.
    raw = b"RelayState=%78&SAMLResponse=a%2bb&"
    response = await client.post(
        "/sso/acme/acs?connection=acme&x=%2F",
        content=raw,
        headers={**FORM, "X-Forwarded-For": "203.0.113.7"},
    )

    [recorded] = new_provider.state.received
    assert recorded["body_sha256"] == hashlib.sha256(raw).hexdigest()
    assert recorded["body_sha256"] != hashlib.sha256(b"SAMLResponse=a%2Bb&RelayState=x").hexdigest()
    assert response.json()["body_sha256"] == recorded["body_sha256"]
    assert recorded["method"] == "POST"
    assert recorded["path"] == "/sso/acme/acs"
    assert recorded["query_string"] == "connection=acme&x=%2F"
    assert ("x-forwarded-for", "203.0.113.7") in recorded["headers"]
    assert recorded["time"] > 0


async def test_every_request_is_recorded_in_order(
    client: httpx.AsyncClient, new_provider: Starlette
) -> None:
    await client.get("/")
    await client.delete("/account")
    await client.get("/redirect-test")
    seen = [(r["method"], r["path"]) for r in new_provider.state.received]
    assert seen == [("GET", "/"), ("DELETE", "/account"), ("GET", "/redirect-test")]


async def test_ordinary_page_answers_with_its_path(client: httpx.AsyncClient) -> None:
    response = await client.get("/login?next=/app")
    assert response.status_code == 200
    assert response.json() == {"landed": "new_provider", "path": "/login"}


async def test_redirect_test_page_redirects_with_a_cookie(client: httpx.AsyncClient) -> None:
    response = await client.get("/redirect-test")
    assert response.status_code == 302
    assert response.headers["location"] == "/somewhere"
    assert response.headers["set-cookie"].startswith("new_provider_redirect=")


async def test_big_page_is_streamed_in_chunks(new_provider: Starlette) -> None:
    sent: list[Message] = []
    requests = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> Message:
        if requests:
            return requests.pop()
        await anyio.sleep_forever()  # the client stays connected until the body is done
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/big",
        "raw_path": b"/big",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"new-provider")],
        "server": ("new-provider", 80),
        "client": ("127.0.0.1", 50000),
    }
    await new_provider(scope, receive, send)

    start, *bodies = sent
    assert start["status"] == 200
    assert b"content-length" not in dict(start["headers"])
    chunks = [m["body"] for m in bodies if m["body"]]
    assert len(chunks) > 1
    body = b"".join(chunks)
    assert len(body) == BIG_BODY_SIZE == 1 << 20
    assert hashlib.sha256(body).hexdigest() == BIG_BODY_SHA256


def test_name_must_be_usable_as_a_cookie_name(trusted: TrustedIdP) -> None:
    with pytest.raises(ValueError, match="names a cookie"):
        create_service_provider_app(
            name="new provider",
            sp_entity_id=LEGACY_SP_ENTITY_ID,
            public_acs_url=LEGACY_ACS_URL,
            trusted_idps=[trusted],
        )
