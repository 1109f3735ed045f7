"""Servers that speak the legacy providers' documented user APIs on loopback, for the export
tests: request and answer shapes, pagination, authentication and rate limiting as each vendor's
API reference describes them. Users are made from the reference's own example objects
(fixtures/), varied by number."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from proxy.demo.loopback_server import LoopbackServer
from proxy.users_export.sigv4 import AwsCredentials, sign

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


class VendorServer:
    """What every fake shares: a loopback server, a request log, 429s on chosen requests and
    a delay per page (so a test can kill an export mid-way)."""

    def __init__(self, routes: list[Route]) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # method, path, headers
        self.throttle: set[int] = set()  # 1-based numbers of list requests answered 429
        self.list_requests = 0
        self.delay_seconds = 0.0
        self.hold_after: int | None = None  # list requests after this many wait for `released`
        self.released = threading.Event()
        self.served: Counter[str] = Counter()  # users served, by external id
        self.clock = time.time  # the server's clock, for its rate-limit reset times
        self.reset_after_seconds = 1
        self.server = LoopbackServer(Starlette(routes=routes), name=type(self).__name__)
        self.server.start()
        self.url = self.server.url

    def stop(self) -> None:
        self.server.stop()

    def _log(self, request: Request) -> None:
        self.requests.append((request.method, request.url.path, dict(request.headers)))

    def reset_epoch(self) -> str:
        return str(int(self.clock()) + self.reset_after_seconds)

    async def _throttled(self) -> bool:
        self.list_requests += 1
        if self.hold_after is not None and self.list_requests > self.hold_after:
            await asyncio.to_thread(self.released.wait, 60)  # an export is killed meanwhile
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        return self.list_requests in self.throttle


# -- Okta ---------------------------------------------------------------------------------------


def okta_user(i: int, **changes: Any) -> dict[str, Any]:
    user = fixture("okta_user.json")
    user["id"] = f"00u{i:017d}"
    user["profile"].update(
        firstName=f"Isaac{i}",
        lastName=f"Brock{i}",
        email=f"isaac{i}@example.com",
        login=f"isaac{i}@example.com",
    )
    user.update(changes)
    return dict(user)


class FakeOkta(VendorServer):
    """Okta Users API: GET /api/v1/users?limit=&after=, `Authorization: SSWS token`, Link
    headers (self, next), 429 with X-Rate-Limit-* headers and error E0000047."""

    def __init__(self, users: list[dict[str, Any]], token: str) -> None:
        self.users = sorted(users, key=lambda user: str(user["id"]))
        self.token = token
        super().__init__([Route("/api/v1/users", self.list_users)])

    async def list_users(self, request: Request) -> Response:
        self._log(request)
        if request.headers.get("authorization") != f"SSWS {self.token}":
            return JSONResponse(
                {
                    "errorCode": "E0000011",
                    "errorSummary": "Invalid token provided",
                    "errorLink": "E0000011",
                    "errorId": "oaeVkGd0B2ZTXK6QHWNQGd1sQ",
                    "errorCauses": [],
                },
                status_code=401,
            )
        if await self._throttled():
            return JSONResponse(
                {
                    "errorCode": "E0000047",
                    "errorSummary": "API call exceeded rate limit due to too many requests.",
                    "errorCauses": [],
                },
                status_code=429,
                headers={
                    "X-Rate-Limit-Limit": "600",
                    "X-Rate-Limit-Remaining": "0",
                    "X-Rate-Limit-Reset": self.reset_epoch(),
                },
            )
        limit = min(int(request.query_params.get("limit", "200")), 200)
        after = request.query_params.get("after")
        start = (
            0
            if after is None
            else next(i + 1 for i, user in enumerate(self.users) if user["id"] == after)
        )
        page = self.users[start : start + limit]
        base = f"{self.url}/api/v1/users"
        links = [f'<{base}?limit={limit}>; rel="self"']
        if start + limit < len(self.users):
            links.append(f'<{base}?after={page[-1]["id"]}&limit={limit}>; rel="next"')
        self.served.update(user["id"] for user in page)
        return JSONResponse(page, headers={"Link": ", ".join(links)})


# -- Auth0 --------------------------------------------------------------------------------------


def auth0_user(i: int, **changes: Any) -> dict[str, Any]:
    user = fixture("auth0_user.json")
    user.update(
        user_id=f"auth0|{i:024x}",
        email=f"john{i}@example.com",
        username=f"john{i}",
        given_name=f"John{i}",
        family_name=f"Doe{i}",
        email_verified=i % 2 == 0,
        created_at=f"2020-01-01T00:00:{i % 60:02d}.{i:03d}Z",
    )
    user.update(changes)
    return dict(user)


class FakeAuth0(VendorServer):
    """Auth0 Management API v2: GET /api/v2/users (page, per_page ≤ 100, include_totals, the
    first 1000 users only), the users-exports job, Bearer tokens, 429 with X-RateLimit-*."""

    def __init__(self, users: list[dict[str, Any]], token: str) -> None:
        self.users = users  # in order of creation
        self.token = token
        self.jobs: dict[str, int] = {}  # job id -> polls so far
        self.job_bodies: list[Any] = []
        super().__init__(
            [
                Route("/api/v2/users", self.list_users),
                Route("/api/v2/jobs/users-exports", self.create_job, methods=["POST"]),
                Route("/api/v2/jobs/{job_id}", self.get_job),
                Route("/exports/{job_id}.json.gz", self.download),
            ]
        )

    def _unauthorized(self, request: Request) -> Response | None:
        self._log(request)
        if request.headers.get("authorization") == f"Bearer {self.token}":
            return None
        return JSONResponse(
            {"statusCode": 401, "error": "Unauthorized", "message": "Invalid token"},
            status_code=401,
        )

    async def list_users(self, request: Request) -> Response:
        if (refused := self._unauthorized(request)) is not None:
            return refused
        if await self._throttled():
            return JSONResponse(
                {
                    "statusCode": 429,
                    "error": "Too Many Requests",
                    "message": "Global limit has been reached",
                    "errorCode": "too_many_requests",
                },
                status_code=429,
                headers={
                    "x-ratelimit-limit": "50",
                    "x-ratelimit-remaining": "0",
                    "x-ratelimit-reset": self.reset_epoch(),
                },
            )
        page = int(request.query_params.get("page", "0"))
        per_page = int(request.query_params.get("per_page", "50"))
        if per_page > 100 or (page + 1) * per_page > 1000:
            return JSONResponse(
                {
                    "statusCode": 400,
                    "error": "Bad Request",
                    "message": "You can only page through the first 1000 records. See "
                    "https://auth0.com/docs/users/search/v3/view-search-results-by-page#limitation",
                    "errorCode": "invalid_paging",
                },
                status_code=400,
            )
        assert request.query_params.get("sort") == "created_at:1"
        chunk = self.users[page * per_page : (page + 1) * per_page]
        fields = request.query_params.get("fields")
        if fields:
            chunk = [{k: v for k, v in u.items() if k in fields.split(",")} for u in chunk]
        self.served.update(user["user_id"] for user in chunk)
        if request.query_params.get("include_totals") != "true":
            return JSONResponse(chunk)
        return JSONResponse(
            {
                "start": page * per_page,
                "limit": per_page,
                "length": len(chunk),
                "total": len(self.users),
                "users": chunk,
            }
        )

    async def create_job(self, request: Request) -> Response:
        if (refused := self._unauthorized(request)) is not None:
            return refused
        body = await request.json()
        self.job_bodies.append(body)
        job_id = f"job_{len(self.jobs) + 1:016d}"
        self.jobs[job_id] = 0
        return JSONResponse(
            {
                "type": "users_export",
                "status": "pending",
                "format": body["format"],
                "created_at": "2024-01-01T00:00:00.000Z",
                "fields": body["fields"],
                "id": job_id,
            },
            status_code=201,
        )

    async def get_job(self, request: Request) -> Response:
        if (refused := self._unauthorized(request)) is not None:
            return refused
        job_id = request.path_params["job_id"]
        self.jobs[job_id] += 1
        job: dict[str, Any] = {
            "type": "users_export",
            "id": job_id,
            "format": "json",
            "created_at": "2024-01-01T00:00:00.000Z",
        }
        if self.jobs[job_id] < 3:
            job["status"] = "processing"
        else:
            job.update(status="completed", location=f"{self.url}/exports/{job_id}.json.gz")
        return JSONResponse(job)

    async def download(self, request: Request) -> Response:
        self._log(request)
        # A pre-signed URL: S3 refuses a second authentication mechanism.
        if "authorization" in request.headers:
            return Response(b"<Error><Code>InvalidArgument</Code></Error>", status_code=400)
        fields = [field["name"] for field in self.job_bodies[-1]["fields"]]
        lines = [json.dumps({k: user[k] for k in fields if k in user}) for user in self.users]
        self.served.update(user["user_id"] for user in self.users)
        return Response(
            gzip.compress("\n".join(lines).encode() + b"\n"), media_type="application/gzip"
        )


# -- Cognito ------------------------------------------------------------------------------------


def cognito_user(i: int, *, enabled: bool = True, verified: bool = True) -> dict[str, Any]:
    user = fixture("cognito_user.json")
    sub = f"7f5bb1a0-0000-4000-8000-{i:012d}"
    values = {
        "sub": sub,
        "email": f"jane{i}@example.com",
        "given_name": f"Jane{i}",
        "family_name": f"Doe{i}",
        "email_verified": "true" if verified else "false",
    }
    user["Username"] = sub
    user["Attributes"] = [
        {"Name": k, "Value": values[k]} for k in (item["Name"] for item in user["Attributes"])
    ]
    user["Enabled"] = enabled
    return dict(user)


class FakeCognito(VendorServer):
    """The Cognito user-pool API's ListUsers (AWS JSON 1.1, SigV4-authenticated: the
    signature is recomputed with the secret key and compared), PaginationToken, Limit ≤ 60,
    throttling as HTTP 400 TooManyRequestsException."""

    def __init__(
        self, users: list[dict[str, Any]], credentials: AwsCredentials, pool_id: str
    ) -> None:
        self.users = users
        self.credentials = credentials
        self.pool_id = pool_id
        self.region = pool_id.split("_")[0]
        super().__init__([Route("/", self.endpoint, methods=["POST"])])

    def _error(self, kind: str, message: str) -> Response:
        return JSONResponse(
            {"__type": kind, "message": message},
            status_code=400,
            media_type="application/x-amz-json-1.1",
        )

    async def endpoint(self, request: Request) -> Response:
        self._log(request)
        body = await request.body()
        if (
            request.headers.get("x-amz-target") != ("AWSCognitoIdentityProviderService.ListUsers")
            or request.headers.get("content-type") != "application/x-amz-json-1.1"
        ):
            return self._error("UnknownOperationException", "")
        if not self._signed(request, body):
            return self._error(
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided.",
            )
        if await self._throttled():
            return self._error("TooManyRequestsException", "Too many requests")
        params = json.loads(body)
        if params.get("UserPoolId") != self.pool_id:
            return self._error("ResourceNotFoundException", "User pool does not exist.")
        limit = params.get("Limit", 60)
        if not 0 <= limit <= 60:
            return self._error("InvalidParameterException", "Limit must be 0..60")
        token = params.get("PaginationToken")
        start = 0 if token is None else int(base64.b64decode(token))
        chunk = self.users[start : start + limit]
        self.served.update(user["Username"] for user in chunk)
        answer: dict[str, Any] = {"Users": chunk}
        if start + limit < len(self.users):
            answer["PaginationToken"] = base64.b64encode(str(start + limit).encode()).decode()
        return JSONResponse(answer, media_type="application/x-amz-json-1.1")

    def _signed(self, request: Request, body: bytes) -> bool:
        authorization = request.headers.get("authorization", "")
        amz_date = request.headers.get("x-amz-date", "")
        try:
            when = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            signed_names = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
        except (ValueError, IndexError):
            return False
        headers = {
            n: request.headers[n]
            for n in signed_names
            if n not in ("host", "x-amz-date", "x-amz-security-token")
        }
        expected = sign(
            self.credentials,
            method=request.method,
            host=request.headers["host"],
            path=request.url.path,
            query=[],
            headers=headers,
            body=body,
            region=self.region,
            service="cognito-idp",
            when=when,
        )["Authorization"]
        return authorization == expected and "cognito-idp/aws4_request" in authorization
