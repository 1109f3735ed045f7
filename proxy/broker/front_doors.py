"""The hook contracts new providers call: read the credential, write the documented answer.

- generic: ``POST {prefix}/generic`` ``{"identifier", "password"}`` -> 200 ``{"verified": bool}``.
- okta: the password import inline hook (``com.okta.user.credential.password.import``):
  the credential is in ``data.context.credential.{username,password}``; the answer is always
  200 with one ``com.okta.action.update`` command setting ``credential`` to VERIFIED or
  UNVERIFIED. Okta waits 3 s, then retries once.
- kratos: the Ory Kratos password migration webhook ``{"identifier", "password"}`` -> 200
  ``{"status": "password_match"}``; anything else is a failed login for Kratos (403 here).
- cognito: the Cognito user migration Lambda event, forwarded as is by a small Lambda
  (``triggerSource``, ``userName``, ``request.password``, ``response``;
  examples/cognito-migrate-user.mjs). Verified: 200 with the event back (less
  ``request.password``), ``response.userAttributes`` set (``email`` and ``email_verified``
  "true"/"false" when an address is known; ``name``, ``given_name``, ``family_name`` when legacy
  has them; else ``preferred_username``: Cognito needs one), ``finalUserStatus`` "CONFIRMED",
  ``messageAction`` "SUPPRESS". Not verified: 401
  ``{"errorType": "NotAuthorizedException", "errorMessage": "Incorrect username or password."}``,
  which the Lambda throws. ``UserMigration_ForgotPassword`` carries no password: it is answered
  with that same 401 without looking the user up, so a reset neither migrates a user nor tells
  whether one exists.
- auth0: an Auth0 custom database login script posts ``{"email" or "username", "password"}``.
  Verified: 200 with the profile ``{"user_id", "email", "email_verified", "name",
  "given_name", "family_name"}`` (``user_id`` is the case-folded identifier; absent values are
  left out; ``username`` is echoed when the request used it). Not verified: 401
  ``{"error": "wrong_credentials", "error_description": "Wrong email or password."}``, which the
  script turns into ``WrongUsernameOrPasswordError`` (examples/auth0-login.js).

Every door answers an unknown user exactly as it answers a wrong password.

The end user's address, for the per-address rate limit, is read from the payload where the
provider puts one: okta ``data.context.request.ipAddress``; generic and kratos an optional
``client_ip`` (a Kratos hook body template can add it). Cognito's event and Auth0's login
script carry none. The address of the hook's caller (the provider's servers, a load balancer)
is never used: one bucket shared by every user would let anyone lock everyone out.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from proxy.broker.credential import Credential, Password
from proxy.broker.verifier import Profile

_MAX_FIELD = 1024  # an identifier or password longer than this is not a login

Answer = tuple[int, dict[str, object]]
NO_PASSWORD = object()  # what a reader gives for a request that asks for no password check


class BadHookRequest(Exception):
    """The body is not the door's documented request (the message never quotes it)."""


@dataclass(frozen=True)
class HookRequest:
    """A door's request, read: the parsed document and the credential in it."""

    document: Any
    identifier: str
    # None: the request asks for no password check (Cognito's forgot-password): denied.
    password: Password | None = field(repr=False)
    client_ip: str | None = None  # the end user's address, where the payload carries it

    @property
    def credential(self) -> Credential | None:
        return None if self.password is None else Credential(self.identifier, self.password)


@dataclass(frozen=True)
class FrontDoor:
    name: str
    read: Callable[[Any], tuple[Any, Any]]  # parsed JSON -> (identifier, password/NO_PASSWORD)
    # (request, the verified user's profile or None) -> (status, body)
    answer: Callable[[HookRequest, Profile | None], Answer]
    # parsed JSON -> the end user's address as the provider gave it, or None
    client_ip: Callable[[Any], Any] = lambda document: None

    def request(self, body: bytes) -> HookRequest:
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise BadHookRequest("the body is not JSON") from None
        except RecursionError:  # the parser's own guard against deep nesting
            raise BadHookRequest("the body's JSON is nested too deeply") from None
        try:
            identifier, password = self.read(document)
        except (KeyError, TypeError, AttributeError):
            raise BadHookRequest(f"not a {self.name} hook request") from None
        if not _is_field(identifier) or not (password is NO_PASSWORD or _is_field(password)):
            raise BadHookRequest(f"not a {self.name} hook request")
        for name, value in (("identifier", identifier), ("password", password)):
            if isinstance(value, str) and not _is_unicode(value):
                raise BadHookRequest(f"the {name} is not valid Unicode (a lone surrogate)")
        return HookRequest(
            document,
            identifier,
            None if password is NO_PASSWORD else Password(password),
            _address(self.client_ip, document),
        )


