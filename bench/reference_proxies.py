"""Reference proxies measured in the same run as authswitch, so its figures become ratios.

- ``naive``: what a user typically writes: Starlette, ``await request.form()`` to look at the
  SAMLResponse, an httpx.AsyncClient forward and a StreamingResponse.
- ``raw-aiohttp``: a minimal raw-ASGI proxy with an aiohttp ClientSession (read the body,
  forward it, stream the answer back). The reference authswitch's fall-through is held to.
- ``raw-httpx`` / ``raw-httpx-aiohttp``: the same raw-ASGI proxy with httpx, and with httpx over
  the aiohttp transport of the ``httpx-aiohttp`` package, to compare the HTTP clients alone.
- ``raw-checked``: ``raw-aiohttp`` doing a mixed callback's work by hand (``reference_checked``):
  the Issuer read, the decision, a 307 or the forward, a JSON access line and metrics.
- ``raw-noforward``: the raw-ASGI app reading the body and answering 200 itself: the cost of
  uvicorn + ASGI without any client, to subtract from the proxies above.

Every proxy forwards to ``--upstream`` + the request path, strips hop-by-hop headers and keeps
no cookie jar. Run: ``python -m bench.reference_proxies --kind raw-aiohttp --port 9001
--upstream http://127.0.0.1:9000``
"""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import aiohttp
import httpx
import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
    }
)
_HOP_BY_HOP_BYTES = frozenset(name.encode() for name in HOP_BY_HOP)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


def _target(upstream: str, scope: Scope) -> str:
    query = scope["query_string"]
    path: str = scope["path"]
    return upstream + path + ("?" + query.decode("latin-1") if query else "")


def _request_headers(scope: Scope) -> list[tuple[str, str]]:
    return [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in scope["headers"]
        if name not in _HOP_BY_HOP_BYTES
    ]


class _Lifespan:
    """Open the client at start-up and close it at shutdown, like a real service would."""

    async def startup(self) -> None:
        raise NotImplementedError

    async def shutdown(self) -> None:
        raise NotImplementedError

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


class RawAiohttpProxy(_Lifespan):
    """Minimal raw-ASGI proxy with an aiohttp ClientSession."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.session: aiohttp.ClientSession | None = None

    async def startup(self) -> None:
        self.session = aiohttp.ClientSession(
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=30, connect=3),
        )

    async def shutdown(self) -> None:
        if self.session is not None:
            await self.session.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        await self.forward(scope, await _read_body(receive), send)

    async def forward(self, scope: Scope, body: bytes, send: Send) -> int:
        """Send `body` upstream and stream the answer back; the answer's status."""
        assert self.session is not None
        async with self.session.request(
            scope["method"],
            _target(self.upstream, scope),
            headers=_request_headers(scope),
            data=body,
            allow_redirects=False,
        ) as response:
            headers = [
                (name, value)
                for name, value in response.raw_headers
                if name.lower() not in _HOP_BY_HOP_BYTES
            ]
            await send(
                {"type": "http.response.start", "status": response.status, "headers": headers}
            )
            async for chunk in response.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return response.status


