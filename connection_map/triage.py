"""Triage: can each connection move transparently, and if not, every reason why.

Triage is computed from the facts in the map, the routes authswitch serves and the clock; it
never reads the proxy's config itself (``connection_map`` doesn't import ``proxy``): callers
pass the configured routes. Whether a route attributes a connection's callbacks to it is asked
of the proxy's own identification (:mod:`connection_map.routes`), with the callback the
connection's IdP would send: its legacy URL, its Issuer, its RelayState prefix, a flow started
through authswitch. One pass over the map, O(n).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, unquote, urlsplit

from connection_map.certificates import CertificateError, certificate_facts
from connection_map.index import ConnectionMap
from connection_map.model import (
    Assessment,
    Connection,
    ConnectionMapDocument,
    Protocol,
    SpKeyUse,
)
from connection_map.routes import Outcome, Route, RouteTable, Strategy, identify_connection

NAMEID = "urn:oasis:names:tc:SAML:{}:nameid-format:{}"
DEFAULT_NAME_ID_FORMATS: frozenset[str] = frozenset(
    {
        NAMEID.format("1.1", "unspecified"),
        NAMEID.format("1.1", "emailAddress"),
        NAMEID.format("2.0", "persistent"),
        NAMEID.format("2.0", "transient"),
    }
)
EXPIRY_WARNING = timedelta(days=30)
MIN_RSA_BITS = 2048

_SEVERITY = {Assessment.TRANSPARENT: 0, Assessment.NEEDS_IDP_CHANGE: 1, Assessment.BLOCKED: 2}


@dataclass(frozen=True, slots=True)
class Reason:
    """One thing that stops a connection from moving transparently."""

    code: str
    assessment: Assessment
    message: str


@dataclass(frozen=True, slots=True)
class Triage:
    connection_id: str
    reasons: tuple[Reason, ...]

    @property
    def assessment(self) -> Assessment:
        """The worst assessment among the reasons: blocked > needs_idp_change > transparent."""
        worst = Assessment.TRANSPARENT
        for reason in self.reasons:
            if _SEVERITY[reason.assessment] > _SEVERITY[worst]:
                worst = reason.assessment
        return worst

    @property
    def messages(self) -> tuple[str, ...]:
        return tuple(f"{r.code}: {r.message}" for r in self.reasons)


@dataclass(frozen=True, slots=True)
class TriageSettings:
    """What triage compares the map against. ``routes=None`` skips the route checks."""

    routes: Sequence[Route] | None = None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    expiry_warning: timedelta = EXPIRY_WARNING
    name_id_formats: frozenset[str] = DEFAULT_NAME_ID_FORMATS


def triage_connections(
    connections: Iterable[Connection], settings: TriageSettings | None = None
) -> dict[str, Triage]:
    """Triage every connection; the result keeps the map's order."""
    settings = settings or TriageSettings()
    members = list(connections)
    issuers = Counter(
        c.saml.idp_entity_id for c in members if c.saml is not None and c.saml.idp_entity_id
    )
    sharers: dict[str, list[str]] = {}
    for c in members:
        if c.saml is not None and c.saml.idp_entity_id and issuers[c.saml.idp_entity_id] > 1:
            sharers.setdefault(c.saml.idp_entity_id, []).append(c.id)
    routes = settings.routes
    table = RouteTable(tuple(routes)) if routes is not None else None
    index = ConnectionMap.build(ConnectionMapDocument(version=1, connections=tuple(members)))
    context = _Context(settings, issuers, sharers, table, index)
    return {c.id: Triage(c.id, tuple(_reasons(c, context))) for c in members}


def with_assessments(
    document: ConnectionMapDocument, ids: Iterable[str], settings: TriageSettings | None = None
) -> ConnectionMapDocument:
    """The document with the computed assessment and reasons stored for the connections `ids`.

    Triage looks at the whole map (a shared Issuer involves two connections), but only the
    connections named are rewritten: an import owns what it imported, nothing else.
    """
    wanted = set(ids)
    results = triage_connections(document.connections, settings)
    connections = tuple(
        c.model_copy(
            update={
                "assessment": results[c.id].assessment,
                "assessment_reasons": results[c.id].messages,
            }
        )
        if c.id in wanted
        else c
        for c in document.connections
    )
    return document.model_copy(update={"connections": connections})


@dataclass(frozen=True, slots=True)
class _Context:
    settings: TriageSettings
    issuers: Mapping[str, int]
    sharers: Mapping[str, list[str]]
    routes: RouteTable | None
    index: ConnectionMap


