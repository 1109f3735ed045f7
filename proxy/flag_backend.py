"""The configured flag backend: the proxy's OpenFeature provider and the CLIs' rollout store."""

from __future__ import annotations

from typing import cast

from openfeature.provider import FeatureProvider

from connection_map import Connection
from flags import FileFlagProvider, FileRolloutStore, RolloutStore, RolloutStoreError
from flags.route_report import ConnectionFacts
from proxy.config import Config, ConfigError, Flags, OpenFeatureFlags, provider_kwargs


class UnmanagedFlagBackend(RolloutStoreError):
    """The rollout lives in another flag system: authswitch's commands can't read or change it."""


def provider_for(flags: Flags) -> FeatureProvider:
    """The provider the proxy evaluates through (another OpenFeature provider may replace it)."""
    if flags.backend == "openfeature":
        assert flags.openfeature is not None  # the config requires it for this backend
        return configured_provider(flags.openfeature)
    if flags.backend == "redis":
        # The Redis backends (and their client library) load only when configured.
        from flags import RedisFlagProvider

        settings = flags.redis
        return RedisFlagProvider(
            settings.url,
            key_prefix=settings.key_prefix,
            resync_seconds=settings.resync_seconds,
            socket_timeout_seconds=settings.socket_timeout_seconds,
            stale_error_after_seconds=settings.stale_error_after_seconds,
            password=settings.password(),
            ca_file=settings.ca_file,
            topology=settings.redis_topology(),
            poll_seconds=None if settings.pubsub else settings.poll_seconds,
        )
    assert flags.file is not None  # the config requires it for the file backend
    return FileFlagProvider(flags.file, poll_interval=flags.poll_interval_seconds)


def configured_provider(settings: OpenFeatureFlags) -> FeatureProvider:
    """`flags.openfeature.provider` called with `options` as keyword arguments."""
    where = f"flags.openfeature.provider '{settings.provider}'"
    try:
        factory = settings.factory()
        kwargs = provider_kwargs(factory, settings.options)
    except ValueError as exc:  # the import or the options, worded as the config check words it
        raise ConfigError(f"{where}: {exc}") from None
    try:
        provider = factory(**kwargs)
    except Exception as exc:  # the provider refused its options
        raise ConfigError(
            f"{where}: the provider could not be created: {type(exc).__name__}: {exc}"
        ) from None
    missing = [
        name
        for name in ("get_metadata", "resolve_string_details", "resolve_boolean_details")
        if not callable(getattr(provider, name, None))
    ]
    if missing:
        raise ConfigError(
            f"{where}: returned {type(provider).__name__}, not an OpenFeature provider "
            f"(no {', '.join(missing)})"
        )
    return cast(FeatureProvider, provider)


def open_rollout_store(config: Config, *, client_name: str, min_timeout: float) -> RolloutStore:
    """The store SRE commands read and write; CLI calls get a more patient socket timeout."""
    flags = config.flags
    if flags.backend == "openfeature":
        raise UnmanagedFlagBackend(
            "flags.backend is 'openfeature': the rollout lives in the provider's own flag "
            "system; these commands manage only the 'file' and 'redis' backends"
        )
    if flags.backend == "redis":
        from flags import RedisKeys, RedisRolloutStore

        settings = flags.redis
        client = settings.client(client_name, min_socket_timeout=min_timeout)
        keys = RedisKeys(settings.key_prefix)
        return RedisRolloutStore(client, keys, url=settings.url, publish=settings.pubsub)
    assert flags.file is not None  # the config requires it for the file backend
    return FileRolloutStore(flags.file, audit_path=flags.audit_file)


def connection_facts_of(connection: Connection) -> ConnectionFacts:
    """What the route report needs to know of a connection."""
    return ConnectionFacts(
        id=connection.id,
        protocol=connection.protocol.value,
        assessment=connection.assessment.value,
        imported=connection.new_provider is not None,
    )
