"""The configured flag backend: the proxy's OpenFeature provider and the CLIs' rollout store."""

from __future__ import annotations

from openfeature.provider import FeatureProvider

from flags import (
    FileFlagProvider,
    FileRolloutStore,
    RedisFlagProvider,
    RedisKeys,
    RedisRolloutStore,
    RolloutStore,
)
from flags.redis_keys import connect
from proxy.config import Config, Flags


def provider_for(flags: Flags) -> FeatureProvider:
    """The provider the proxy evaluates through (another OpenFeature provider may replace it)."""
    if flags.backend == "redis":
        settings = flags.redis
        return RedisFlagProvider(
            settings.url,
            key_prefix=settings.key_prefix,
            resync_seconds=settings.resync_seconds,
            socket_timeout_seconds=settings.socket_timeout_seconds,
            stale_error_after_seconds=settings.stale_error_after_seconds,
            password=settings.password(),
        )
    assert flags.file is not None  # the config requires it for the file backend
    return FileFlagProvider(flags.file, poll_interval=flags.poll_interval_seconds)


def open_rollout_store(config: Config, *, client_name: str, min_timeout: float) -> RolloutStore:
    """The store SRE commands read and write; CLI calls get a more patient socket timeout."""
    flags = config.flags
    if flags.backend == "redis":
        settings = flags.redis
        client = connect(
            settings.url,
            socket_timeout=max(settings.socket_timeout_seconds, min_timeout),
            client_name=client_name,
            password=settings.password(),
        )
        return RedisRolloutStore(client, RedisKeys(settings.key_prefix), url=settings.url)
    assert flags.file is not None  # the config requires it for the file backend
    return FileRolloutStore(flags.file, audit_path=flags.audit_file)
