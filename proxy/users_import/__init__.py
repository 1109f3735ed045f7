"""Bulk import of password users into the new provider (`authswitch users import`)."""

from proxy.users_import.checkpoint import Checkpoint, CheckpointRefused
from proxy.users_import.drift_report import DriftReport
from proxy.users_import.line_schema import LineProblem, SourceChanged, UserLine, scan_source
from proxy.users_import.progress import ImportProgress
from proxy.users_import.provisioner_target import ProvisionerImportTarget
from proxy.users_import.runner import ImportOptions, OnExisting, UsersImport
from proxy.users_import.scim_target import ScimImportTarget, scim_user_document
from proxy.users_import.target import ImportTarget, Outcome, TargetUnavailable

__all__ = [
    "Checkpoint",
    "CheckpointRefused",
    "DriftReport",
    "ImportOptions",
    "ImportProgress",
    "ImportTarget",
    "LineProblem",
    "OnExisting",
    "Outcome",
    "ProvisionerImportTarget",
    "ScimImportTarget",
    "SourceChanged",
    "TargetUnavailable",
    "UserLine",
    "UsersImport",
    "scan_source",
    "scim_user_document",
]
