"""The connection map: which SSO connections exist, how they are recognised, where they go.

Names are imported on first use (PEP 562), so a process that needs one module of the package
(a serving worker) does not load the others and what they import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from foundation.lazy_names import lazy_names

if TYPE_CHECKING:
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
    from connection_map.routes import (
        Identification,
        Route,
        RouteTable,
        Strategy,
        identify_connection,
    )
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

# name -> module that defines it
_MODULES = {
    "CheckEntry": "connection_map.check_report",
    "CheckReport": "connection_map.check_report",
    "check_connections": "connection_map.check_report",
    "CsvExport": "connection_map.csv_export",
    "export_connections_csv": "connection_map.csv_export",
    "CsvImport": "connection_map.csv_import",
    "ImportProblem": "connection_map.csv_import",
    "ImportRefused": "connection_map.csv_import",
    "import_connections_csv": "connection_map.csv_import",
    "ConnectionMapError": "connection_map.file_store",
    "ConnectionMapFile": "connection_map.file_store",
    "load_connection_map": "connection_map.file_store",
    "read_connection_map_document": "connection_map.file_store",
    "save_connection_map": "connection_map.file_store",
    "ConnectionMap": "connection_map.index",
    "IssuerMatch": "connection_map.index",
    "ConnectionChange": "connection_map.map_diff",
    "FieldChange": "connection_map.map_diff",
    "MapDiff": "connection_map.map_diff",
    "diff_maps": "connection_map.map_diff",
    "MetadataFetchError": "connection_map.metadata_fetch",
    "fetch_metadata": "connection_map.metadata_fetch",
    "Assessment": "connection_map.model",
    "Connection": "connection_map.model",
    "ConnectionMapDocument": "connection_map.model",
    "ForwardMode": "connection_map.model",
    "Hold": "connection_map.model",
    "LegacyEndpoint": "connection_map.model",
    "NewProvider": "connection_map.model",
    "OidcSettings": "connection_map.model",
    "Organization": "connection_map.model",
    "Protocol": "connection_map.model",
    "SamlSettings": "connection_map.model",
    "SpKeyUse": "connection_map.model",
    "Identification": "connection_map.routes",
    "Route": "connection_map.routes",
    "RouteTable": "connection_map.routes",
    "Strategy": "connection_map.routes",
    "identify_connection": "connection_map.routes",
    "IdpMetadata": "connection_map.saml_metadata",
    "MetadataError": "connection_map.saml_metadata",
    "import_idp_metadata": "connection_map.saml_metadata",
    "parse_idp_metadata": "connection_map.saml_metadata",
    "ServedConnection": "connection_map.served",
    "ServedTarget": "connection_map.served",
    "Reason": "connection_map.triage",
    "Triage": "connection_map.triage",
    "TriageSettings": "connection_map.triage",
    "triage_connections": "connection_map.triage",
    "with_assessments": "connection_map.triage",
}

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


__getattr__, __dir__ = lazy_names(__name__, _MODULES, __all__)