def _reasons(connection: Connection, context: _Context) -> Iterable[Reason]:
    if connection.hold is not None:
        yield Reason("manual_hold", connection.hold.assessment, connection.hold.reason)
    if connection.new_provider is None:
        yield Reason(
            "no_new_provider_target",
            Assessment.BLOCKED,
            "no new-provider target: set new_provider.url once it is imported there",
        )
    if connection.saml is not None:
        yield from _key_reasons(connection)
        yield from _name_id_reasons(connection, context.settings.name_id_formats)
        yield from _certificate_reasons(connection, context.settings)
    discovery = connection.oidc.discovery_url if connection.oidc is not None else None
    if discovery is not None and urlsplit(discovery).scheme != "https":
        yield Reason(
            "oidc_discovery_not_https",
            Assessment.NEEDS_IDP_CHANGE,
            "the OIDC discovery URL is not https: the new provider won't trust what it "
            "serves; the IdP must publish it over https",
        )
    yield from _routing_reasons(connection, context)


_KEY_USES = (
    ("request_signing", "the IdP requires signed AuthnRequests"),
    ("assertion_encryption", "the IdP encrypts assertions"),
    ("name_id_encryption", "the IdP encrypts the NameID"),
)


def _key_reasons(connection: Connection) -> Iterable[Reason]:
    assert connection.saml is not None
    for name, what in _KEY_USES:
        use: SpKeyUse = getattr(connection.saml, name)
        if use.enabled and not use.key_exportable:
            yield Reason(
                f"{name}_key_not_exportable",
                Assessment.NEEDS_IDP_CHANGE,
                f"{what} with an SP key that can't be moved to the new provider: the IdP "
                "must be given the new provider's certificate",
            )


def _name_id_reasons(connection: Connection, supported: frozenset[str]) -> Iterable[Reason]:
    assert connection.saml is not None
    sent = connection.saml.name_id_format
    offered = connection.saml.idp_name_id_formats
    if sent is not None and sent not in supported:
        yield Reason(
            "name_id_format_unsupported",
            Assessment.NEEDS_IDP_CHANGE,
            f"the IdP sends NameID format {sent!r}, which the new provider can't express",
        )
    elif sent is None and offered and not any(f in supported for f in offered):
        yield Reason(
            "name_id_format_unsupported",
            Assessment.NEEDS_IDP_CHANGE,
            "none of the NameID formats the IdP's metadata offers ("
            + ", ".join(offered)
            + ") can be expressed by the new provider",
        )


def _certificate_reasons(connection: Connection, settings: TriageSettings) -> Iterable[Reason]:
    assert connection.saml is not None
    for number, pem in enumerate(connection.saml.signing_certificates, start=1):
        try:
            facts = certificate_facts(pem)
        except CertificateError as exc:
            yield Reason(
                "certificate_unreadable",
                Assessment.BLOCKED,
                f"signing certificate #{number} {exc}: re-import it",
            )
            continue
        which = f"signing certificate #{number} {facts.label}"
        expires = facts.not_after.date().isoformat()
        if facts.not_after <= settings.now:
            yield Reason(
                "certificate_expired",
                Assessment.NEEDS_IDP_CHANGE,
                f"{which} expired on {expires}",
            )
        elif facts.not_after <= settings.now + settings.expiry_warning:
            days = (facts.not_after - settings.now).days
            yield Reason(
                "certificate_expiring",
                Assessment.NEEDS_IDP_CHANGE,
                f"{which} expires on {expires} (in {days} days): the IdP will roll it over "
                "during the migration",
            )
        if facts.public_key in ("RSA", "DSA") and (facts.key_bits or 0) < MIN_RSA_BITS:
            yield Reason(
                "certificate_weak_key",
                Assessment.NEEDS_IDP_CHANGE,
                f"{which} has a {facts.key_bits}-bit {facts.public_key} key "
                f"(at least {MIN_RSA_BITS} needed)",
            )
        if facts.signature_hash in ("sha1", "md5"):
            yield Reason(
                "certificate_sha1_signature",
                Assessment.NEEDS_IDP_CHANGE,
                f"{which} is signed with {facts.signature_hash.upper()}",
            )


def _routing_reasons(connection: Connection, context: _Context) -> Iterable[Reason]:
    entity_id = connection.saml.idp_entity_id if connection.saml is not None else None
    shared = context.sharers.get(entity_id) if entity_id is not None else None
    table = context.routes
    if table is None:
        if shared is not None:
            yield _shared_issuer(connection, shared)
        return
    url = connection.legacy.callback_url if connection.legacy is not None else None
    what = "ACS URL" if connection.protocol is Protocol.SAML else "redirect URI"
    if url is None:
        if not any(_recognised_anywhere(connection, r, context) for r in table.routes):
            yield Reason(
                "legacy_url_unknown",
                Assessment.BLOCKED,
                f"the legacy {what} is unknown (legacy.callback_url) and no route recognises "
                "this connection without it",
            )
        return
    parts = urlsplit(url)
    path = unquote(parts.path) or "/"
    found = table.match(path)
    if found is None or not found[0].receives(connection.protocol.value):
        yield Reason(
            "legacy_url_not_routed",
            Assessment.BLOCKED,
            f"the legacy {what} {url} is not served by any configured "
            f"{connection.protocol.value} route",
        )
        return
    route, params = found
    query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    problem = _identification_problem(connection, route, params, query, path, context)
    if problem == _SHARED and shared is not None:
        yield _shared_issuer(connection, shared, url=url, route=route)
    elif problem is not None:
        yield Reason(
            "route_cannot_identify",
            Assessment.BLOCKED,
            f"route {route.path} serves {url} but {problem}",
        )


