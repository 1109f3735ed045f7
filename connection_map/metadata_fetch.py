"""Fetching IdP metadata from a URL: https only, a total deadline and a size cap."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import httpx

DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_MAX_BYTES = 1024 * 1024


class MetadataFetchError(Exception):
    """The metadata couldn't be fetched; the message names the URL without its query."""


def fetch_metadata(
    url: str,
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    allow_http: bool = False,
    transport: httpx.BaseTransport | None = None,
) -> bytes:
    """GET `url` (redirects too must be https unless `allow_http`) within `timeout` seconds."""
    shown = _shown(url)
    _check_scheme(url, allow_http)
    deadline = time.monotonic() + timeout

    def refuse_downgrade(request: httpx.Request) -> None:
        _check_scheme(str(request.url), allow_http)

    try:
        with (
            httpx.Client(
                timeout=httpx.Timeout(timeout),
                follow_redirects=True,
                max_redirects=5,
                event_hooks={"request": [refuse_downgrade]},
                transport=transport,
            ) as client,
            client.stream("GET", url, headers={"Accept": _ACCEPT}) as response,
        ):
            if response.status_code != 200:
                raise MetadataFetchError(f"{shown}: HTTP {response.status_code}")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise MetadataFetchError(f"{shown}: larger than {max_bytes} bytes")
            body = bytearray()
            for chunk in response.iter_bytes():  # decoded: a gzip bomb hits the cap too
                body += chunk
                if len(body) > max_bytes:
                    raise MetadataFetchError(f"{shown}: larger than {max_bytes} bytes")
                if time.monotonic() > deadline:
                    raise MetadataFetchError(f"{shown}: not received within {timeout:g} s")
    except httpx.TimeoutException:
        raise MetadataFetchError(f"{shown}: no answer within {timeout:g} s") from None
    except httpx.TooManyRedirects:
        raise MetadataFetchError(f"{shown}: too many redirects") from None
    except httpx.HTTPError as exc:
        raise MetadataFetchError(f"{shown}: {type(exc).__name__}") from None
    return bytes(body)


_ACCEPT = "application/samlmetadata+xml, application/xml;q=0.9, text/xml;q=0.8"


def _check_scheme(url: str, allow_http: bool) -> None:
    scheme = urlsplit(url).scheme.lower()
    if scheme == "https" or (scheme == "http" and allow_http):
        return
    if scheme == "http":
        raise MetadataFetchError(f"{_shown(url)}: not https (use --allow-http to permit it)")
    raise MetadataFetchError(f"{_shown(url)}: only https URLs can be fetched")


def _shown(url: str) -> str:
    # A metadata URL's query may carry an access token: never echo it.
    # A user:password@ in the authority is dropped for the same reason.
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    try:
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}{parts.path}" + ("?..." if parts.query else "")
