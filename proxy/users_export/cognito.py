"""Amazon Cognito user pools: `ListUsers` over the AWS JSON 1.1 protocol (`POST /`,
`X-Amz-Target: AWSCognitoIdentityProviderService.ListUsers`, body `UserPoolId`, `Limit` ≤ 60,
`PaginationToken`), signed with SigV4 (service `cognito-idp`) by read-only credentials
(`cognito-idp:ListUsers` only) from an AWS shared-credentials file.

Cognito never exports password hashes: its users keep their passwords through the JIT broker
(Cognito-style user migration at the new side) or a reset. Disabled users (`Enabled: false`) are
skipped (counted). Attributes: `sub` → external_id, `email`, `email_verified` ("true"/"false"),
`given_name`, `family_name`, `preferred_username` → username. Throttling is the documented
`TooManyRequestsException` (HTTP 400): waited out like a 429.
"""

from __future__ import annotations

import configparser
import json
from collections.abc import Generator
from pathlib import Path
from typing import Any

import httpx

from foundation.config_error import ConfigError
from foundation.secret_file import read_secret_file
from proxy.http.rate_limits import RateLimitedClient
from proxy.users_export.sigv4 import AwsCredentials, sign
from proxy.users_export.source import ExportFailed, Page, import_line, page_of

TARGET_PREFIX = "AWSCognitoIdentityProviderService."
CONTENT_TYPE = "application/x-amz-json-1.1"
MAX_PAGE_SIZE = 60


class CognitoUsers:
    def __init__(
        self, user_pool_id: str, endpoint: str, client: RateLimitedClient, *, page_size: int = 60
    ) -> None:
        self.user_pool_id = user_pool_id
        self.endpoint = endpoint.rstrip("/") + "/"
        self.client = client
        self.page_size = min(page_size, MAX_PAGE_SIZE)

    @property
    def identity(self) -> str:
        return f"cognito {self.user_pool_id} at {self.endpoint}"

    async def page(self, cursor: str | None) -> Page:
        body: dict[str, Any] = {"UserPoolId": self.user_pool_id, "Limit": self.page_size}
        if cursor is not None:
            body["PaginationToken"] = cursor
        answer = await cognito_action(self.client, self.endpoint, "ListUsers", body)
        users = answer.get("Users")
        if not isinstance(users, list):
            raise ExportFailed("Cognito ListUsers: no Users list in the answer")
        token = answer.get("PaginationToken")
        return page_of(users, cognito_line, token if isinstance(token, str) and token else None)

    async def close(self) -> None:
        await self.client.close()


async def cognito_action(
    client: RateLimitedClient, endpoint: str, action: str, body: dict[str, Any]
) -> dict[str, Any]:
    """One user-pool API action's answer (AWS JSON 1.1); ExportFailed names the error type."""
    response = await client.request(
        "POST",
        endpoint,
        content=json.dumps(body).encode(),
        headers={"Content-Type": CONTENT_TYPE, "X-Amz-Target": TARGET_PREFIX + action},
    )
    if response.status_code != 200:
        raise ExportFailed(f"Cognito {action}: {_error(response, action)}")
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise ExportFailed(f"Cognito {action}: the answer is not a JSON object")
    return answer


class SigV4Auth(httpx.Auth):
    """Signs each request as it is sent (a retried request is signed again, with a fresh date)."""

    requires_request_body = True

    def __init__(self, credentials: AwsCredentials, region: str) -> None:
        self.credentials = credentials
        self.region = region

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        names = ("content-type", "x-amz-target")
        signed = sign(
            self.credentials,
            method=request.method,
            host=request.headers["host"],
            path=request.url.path,
            query=list(request.url.params.multi_items()),
            headers={name: request.headers[name] for name in names if name in request.headers},
            body=request.content,
            region=self.region,
            service="cognito-idp",
        )
        request.headers.update(signed)
        yield request


def is_throttled(response: httpx.Response) -> bool:
    """Cognito's documented throttling answer (HTTP 400, not 429)."""
    return response.status_code == 400 and _error_type(response) in (
        "TooManyRequestsException",
        "LimitExceededException",
    )


def region_of(user_pool_id: str) -> str:
    """A pool id is `<region>_<id>`."""
    region, sep, rest = user_pool_id.partition("_")
    if not sep or not region or not rest:
        raise ConfigError(f"--user-pool-id '{user_pool_id}': not a pool id (<region>_<id>)")
    return region


def read_aws_credentials(path: Path, profile: str) -> AwsCredentials:
    """Keys from an AWS shared-credentials file (`[profile]` with aws_access_key_id,
    aws_secret_access_key, optionally aws_session_token); errors never carry a key."""
    text = read_secret_file(path, "--aws-credentials-file").decode()
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text if text.lstrip().startswith("[") else "[default]\n" + text)
    except configparser.Error:
        raise ConfigError(f"--aws-credentials-file '{path}': not an AWS credentials file") from None
    if not parser.has_section(profile):
        raise ConfigError(f"--aws-credentials-file '{path}': no [{profile}] profile")
    section = parser[profile]
    missing = [k for k in ("aws_access_key_id", "aws_secret_access_key") if not section.get(k)]
    if missing:
        raise ConfigError(f"--aws-credentials-file '{path}': [{profile}] has no {missing[0]}")
    return AwsCredentials(
        section["aws_access_key_id"],
        section["aws_secret_access_key"],
        section.get("aws_session_token") or None,
    )


def cognito_line(user: Any) -> dict[str, Any] | str:
    """A Cognito UserType as an import line, or why it can't be one."""
    if not isinstance(user, dict) or not isinstance(user.get("Attributes"), list):
        return "not a Cognito user object"
    if user.get("Enabled") is False:
        # Imported, a disabled user would be able to sign in again at the new provider.
        return "disabled at the source"
    attributes = {
        item.get("Name"): item.get("Value") for item in user["Attributes"] if isinstance(item, dict)
    }
    verified = attributes.get("email_verified")
    return import_line(
        {
            "email": attributes.get("email"),
            "email_verified": None if verified is None else verified == "true",
            "username": attributes.get("preferred_username"),
            "external_id": attributes.get("sub") or user.get("Username"),
            "given_name": attributes.get("given_name"),
            "family_name": attributes.get("family_name"),
        }
    )


def _error_type(response: httpx.Response) -> str:
    try:
        kind = response.json().get("__type", "")
    except (ValueError, AttributeError):
        return ""
    return str(kind).rsplit("#", 1)[-1]


def _error(response: httpx.Response, action: str) -> str:
    kind = _error_type(response) or "no error type"
    hint = {
        "NotAuthorizedException": f" (the credentials need cognito-idp:{action})",
        "UnrecognizedClientException": " (the access key is not known)",
        "InvalidSignatureException": " (the secret key does not match the access key)",
        "ResourceNotFoundException": " (no such user pool, or identity provider, in this region)",
    }.get(kind, "")
    return f"HTTP {response.status_code} {kind}{hint}"
