"""Forwarding a migrated callback to the new provider: a redirect, an auto-posting form, or
proxied server-side (`mode: proxy`), falling through to legacy if the provider is unreachable."""

from __future__ import annotations

import base64
import hashlib
import html
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from connection_map import ForwardMode
from proxy.callback.fall_through import LegacyFallThrough, add_request_id
from proxy.config import Forwarding
from proxy.http.asgi_types import RawHeaders, Send
from proxy.http.forwarded_headers import request_headers
from proxy.http.forwarder import (
    BUSY_MESSAGE,
    BUSY_REASON,
    HttpForwarder,
    UpstreamBusy,
    UpstreamFailed,
    UpstreamUnavailable,
)
from proxy.http.headers import client_host, header_value
from proxy.http.responses import send_bytes, send_error

if TYPE_CHECKING:
    from proxy.callback.context import Callback

_SUBMIT_SCRIPT = "document.getElementById('authswitch-form').submit();"
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_SUBMIT_SCRIPT.encode()).digest()).decode()
_COMMON: RawHeaders = [
    (b"cache-control", b"no-store"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
]


def target_url(base: str, query_string: bytes) -> str:
    """The new provider's URL with the callback's query string carried over unchanged."""
    if not query_string:
        return base
    separator = "&" if "?" in base else "?"
    return base + separator + query_string.decode("latin-1")


async def send_redirect(send: Send, method: str, location: str, request_id: str) -> int:
    """307 keeps a POST a POST (the browser re-sends the body); a GET gets a plain 302."""
    status = 307 if method == "POST" else 302
    headers = [
        (b"location", location.encode("latin-1")),
        (b"x-request-id", request_id.encode()),
        *_COMMON,
    ]
    await send_bytes(send, status, b"", headers, content_type=b"text/plain; charset=utf-8")
    return status


def render_form(action: str, fields: tuple[tuple[str, str], ...]) -> bytes:
    """An auto-submitting form; every value escaped, a button for browsers without script."""
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(name, quote=True)}" '
        f'value="{html.escape(value, quote=True)}">'
        for name, value in fields
    )
    escaped_action = html.escape(action, quote=True)
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="referrer" content="no-referrer"><title>Signing you in</title></head>'
        f'<body><form id="authswitch-form" method="post" action="{escaped_action}">'
        f"{inputs}<noscript><p>Your browser has JavaScript turned off. Press the button "
        'to continue signing in.</p><button type="submit">Continue</button></noscript>'
        f"</form><script>{_SUBMIT_SCRIPT}</script></body></html>"
    )
    return page.encode("utf-8")


def form_csp(action: str, redirect_sources: tuple[str, ...] = ()) -> bytes:
    """Nothing may load or run but our one script; the form may post only to `action`'s origin.

    Chrome also checks form-action against every redirect that follows the submission (the new
    provider's ACS redirecting to the application), so those destinations, `redirect_sources`,
    must be allowed too or the login breaks in Chrome (w3c/webappsec-csp#8).
    """
    parts = urlsplit(action)
    sources = " ".join((f"{parts.scheme}://{parts.netloc}", *redirect_sources))
    return (
        f"default-src 'none'; script-src 'sha256-{_SCRIPT_HASH}'; form-action {sources}; "
        "base-uri 'none'; frame-ancestors 'none'"
    ).encode("latin-1")


async def send_form_post(
    send: Send,
    action: str,
    fields: tuple[tuple[str, str], ...],
    request_id: str,
    redirect_sources: tuple[str, ...] = (),
) -> int:
    headers = [
        (b"content-security-policy", form_csp(action, redirect_sources)),
        (b"x-frame-options", b"DENY"),
        (b"x-request-id", request_id.encode()),
        *_COMMON,
    ]
    body = render_form(action, fields)
    await send_bytes(send, 200, body, headers, content_type=b"text/html; charset=utf-8")
    return 200


class NewProviderForward:
    """Sends a callback decided "new" to its connection's new provider, the way the map says."""

    def __init__(
        self,
        forwarding: Forwarding,
        forwarder: HttpForwarder,
        legacy: LegacyFallThrough,
        send_request_id: bytes | None = None,
    ) -> None:
        self._forwarding = forwarding
        self._forwarder = forwarder
        self._legacy = legacy
        # The request id header to add when the client sent none (tracing.send_request_id).
        self._send_request_id = send_request_id

    async def forward(self, callback: Callback, send: Send) -> None:
        """Answer with a redirect or form, or proxy it; record status, outcome and destination."""
        connection = callback.connection
        assert connection is not None and connection.new_provider is not None
        assert callback.fields is not None
        scope = callback.scope
        target = target_url(str(connection.new_provider.url), scope["query_string"])
        mode = connection.new_provider.mode
        method: str = scope["method"]
        callback.destination = "new"
        if mode is ForwardMode.FORM_POST and method == "POST" and callback.fields.form_pairs:
            callback.status = await send_form_post(
                send,
                target,
                callback.fields.form_pairs,
                callback.request_id,
                self._forwarding.form_post_redirect_sources,
            )
            callback.outcome = "new_form_post"
        elif mode is not ForwardMode.PROXY:
            callback.status = await send_redirect(send, method, target, callback.request_id)
            callback.outcome = "new_redirect"
        else:
            await self._proxy(callback, send, target)

    async def _proxy(self, callback: Callback, send: Send, target: str) -> None:
        scope = callback.scope
        headers = request_headers(
            scope["headers"],
            client_host=client_host(scope),
            scheme=scope["scheme"],
            host=header_value(scope["headers"], b"host"),
            upstream_host=urlsplit(target).netloc.encode(),
            trust_forwarded=self._forwarding.trust_forwarded_headers,
            drop_credentials=not self._forwarding.forward_cookies_to_new_provider,
        )
        if self._send_request_id is not None:
            add_request_id(headers, scope["headers"], self._send_request_id, callback.request_id)
        try:
            callback.status = await self._forwarder.forward(
                send,
                method=scope["method"],
                url=target,
                headers=headers,
                body=callback.body,
                extra_response_headers=[(b"x-request-id", callback.request_id.encode())],
            )
        except UpstreamUnavailable:
            # Nothing reached the new provider, so legacy may still take the callback.
            await self._legacy.fall_through(callback, send)
            callback.reason = "new_provider_unreachable"
            return
        except UpstreamBusy:
            # Authswitch's own pool was full, not the new provider's fault: no fallback (the
            # decision stands) and no failure counted against the connection.
            await send_error(send, 503, BUSY_REASON, BUSY_MESSAGE, callback.request_id)
            callback.status, callback.outcome = 503, BUSY_REASON
            return
        except UpstreamFailed as exc:
            await send_error(
                send,
                502,
                exc.reason,
                f"the new provider {exc.what}",
                callback.request_id,
            )
            callback.status, callback.outcome = 502, "new_upstream_error"
            return
        callback.outcome = "new_proxied"