def _address(read: Callable[[Any], Any], document: Any) -> str | None:
    """The end user's address as a rate-limit key (an IPv6 address counts as its /64, which
    one subscriber usually holds whole); None when absent or not an address."""
    try:
        value = read(document)
        address = ipaddress.ip_address(value.strip()) if isinstance(value, str) else None
    except (KeyError, TypeError, AttributeError, ValueError):
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    if isinstance(address, ipaddress.IPv6Address):
        return str(address.ipv4_mapped)
    return None if address is None else str(address)


def _client_ip_field(document: Any) -> Any:
    return document.get("client_ip")


def _okta_ip_address(document: Any) -> Any:
    return document["data"]["context"]["request"]["ipAddress"]


def _is_field(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= _MAX_FIELD


def _is_unicode(value: str) -> bool:
    """JSON's \\uD800-style escapes can make a string no UTF-8 can carry (no hash, no key)."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _read_flat(document: Any) -> tuple[Any, Any]:
    return document["identifier"], document["password"]


def _read_okta(document: Any) -> tuple[Any, Any]:
    credential = document["data"]["context"]["credential"]
    return credential["username"], credential["password"]


def _read_cognito(document: Any) -> tuple[Any, Any]:
    if not isinstance(document.get("response", {}), dict | None):
        raise TypeError("response")
    source = document["triggerSource"]
    if source == "UserMigration_Authentication":
        return document["userName"], document["request"]["password"]
    if source == "UserMigration_ForgotPassword":
        return document["userName"], NO_PASSWORD
    raise KeyError("triggerSource")


def _read_auth0(document: Any) -> tuple[Any, Any]:
    identifier = document["email"] if "email" in document else document["username"]
    return identifier, document["password"]


def _answer_generic(request: HookRequest, profile: Profile | None) -> Answer:
    return 200, {"verified": profile is not None}


def _answer_okta(request: HookRequest, profile: Profile | None) -> Answer:
    value = "VERIFIED" if profile is not None else "UNVERIFIED"
    return 200, {"commands": [{"type": "com.okta.action.update", "value": {"credential": value}}]}


def _answer_kratos(request: HookRequest, profile: Profile | None) -> Answer:
    if profile is not None:
        return 200, {"status": "password_match"}
    return 403, {"error": "invalid_credentials"}


_COGNITO_DENIED: Answer = (
    401,
    {"errorType": "NotAuthorizedException", "errorMessage": "Incorrect username or password."},
)


def _answer_cognito(request: HookRequest, profile: Profile | None) -> Answer:
    if profile is None:
        return _COGNITO_DENIED
    # Standard attributes only: Cognito refuses names its user pool schema doesn't have (the
    # user's name is the event's `userName`). It needs at least one attribute.
    attributes: dict[str, str] = {}
    if profile.email is not None:
        attributes["email"] = profile.email
        attributes["email_verified"] = "true" if profile.email_verified else "false"
    attributes.update(_names(profile))
    if not attributes:
        attributes["preferred_username"] = request.identifier
    event = dict(request.document)
    # Cognito reads only `response`; the password doesn't travel back.
    event["request"] = {k: v for k, v in event["request"].items() if k != "password"}
    event["response"] = {
        **(event.get("response") or {}),
        "userAttributes": attributes,
        "finalUserStatus": "CONFIRMED",
        "messageAction": "SUPPRESS",
    }
    return 200, event


def _answer_auth0(request: HookRequest, profile: Profile | None) -> Answer:
    if profile is None:
        return 401, {"error": "wrong_credentials", "error_description": "Wrong email or password."}
    user: dict[str, object] = {"user_id": request.identifier.strip().casefold()}
    if profile.email is not None:
        user["email"] = profile.email
        user["email_verified"] = profile.email_verified
    if "email" not in request.document:
        user["username"] = request.identifier
    user.update(_names(profile))
    return 200, user


def _names(profile: Profile) -> dict[str, str]:
    names = {
        "name": profile.name,
        "given_name": profile.given_name,
        "family_name": profile.family_name,
    }
    return {key: value for key, value in names.items() if value is not None}


FRONT_DOORS: dict[str, FrontDoor] = {
    "generic": FrontDoor("generic", _read_flat, _answer_generic, _client_ip_field),
    "okta": FrontDoor("okta", _read_okta, _answer_okta, _okta_ip_address),
    "kratos": FrontDoor("kratos", _read_flat, _answer_kratos, _client_ip_field),
    "cognito": FrontDoor("cognito", _read_cognito, _answer_cognito),
    "auth0": FrontDoor("auth0", _read_auth0, _answer_auth0),
}
