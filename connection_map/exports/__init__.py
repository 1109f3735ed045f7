"""The legacy provider's SSO connections, as the connections CSV `connections import csv` reads.

Converters only (one module per vendor, from its documented objects); fetching them is the CLI's
(proxy/connections_export), so this package stays free of network code.
"""

from connection_map.exports.auth0 import auth0_connection
from connection_map.exports.cognito import cognito_domain_url, cognito_idp
from connection_map.exports.okta import okta_idp
from connection_map.exports.rows import ExportedConnection, connections_csv

__all__ = [
    "ExportedConnection",
    "auth0_connection",
    "cognito_domain_url",
    "cognito_idp",
    "connections_csv",
    "okta_idp",
]
