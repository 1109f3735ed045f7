"""An immutable in-memory index of the connection map: O(1) lookups on the hot path.

It holds :class:`~connection_map.served.ServedConnection` records, the facts the proxy routes
by, not the full models: tools that need the rest read the document itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from connection_map.model import ConnectionMapDocument
from connection_map.served import ServedConnection, served_from


@dataclass(frozen=True, slots=True)
class IssuerMatch:
    """What an IdP entity id identifies: one connection, or several (ambiguous)."""

    connection: ServedConnection | None
    ambiguous: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ConnectionMap:
    """Connections by id, by SAML IdP entity id, by OIDC callback path and by RelayState prefix."""

    version: int
    _by_id: Mapping[str, ServedConnection]
    _by_issuer: Mapping[str, IssuerMatch]
    _by_callback_path: Mapping[str, ServedConnection]
    source: str = field(default="")
    _by_relay_state_prefix: Mapping[str, ServedConnection] = field(default_factory=dict)
    # The distinct prefix lengths, shortest first: a lookup slices the RelayState once per
    # length, so its cost is (distinct lengths) x (prefix length), whatever the map's size.
    _relay_state_prefix_lengths: tuple[int, ...] = ()

    @classmethod
    def build(cls, document: ConnectionMapDocument, *, source: str = "") -> ConnectionMap:
        """The index of a validated document."""
        records = [served_from(c) for c in document.connections]
        return cls.from_records(document.version, records, source=source)

    @classmethod
    def from_records(
        cls, version: int, records: Sequence[ServedConnection], *, source: str = ""
    ) -> ConnectionMap:
        """The index of records whose ids, callback paths and prefixes were checked unique."""
        by_id = {c.id: c for c in records}
        prefixes = {c.relay_state_prefix: c for c in records if c.relay_state_prefix}
        return cls(
            version=version,
            _by_id=MappingProxyType(by_id),
            _by_issuer=MappingProxyType(_issuer_index(records)),
            _by_callback_path=MappingProxyType(
                {c.callback_path: c for c in records if c.callback_path is not None}
            ),
            source=source,
            _by_relay_state_prefix=MappingProxyType(prefixes),
            _relay_state_prefix_lengths=tuple(sorted({len(p) for p in prefixes})),
        )

    def get(self, connection_id: str) -> ServedConnection | None:
        return self._by_id.get(connection_id)

    def by_issuer(self, entity_id: str) -> IssuerMatch | None:
        """The connection(s) whose SAML IdP entity id is exactly `entity_id`."""
        return self._by_issuer.get(entity_id)

    def by_callback_path(self, path: str) -> ServedConnection | None:
        return self._by_callback_path.get(path)

    def by_relay_state(self, relay_state: str) -> ServedConnection | None:
        """The connection whose ``relay_state_prefix`` starts `relay_state` (none nest)."""
        for length in self._relay_state_prefix_lengths:
            if length > len(relay_state):
                break
            connection = self._by_relay_state_prefix.get(relay_state[:length])
            if connection is not None:
                return connection
        return None

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[ServedConnection]:
        return iter(self._by_id.values())


def _issuer_index(connections: Iterable[ServedConnection]) -> dict[str, IssuerMatch]:
    grouped: dict[str, list[ServedConnection]] = {}
    for connection in connections:
        if connection.idp_entity_id is not None:
            grouped.setdefault(connection.idp_entity_id, []).append(connection)
    index: dict[str, IssuerMatch] = {}
    for entity_id, members in grouped.items():
        if len(members) == 1:
            index[entity_id] = IssuerMatch(members[0])
        else:
            index[entity_id] = IssuerMatch(None, tuple(sorted(c.id for c in members)))
    return index
