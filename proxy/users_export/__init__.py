"""Users exported from the legacy provider into a local NDJSON state file
(`authswitch users export`), in the form `authswitch users import` reads.

One module per source (auth0, cognito, okta, firebase_file), each turning the vendor's
documented pages into import lines; state.py keeps the file and its cursor so a killed export
resumes with no gap and no duplicate; proxy/http/rate_limits.py waits out 429s as the vendors
document them.
"""

from proxy.users_export.run import ExportSummary, export_users
from proxy.users_export.source import ExportFailed, Page, UserSource
from proxy.users_export.state import ExportState, StateRefused

__all__ = [
    "ExportFailed",
    "ExportState",
    "ExportSummary",
    "Page",
    "StateRefused",
    "UserSource",
    "export_users",
]
