"""The hook contracts new providers call: read the credential, write the documented answer.

- generic: ``POST {prefix}/generic`` ``{"identifier", "password"}`` -> 200 ``{"verified": bool}``.
- okta: the password import inline hook (``com.okta.user.credential.password.import``):
  the credential is in ``data.context.credential.{username,password}``; the answer is always
  200 with one ``com.okta.action.update`` command setting ``credential`` to VERIFIED or
  UNVERIFIED. Okta waits 3 s, then retries once.
- kratos: the Ory Kratos password migration webhook ``{"identifier", "password"}`` -> 200
  ``{"status": "password_match"}``; anything else is a failed login for Kratos (403 here).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from proxy.broker.credential import Credential, Password

_MAX_FIELD = 1024  # an identifier or password longer than this is not a login


class BadHookRequest(Exception):
    """The body is not the door's documented request (the message never quotes it)."""


@dataclass(frozen=True)
class FrontDoor:
    name: str
    read: Callable[[Any], tuple[Any, Any]]  # parsed JSON -> (identifier, password)
    answer: Callable[[bool], tuple[int, dict[str, object]]]

    def credential(self, body: bytes) -> Credential:
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise BadHookRequest("the body is not JSON") from None
        try:
            identifier, password = self.read(document)
        except (KeyError, TypeError):
            raise BadHookRequest(f"not a {self.name} hook request") from None
        for value in (identifier, password):
            if not isinstance(value, str) or not value or len(value) > _MAX_FIELD:
                raise BadHookRequest(f"not a {self.name} hook request")
        return Credential(identifier, Password(password))


def _read_flat(document: Any) -> tuple[Any, Any]:
    return document["identifier"], document["password"]


def _read_okta(document: Any) -> tuple[Any, Any]:
    credential = document["data"]["context"]["credential"]
    return credential["username"], credential["password"]


def _answer_generic(verified: bool) -> tuple[int, dict[str, object]]:
    return 200, {"verified": verified}


def _answer_okta(verified: bool) -> tuple[int, dict[str, object]]:
    value = "VERIFIED" if verified else "UNVERIFIED"
    return 200, {"commands": [{"type": "com.okta.action.update", "value": {"credential": value}}]}


def _answer_kratos(verified: bool) -> tuple[int, dict[str, object]]:
    if verified:
        return 200, {"status": "password_match"}
    return 403, {"error": "invalid_credentials"}


FRONT_DOORS: dict[str, FrontDoor] = {
    "generic": FrontDoor("generic", _read_flat, _answer_generic),
    "okta": FrontDoor("okta", _read_okta, _answer_okta),
    "kratos": FrontDoor("kratos", _read_flat, _answer_kratos),
}
