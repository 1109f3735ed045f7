"""Rollout flags: which SSO connections go to the new provider, served through OpenFeature."""

from flags.bucketing import bucket
from flags.evaluation import FLAG_KEY, Route, RouteDecision, evaluate
from flags.file_format import FlagFileError
from flags.file_provider import FileFlagProvider
from flags.file_store import load_rollout_state, write_rollout_state
from flags.state import RolloutState

__all__ = [
    "FLAG_KEY",
    "FileFlagProvider",
    "FlagFileError",
    "RolloutState",
    "Route",
    "RouteDecision",
    "bucket",
    "evaluate",
    "load_rollout_state",
    "write_rollout_state",
]
