"""The readiness gate: a connection moves to the new provider only when its live logins say so.

Used by `flags enable` and `flags stage` (preview and apply): a connection is ready when its
current import has at least `shadow.min_samples` checked samples and at least
`shadow.min_accept_ratio` of them would have been accepted. For OIDC the samples check what is
visible before the code is redeemed (``oidc_check``): evidence, weaker than SAML's.
"""

from __future__ import annotations

from collections.abc import Iterable

from connection_map import Connection
from proxy.shadow.readiness_store import Readiness, ReadinessStore, import_digest
from proxy.shadow.settings import ShadowSettings


def readiness_of(
    connection: Connection, settings: ShadowSettings, store: ReadinessStore
) -> Readiness:
    """The counts of the connection's current import."""
    digest = import_digest(connection, settings.for_connection(connection.id))
    return store.read(connection.id, digest)


def not_ready_because(readiness: Readiness, settings: ShadowSettings) -> str | None:
    """Why the gate refuses this connection, or None when it is ready."""
    ratio = readiness.ratio
    if readiness.samples < settings.min_samples:
        return (
            f"{readiness.samples} checked samples of its current import, "
            f"{settings.min_samples} needed"
        )
    if ratio is not None and ratio < settings.min_accept_ratio:
        worst = ", ".join(
            readiness.details.get(code, code)
            for code, _ in sorted(readiness.reasons.items(), key=lambda item: -item[1])[:3]
        )
        return (
            f"the new provider would accept {ratio:.1%} of its live logins "
            f"(at least {settings.min_accept_ratio:.1%} needed): {worst}"
        )
    return None


def gate_refusals(
    connections: Iterable[Connection], settings: ShadowSettings, store: ReadinessStore
) -> dict[str, str]:
    """Connection id -> why it is not ready, for the connections among `connections`."""
    refusals: dict[str, str] = {}
    for connection in connections:
        why = not_ready_because(readiness_of(connection, settings, store), settings)
        if why is not None:
            refusals[connection.id] = why
    return refusals


def forced_past_gate(reason: str, refused: dict[str, str]) -> str:
    """The audit reason of a change forced past the gate: it says past what."""
    listed = "; ".join(f"{cid}: {why}" for cid, why in refused.items())
    return f"{reason} [forced past the readiness gate - {listed}]"