_SHARED = "its Issuer is shared with other connections"
# The Issuer a SAML callback carries when the map does not know the IdP's entity id: it
# matches no connection, as the real one would not.
_UNKNOWN_ISSUER = "urn:authswitch:triage:issuer-not-in-the-map"


def _identification_problem(
    connection: Connection,
    route: Route,
    params: Mapping[str, str],
    query: Mapping[str, str],
    path: str,
    context: _Context,
) -> str | None:
    """Why the proxy would not attribute this connection's callback on `route` to it, if so.

    The callback is the one the connection's IdP sends: to the legacy URL, with the IdP's
    Issuer, a RelayState starting with the connection's prefix, and (OIDC) a `state` whose
    flow was started through authswitch for this connection.
    """
    result = identify_connection(
        route,
        params,
        query,
        path,
        context.index,
        issuer=_issuer_sent(connection),
        relay_state=connection.relay_state_prefix,
        flow_connection=connection.id if connection.protocol is Protocol.OIDC else None,
    )
    strategies = ", ".join(route.identify)
    if result.outcome is Outcome.IDENTIFIED:
        assert result.connection is not None
        if result.connection.id == connection.id:
            return None
        via = result.strategy.value if result.strategy is not None else "identify"
        return f"its {via} strategy identifies connection {result.connection.id!r} instead"
    if result.outcome is Outcome.AMBIGUOUS:
        return _SHARED if result.shared_issuer else f"its strategies ({strategies}) disagree"
    if result.outcome is Outcome.UNKNOWN:
        saml = connection.saml
        if Strategy.SAML_ISSUER in route.identify and saml is not None and not saml.idp_entity_id:
            return "the connection has no saml.idp_entity_id to match the Issuer"
        return f"its strategies ({strategies}) name a connection id that is not in the map"
    return f"none of its strategies ({strategies}) finds this connection"


def _issuer_sent(connection: Connection) -> str | None:
    if connection.protocol is not Protocol.SAML:
        return None
    entity_id = connection.saml.idp_entity_id if connection.saml is not None else None
    return entity_id or _UNKNOWN_ISSUER


def _recognised_anywhere(connection: Connection, route: Route, context: _Context) -> bool:
    """Without the legacy URL, whether some URL of this route identifies the connection: the
    route's own path when it has no parameters, or the connection's own callback path."""
    if not route.receives(connection.protocol.value):
        return False
    candidates: list[tuple[str, dict[str, str]]] = []
    if "{" not in route.path:
        candidates.append((route.path, {}))
    own = connection.oidc.callback_path if connection.oidc is not None else None
    if own is not None:
        found = RouteTable((route,)).match(own)
        if found is not None:
            candidates.append((own, found[1]))
    return any(
        _identification_problem(connection, route, params, {}, path, context) is None
        for path, params in candidates
    )


def _shared_issuer(
    connection: Connection,
    sharers: list[str],
    *,
    url: str | None = None,
    route: Route | None = None,
) -> Reason:
    others = ", ".join(repr(cid) for cid in sharers if cid != connection.id)
    assert connection.saml is not None
    message = (
        f"IdP entity id {connection.saml.idp_entity_id!r} is shared with {others}: it must be "
        "recognised by path (or query), not by Issuer"
    )
    if url is not None and route is not None:
        # The URL the IdP already uses names the connection: a route that reads it is our fix.
        parts = urlsplit(url)
        names_it = connection.id in unquote(parts.path).split("/") or connection.id in [
            v for values in parse_qs(parts.query).values() for v in values
        ]
        if names_it:
            return Reason(
                "shared_idp_entity_id",
                Assessment.BLOCKED,
                message + f"; its URL {url} names it, but route {route.path} doesn't read that",
            )
        return Reason(
            "shared_idp_entity_id",
            Assessment.NEEDS_IDP_CHANGE,
            message + f"; its URL {url} doesn't name it, so the IdP must post to one that does",
        )
    return Reason("shared_idp_entity_id", Assessment.NEEDS_IDP_CHANGE, message)
