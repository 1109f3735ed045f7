"""The connection map: which SSO connections exist, how they are recognised, where they go."""

from connection_map.check_report import CheckEntry, CheckReport, check_connections
from connection_map.csv_export import CsvExport, export_connections_csv
from connection_map.csv_import import (
    CsvImport,
    ImportProblem,
    ImportRefused,
    import_connections_csv,
)
from connection_map.file_store import (
    ConnectionMapError,
    ConnectionMapFile,
    load_connection_map,
    read_connection_map_document,
    save_connection_map,
)
from connection_map.index import ConnectionMap, IssuerMatch
from connection_map.map_diff import ConnectionChange, FieldChange, MapDiff, diff_maps
from connection_map.metadata_fetch import MetadataFetchError, fetch_metadata
from connection_map.model import (
    Assessment,
    Connection,
    ConnectionMapDocument,
    ForwardMode,
    Hold,
    LegacyEndpoint,
    NewProvider,
    OidcSettings,
    Organization,
    Protocol,
    SamlSettings,
    SpKeyUse,
)
from connection_map.routes import Identification, Route, RouteTable, Strategy, identify_connection
from connection_map.saml_metadata import (
    IdpMetadata,
    MetadataError,
    import_idp_metadata,
    parse_idp_metadata,
)
from connection_map.served import ServedConnection, ServedTarget
from connection_map.triage import (
    Reason,
    Triage,
    TriageSettings,
    triage_connections,
    with_assessments,
)

__all__ = [
    "Assessment",
    "CheckEntry",
    "CheckReport",
    "Connection",
    "ConnectionChange",
    "ConnectionMap",
    "ConnectionMapDocument",
    "ConnectionMapError",
    "ConnectionMapFile",
    "CsvExport",
    "CsvImport",
    "FieldChange",
    "ForwardMode",
    "Hold",
    "Identification",
    "IdpMetadata",
    "ImportProblem",
    "ImportRefused",
    "IssuerMatch",
    "LegacyEndpoint",
    "MapDiff",
    "MetadataError",
    "MetadataFetchError",
    "NewProvider",
    "OidcSettings",
    "Organization",
    "Protocol",
    "Reason",
    "Route",
    "RouteTable",
    "SamlSettings",
    "ServedConnection",
    "ServedTarget",
    "SpKeyUse",
    "Strategy",
    "Triage",
    "TriageSettings",
    "check_connections",
    "diff_maps",
    "export_connections_csv",
    "fetch_metadata",
    "identify_connection",
    "import_connections_csv",
    "import_idp_metadata",
    "load_connection_map",
    "parse_idp_metadata",
    "read_connection_map_document",
    "save_connection_map",
    "triage_connections",
    "with_assessments",
]
