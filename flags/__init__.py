"""Rollout flags: which SSO connections go to the new provider, served through OpenFeature.

Names are imported on first use (PEP 562), so a process that needs one module of the package
(a serving worker) does not load the others and what they import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from foundation.lazy_names import lazy_names

if TYPE_CHECKING:
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

# name -> module that defines it
_MODULES = {
    "AuditInputError": "flags.audit",
    "AuditRecord": "flags.audit",
    "bucket": "flags.bucketing",
    "FLAG_KEY": "flags.evaluation",
    "CompiledRollout": "flags.evaluation",
    "Destination": "flags.evaluation",
    "RouteDecision": "flags.evaluation",
    "evaluate": "flags.evaluation",
    "FlagFileError": "flags.file.format",
    "FileFlagProvider": "flags.file.provider",
    "FileRolloutStore": "flags.file.rollout_store",
    "default_audit_path": "flags.file.rollout_store",
    "load_rollout_state": "flags.file.store",
    "write_rollout_state": "flags.file.store",
    "RedisKeys": "flags.redis.keys",
    "redact_url": "flags.redis.keys",
    "RedisFlagProvider": "flags.redis.provider",
    "RedisRolloutStore": "flags.redis.rollout_store",
    "EmptyStoreRefused": "flags.rollout_store",
    "RolloutStore": "flags.rollout_store",
    "RolloutStoreError": "flags.rollout_store",
    "StoredStateInvalid": "flags.rollout_store",
    "StoreNotEmpty": "flags.rollout_store",
    "StoreUnavailable": "flags.rollout_store",
    "VersionConflict": "flags.rollout_store",
    "FlagSourceHealth": "flags.route_provider",
    "ReportsFlagHealth": "flags.route_provider",
    "RouteFlagProvider": "flags.route_provider",
    "StagePlan": "flags.stage_plan",
    "plan_stage": "flags.stage_plan",
    "RolloutState": "flags.state",
}

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


__getattr__, __dir__ = lazy_names(__name__, _MODULES, __all__)
