"""The connection map: which SSO connections exist, how they are recognised, where they go."""

from connection_map.file_store import ConnectionMapError, ConnectionMapFile, load_connection_map
from connection_map.index import ConnectionMap, IssuerMatch
from connection_map.model import (
    Assessment,
    Connection,
    ConnectionMapDocument,
    ForwardMode,
    NewProvider,
    OidcSettings,
    Protocol,
    SamlSettings,
)

__all__ = [
    "Assessment",
    "Connection",
    "ConnectionMap",
    "ConnectionMapDocument",
    "ConnectionMapError",
    "ConnectionMapFile",
    "ForwardMode",
    "IssuerMatch",
    "NewProvider",
    "OidcSettings",
    "Protocol",
    "SamlSettings",
    "load_connection_map",
]
