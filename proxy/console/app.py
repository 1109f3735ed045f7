"""The rollout console: one Starlette app serving /console/ pages, /console/api/ JSON,
/console/static/ assets and sign-in, built by ``build_console_app``."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from flags import AuditInputError, RolloutStore, RolloutStoreError
from proxy.config import Config
from proxy.console import action_pages, audit_page, connection_pages, map_page
from proxy.console.actions import ActionDesk, ActionRefused
from proxy.console.form_body import FormRefused, read_form
from proxy.console.identity import Person, SignInRefused
from proxy.console.map_actions import MapDesk
from proxy.console.map_reader import MapReader, MapUnavailable
from proxy.console.page import layout, message_page
from proxy.console.rollout_view import Instruments
from proxy.console.security_headers import SecurityHeaders
from proxy.console.sign_in import SignIn, csrf_matches, csrf_token, session_secret
from proxy.flag_backend import open_rollout_store
from proxy.outcomes.counts import OutcomeStore

STATIC = Path(__file__).parent / "static"
COOKIE = "authswitch_console"


@dataclass
class Console:
    """What every handler reads: settings, the stores, the sign-in and the clock."""

    config: Config
    rollout: RolloutStore
    maps: MapReader
    instruments: Instruments
    desk: ActionDesk
    sign_in: SignIn
    clock: Callable[[], float]
    map_desk: MapDesk


Handler = Callable[[Request, Console, Person], Awaitable[Response]]


def build_console_app(
    config: Config,
    *,
    clock: Callable[[], float] = time.time,
    rollout: RolloutStore | None = None,
    outcomes: OutcomeStore | None = None,
) -> Starlette:
    """The console for this config (``console.enabled`` must be true); stores may be given."""
    settings = config.console
    if not settings.enabled:
        raise ValueError("console.enabled is false")
    store = rollout or open_rollout_store(config, client_name="authswitch-console", min_timeout=1.0)
    maps = MapReader(config)
    instruments = _instruments(config, store, outcomes, maps)
    console = Console(
        config,
        store,
        maps,
        instruments,
        ActionDesk(store, config.shadow, instruments.readiness),
        SignIn(settings, clock),
        clock,
        MapDesk(config),
    )

    def page(
        handler: Handler, *, operator: bool = False, write: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await _guarded(request, console, handler, operator=operator, write=write)

        return endpoint

    routes = [
        Route("/console/", _to_connections),
        Route("/console/connections", page(connection_pages.connections)),
        Route("/console/connections/{connection}", page(connection_pages.detail)),
        Route("/console/api/connections", page(connection_pages.connections_json)),
        Route("/console/map", page(map_page.map_overview)),
        Route("/console/map/preview", page(map_page.map_preview, operator=True)),
        Route(
            "/console/map/apply",
            page(map_page.map_apply, operator=True, write=True),
            methods=["POST"],
        ),
        Route("/console/audit", page(audit_page.audit)),
        Route("/console/api/audit.jsonl", page(audit_page.audit_jsonl)),
        Route("/console/actions/preview", page(action_pages.preview, operator=True)),
        Route(
            "/console/actions/apply",
            page(action_pages.apply, operator=True, write=True),
            methods=["POST"],
        ),
        Route("/console/sign-out", page(_sign_out, write=True), methods=["POST"]),
        Route("/console/sign-in", _bound(_sign_in_start, console), name="console_sign_in"),
        Route(
            "/console/auth/callback",
            _bound(_sign_in_finish, console),
            name="console_oidc_callback",
        ),
        Mount("/console/static", StaticFiles(directory=STATIC), name="console_static"),
    ]
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(SecurityHeaders, secure=settings.secure_cookie),
            Middleware(
                SessionMiddleware,
                secret_key=session_secret(settings),
                session_cookie=COOKIE,
                max_age=settings.session_max_age_seconds,
                same_site=settings.same_site,
                https_only=settings.secure_cookie,
                path="/console",
            ),
        ],
    )


def _instruments(
    config: Config, store: RolloutStore, outcomes: OutcomeStore | None, maps: MapReader
) -> Instruments:
    from proxy.shadow.service import readiness_store_for

    guard = None
    if outcomes is None and config.outcomes.enabled:
        from proxy.outcomes.service import open_outcome_store

        opened, client, _ = open_outcome_store(config, client_name="authswitch-console")
        outcomes = opened if client is not None else None  # memory counts live in the proxy
    if outcomes is not None:
        from proxy.outcomes.guard import RolloutGuard
        from proxy.outcomes.lease import ProcessLease

        guard = RolloutGuard(
            config.outcomes, outcomes, store, lambda: maps.current().index, ProcessLease()
        )
    shadow = config.shadow
    readiness = (
        readiness_store_for(shadow, cli=True) if shadow.redis is not None or shadow.gate else None
    )
    return Instruments(
        outcomes, guard, config.outcomes, readiness, shadow, config.console.outcome_window_minutes
    )


async def _guarded(
    request: Request, console: Console, handler: Handler, *, operator: bool, write: bool
) -> Response:
    """Identify, check the role (and the CSRF token on writes), then run the handler."""
    try:
        person = console.sign_in.person(request)
    except SignInRefused as refused:
        return _refusal(request, refused.status, "Not signed in", refused.message, None)
    if person is None:
        if request.method != "GET":
            return _refusal(request, 401, "Not signed in", "sign in first", None)
        return RedirectResponse(f"/console/sign-in?next={quote(request.url.path)}", 303)
    if person.role is None:
        return _refusal(
            request, 403, "No access", f"{person.name} has no role in this console", person
        )
    if operator and not person.may_change:
        return _refusal(
            request, 403, "Operators only", "only operators may change the rollout", person
        )
    if write:
        try:
            form = await read_form(request)
        except FormRefused as exc:
            return _refusal(request, 400, "Refused", str(exc), person)
        request.state.form = form
        if not csrf_matches(request, form.get("csrf_token")):
            return _refusal(
                request, 403, "Refused", "missing or wrong CSRF token: reload the page", person
            )
    try:
        return await handler(request, console, person)
    except ActionRefused as refused:
        return _refusal(request, refused.status, "Refused", refused.message, person)
    except MapUnavailable as exc:
        return _refusal(request, 503, "Connection map unavailable", str(exc), person)
    except AuditInputError as exc:
        return _refusal(request, 400, "Refused", str(exc), person)
    except RolloutStoreError as exc:
        return _refusal(request, 503, "Flag backend unavailable", str(exc), person)


def _refusal(
    request: Request, status: int, title: str, message: str, person: Person | None
) -> Response:
    body = message_page(title, message, person=person, csrf=csrf_token(request))
    return HTMLResponse(body, status_code=status)


def _bound(
    handler: Callable[[Request, Console], Awaitable[Response]], console: Console
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await handler(request, console)

    return endpoint


async def _to_connections(request: Request) -> Response:
    return RedirectResponse("/console/connections", 303)


async def _sign_in_start(request: Request, console: Console) -> Response:
    if not console.sign_in.uses_oidc:
        return RedirectResponse("/console/connections", 303)
    return await console.sign_in.start(request)


async def _sign_in_finish(request: Request, console: Console) -> Response:
    if not console.sign_in.uses_oidc:
        return _refusal(request, 404, "Not found", "OIDC sign-in is not configured", None)
    try:
        return await console.sign_in.finish(request)
    except SignInRefused as refused:
        return _refusal(request, refused.status, "Sign-in failed", refused.message, None)


async def _sign_out(request: Request, console: Console, person: Person) -> Response:
    request.session.clear()
    body = '<p>You are signed out. <a href="/console/connections">Sign in again</a></p>'
    return HTMLResponse(layout("Signed out", body, person=None, csrf=""))