class RawHttpxProxy(_Lifespan):
    """The same raw-ASGI proxy with httpx (optionally over the httpx-aiohttp transport)."""

    def __init__(self, upstream: str, *, aiohttp_transport: bool = False) -> None:
        self.upstream = upstream.rstrip("/")
        self.aiohttp_transport = aiohttp_transport
        self.client: httpx.AsyncClient | None = None

    async def startup(self) -> None:
        transport: httpx.AsyncBaseTransport | None = None
        if self.aiohttp_transport:
            from httpx_aiohttp import AiohttpTransport

            transport = AiohttpTransport(
                client=lambda: aiohttp.ClientSession(
                    cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False
                )
            )
        self.client = httpx.AsyncClient(
            transport=transport, timeout=httpx.Timeout(30, connect=3), follow_redirects=False
        )

    async def shutdown(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        client = self.client
        assert client is not None
        body = await _read_body(receive)
        request = client.build_request(
            scope["method"],
            _target(self.upstream, scope),
            headers=_request_headers(scope),
            content=body,
        )
        response = await client.send(request, stream=True)
        try:
            headers = [
                (name, value)
                for name, value in response.headers.raw
                if name.lower() not in _HOP_BY_HOP_BYTES
            ]
            await send(
                {"type": "http.response.start", "status": response.status_code, "headers": headers}
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        finally:
            await response.aclose()
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class RawNoForward:
    """Read the body and answer 200 without any upstream: uvicorn + ASGI cost alone."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await _read_body(receive)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"3")],
            }
        )
        await send({"type": "http.response.body", "body": b"ok\n"})


def naive_app(upstream: str) -> Any:
    """Starlette + request.form() + httpx + StreamingResponse, as a user would write it."""
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.requests import Request
    from starlette.responses import StreamingResponse
    from starlette.routing import Route

    client = httpx.AsyncClient(base_url=upstream, timeout=30)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await client.aclose()

    async def proxy(request: Request) -> StreamingResponse:
        body = await request.body()
        form = await request.form()
        # A routing proxy would look at the SAMLResponse here to pick a provider.
        _ = form.get("SAMLResponse")
        headers = {k: v for k, v in request.headers.items() if k not in HOP_BY_HOP}
        upstream_request = client.build_request(
            request.method,
            request.url.path,
            params=request.query_params,
            headers=headers,
            content=body,
        )
        response = await client.send(upstream_request, stream=True)
        return StreamingResponse(
            response.aiter_raw(),
            status_code=response.status_code,
            headers={k: v for k, v in response.headers.items() if k not in HOP_BY_HOP},
            background=BackgroundTask(response.aclose),
        )

    return Starlette(
        routes=[Route("/{path:path}", proxy, methods=["GET", "POST"])], lifespan=lifespan
    )


def build_app(kind: str, upstream: str, connections: str | None = None) -> Any:
    """The ASGI app for a reference kind (`connections`: the JSON file `raw-checked` routes by)."""
    if kind == "naive":
        return naive_app(upstream)
    if kind == "raw-aiohttp":
        return RawAiohttpProxy(upstream)
    if kind == "raw-httpx":
        return RawHttpxProxy(upstream)
    if kind == "raw-httpx-aiohttp":
        return RawHttpxProxy(upstream, aiohttp_transport=True)
    if kind == "raw-noforward":
        return RawNoForward()
    if kind == "raw-checked":
        from bench.reference_checked import CheckedRouter

        return CheckedRouter(upstream, connections)
    raise ValueError(f"unknown reference kind {kind!r}")


KINDS = ("naive", "raw-aiohttp", "raw-httpx", "raw-httpx-aiohttp", "raw-noforward", "raw-checked")


# Packages a reference needs beyond authswitch's own dependencies (bench-only, not in pyproject).
OPTIONAL_PACKAGES = {"naive": "multipart", "raw-httpx-aiohttp": "httpx_aiohttp"}
PIP_NAMES = {"multipart": "python-multipart", "httpx_aiohttp": "httpx-aiohttp"}


def missing_package(kind: str) -> str | None:
    """The pip name of the package a reference kind needs but can't import, else None."""
    module = OPTIONAL_PACKAGES.get(kind)
    if module is None:
        return None
    return PIP_NAMES[module] if importlib.util.find_spec(module) is None else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=KINDS, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", default="http://127.0.0.1:9000")
    parser.add_argument("--connections", help="raw-checked: Issuer -> [connection, 307 URL]")
    args = parser.parse_args()
    # One worker and the same uvicorn settings as `authswitch serve` (proxy/ops/server.py).
    uvicorn.run(
        build_app(args.kind, args.upstream, args.connections),
        host=args.host,
        port=args.port,
        loop="auto",
        http="auto",
        lifespan="on",
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        server_header=False,
        date_header=False,
    )


if __name__ == "__main__":
    main()
