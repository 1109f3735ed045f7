"""Rollout flags: which SSO connections go to the new provider, served through OpenFeature."""

from flags.audit import AuditInputError, AuditRecord
from flags.bucketing import bucket
from flags.evaluation import FLAG_KEY, CompiledRollout, Destination, RouteDecision, evaluate
from flags.file.format import FlagFileError
from flags.file.provider import FileFlagProvider
from flags.file.rollout_store import FileRolloutStore, default_audit_path
from flags.file.store import load_rollout_state, write_rollout_state
from flags.redis.keys import RedisKeys, redact_url
from flags.redis.provider import RedisFlagProvider
from flags.redis.rollout_store import RedisRolloutStore
from flags.rollout_store import (
    EmptyStoreRefused,
    RolloutStore,
    RolloutStoreError,
    StoredStateInvalid,
    StoreNotEmpty,
    StoreUnavailable,
    VersionConflict,
)
from flags.route_provider import FlagSourceHealth, ReportsFlagHealth, RouteFlagProvider
from flags.stage_plan import StagePlan, plan_stage
from flags.state import RolloutState

__all__ = [
    "FLAG_KEY",
    "AuditInputError",
    "AuditRecord",
    "CompiledRollout",
    "Destination",
    "EmptyStoreRefused",
    "FileFlagProvider",
    "FileRolloutStore",
    "FlagFileError",
    "FlagSourceHealth",
    "RedisFlagProvider",
    "RedisKeys",
    "RedisRolloutStore",
    "ReportsFlagHealth",
    "RolloutState",
    "RolloutStore",
    "RolloutStoreError",
    "RouteDecision",
    "RouteFlagProvider",
    "StagePlan",
    "StoreNotEmpty",
    "StoreUnavailable",
    "StoredStateInvalid",
    "VersionConflict",
    "bucket",
    "default_audit_path",
    "evaluate",
    "load_rollout_state",
    "plan_stage",
    "redact_url",
    "write_rollout_state",
]
