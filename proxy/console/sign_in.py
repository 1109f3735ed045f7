"""Sign-in: trusted headers from an auth proxy in front, or OpenID Connect at the company IdP
(authlib: authorization code with PKCE, state and nonce checked, the ID token's signature,
issuer, audience and expiry verified); the session is a signed cookie holding who signed in
and when, and the CSRF token every write must echo."""

from __future__ import annotations

import hmac
import logging
import secrets
import warnings
from collections.abc import Callable
from typing import Any

import httpx
from authlib.deprecate import AuthlibDeprecationWarning
from joserfc.errors import JoseError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from foundation.secret_file import read_secret_file
from proxy.console.identity import Person, SignInRefused, person_from, person_from_headers
from proxy.console.settings import ConsoleSettings, OidcSignIn

with warnings.catch_warnings():  # authlib prefers httpx2; httpx is what authswitch ships
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.common.errors import AuthlibBaseError
    from authlib.integrations.base_client import OAuthError
    from authlib.integrations.starlette_client import OAuth

log = logging.getLogger("authswitch.console")
# authlib logs the PKCE verifier and token requests at debug level: never let them through.
logging.getLogger("authlib").setLevel(logging.WARNING)
_SESSION_PERSON = "person"
_SESSION_CSRF = "csrf"
_SESSION_NEXT = "next"


class SignIn:
    """Who is making a request, in the configured sign-in mode."""

    def __init__(self, settings: ConsoleSettings, clock: Callable[[], float]) -> None:
        self._settings = settings
        self._clock = clock
        self._oidc = _oidc_client(settings.oidc) if settings.sign_in == "oidc" else None

    @property
    def uses_oidc(self) -> bool:
        return self._oidc is not None

    def person(self, request: Request) -> Person | None:
        """The signed-in person; None when OIDC sign-in is needed; ``SignInRefused`` if refused."""
        settings = self._settings
        if settings.sign_in == "trusted_header":
            assert settings.trusted_header is not None
            client = request.client.host if request.client else None
            person = person_from_headers(
                client, dict(request.headers), settings.trusted_header, settings.roles
            )
            if request.session.get(_SESSION_PERSON) != person.name:  # a new session per person
                request.session.clear()
                request.session[_SESSION_PERSON] = person.name
            return person
        stored = request.session.get(_SESSION_PERSON)
        if not isinstance(stored, dict):
            return None
        if self._clock() - float(stored.get("at", 0)) > settings.session_max_age_seconds:
            request.session.clear()
            return None
        return person_from(
            stored.get("name"), stored.get("email"), stored.get("groups", []), settings.roles
        )

    async def start(self, request: Request) -> Response:
        """Send the browser to the IdP (state, nonce and PKCE verifier kept in the session)."""
        assert self._oidc is not None
        request.session.clear()
        target = request.query_params.get("next", "")
        request.session[_SESSION_NEXT] = target if _local(target) else "/console/connections"
        redirect_uri = str(request.url_for("console_oidc_callback"))
        try:
            response: Response = await self._oidc.authorize_redirect(request, redirect_uri)
        except httpx.HTTPError as exc:  # the discovery document
            raise SignInRefused(
                502, f"the IdP could not be reached ({type(exc).__name__})"
            ) from None
        return response

    async def finish(self, request: Request) -> Response:
        """The IdP's redirect back: exchange the code, verify the ID token, start the session."""
        assert self._oidc is not None
        try:
            token: dict[str, Any] = await self._oidc.authorize_access_token(request)
        except OAuthError as exc:
            # The error code only: the description may quote what the IdP received.
            log.warning("console sign-in failed", extra={"error": exc.error})
            raise SignInRefused(401, f"sign-in failed ({exc.error}); try again") from None
        except (JoseError, AuthlibBaseError) as exc:  # the ID token: signature, claims, nonce
            log.warning("console sign-in failed", extra={"error": type(exc).__name__})
            raise SignInRefused(401, "sign-in failed (the ID token was not valid)") from None
        except httpx.HTTPError as exc:  # the token endpoint or the keys
            log.warning("console sign-in failed", extra={"error": type(exc).__name__})
            raise SignInRefused(502, f"the IdP did not answer ({type(exc).__name__})") from None
        claims = token.get("userinfo") or {}
        oidc = self._settings.oidc
        assert oidc is not None
        groups = claims.get(oidc.groups_claim) or []
        if isinstance(groups, str):
            groups = [groups]
        person = person_from(
            str(claims.get("preferred_username") or claims.get("sub") or ""),
            str(claims["email"]) if claims.get("email") else None,
            [str(g) for g in groups if isinstance(g, str)],
            self._settings.roles,
        )
        target = request.session.get(_SESSION_NEXT, "/console/connections")
        request.session.clear()  # nothing of the flow (state, nonce, verifier) outlives it
        request.session[_SESSION_PERSON] = {
            "name": person.name,
            "email": person.email,
            "groups": list(person.groups),
            "at": self._clock(),
        }
        log.info("console sign-in", extra={"actor": person.name, "role": person.role})
        return RedirectResponse(target if _local(target) else "/console/connections", 303)


def csrf_token(request: Request) -> str:
    """The session's CSRF token (made on first use)."""
    token = request.session.get(_SESSION_CSRF)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session[_SESSION_CSRF] = token
    return token


def csrf_matches(request: Request, submitted: object) -> bool:
    expected = request.session.get(_SESSION_CSRF)
    return (
        isinstance(expected, str)
        and isinstance(submitted, str)
        and hmac.compare_digest(expected.encode(), submitted.encode())
    )


def session_secret(settings: ConsoleSettings) -> str:
    assert settings.session_secret_file is not None
    secret = read_secret_file(
        settings.session_secret_file, "console.session_secret_file", min_bytes=32
    )
    return secret.decode("latin-1")


def _local(target: str) -> bool:
    """Only a console path: never an open redirect to another site."""
    return target.startswith("/console/") and not target.startswith("//") and "\\" not in target


def _oidc_client(settings: OidcSignIn | None) -> Any:
    assert settings is not None
    secret = (
        read_secret_file(settings.client_secret_file, "console.oidc.client_secret_file").decode()
        if settings.client_secret_file is not None
        else None
    )
    issuer = str(settings.issuer).rstrip("/")
    oauth = OAuth()
    return oauth.register(
        "company",
        client_id=settings.client_id,
        client_secret=secret,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={
            "scope": settings.scopes,
            "code_challenge_method": "S256",
            "timeout": settings.timeout_seconds,
            **({} if secret else {"token_endpoint_auth_method": "none"}),
        },
    )
