"""RedisFlagProvider through the real OpenFeature SDK, on real Redis servers.

Pushed changes, resync healing lost messages, and outages: a frozen (SIGSTOP) or stopped Redis
while evaluations run, a cold start with Redis down, Redis coming back without a restart.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator

import pytest
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEvent
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason
from openfeature.provider import ProviderStatus
from prometheus_client import REGISTRY

from flags import (
    FLAG_KEY,
    EmptyStoreRefused,
    RedisFlagProvider,
    RedisKeys,
    RedisRolloutStore,
    RolloutState,
)
from flags.redis.keys import connect
from tests.flags.conftest import SdkHarness
from tests.flags.redis_support import PrivateRedis, RedisTarget, wait_until


def _ctx(connection_id: str) -> EvaluationContext:
    return EvaluationContext(targeting_key=connection_id)


def _store(url: str, prefix: str) -> RedisRolloutStore:
    return RedisRolloutStore(
        connect(url, socket_timeout=2, client_name="authswitch-test"), RedisKeys(prefix), url=url
    )


def _provider(url: str, prefix: str, **options: float) -> RedisFlagProvider:
    settings = {
        "resync_seconds": 0.2,
        "socket_timeout_seconds": 0.2,
        "stale_error_after_seconds": 60.0,
        **options,
    }
    return RedisFlagProvider(url, key_prefix=prefix, **settings)


def _route(client: OpenFeatureClient, connection_id: str) -> str:
    return client.get_string_value(FLAG_KEY, "legacy", _ctx(connection_id))


class Traffic:
    """Evaluations in a loop on another thread, as callbacks would run them, all recorded."""

    def __init__(self, client: OpenFeatureClient, connection_id: str) -> None:
        self._client = client
        self._connection_id = connection_id
        self.results: list[tuple[str, str | None, object]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            details = self._client.get_string_details(FLAG_KEY, "legacy", _ctx(self._connection_id))
            self.results.append((details.value, details.variant, details.error_code))
            time.sleep(0.002)


@pytest.fixture
def redis_state(shared_redis: RedisTarget) -> Iterator[RedisRolloutStore]:
    yield _store(shared_redis.url, shared_redis.prefix)


def test_serves_the_state_in_redis_with_variant_reason_and_version(
    sdk: SdkHarness, shared_redis: RedisTarget, redis_state: RedisRolloutStore
) -> None:
    redis_state.write(
        0,
        RolloutState(canary=("acme",), overrides={"initech": "off"}, stage_percent=100),
        actor="alice",
        reason="r",
        action="stage",
    )
    client = sdk.serve(_provider(shared_redis.url, shared_redis.prefix))

    acme = client.get_string_details(FLAG_KEY, "legacy", _ctx("acme"))
    initech = client.get_string_details(FLAG_KEY, "legacy", _ctx("initech"))
    other = client.get_string_details(FLAG_KEY, "legacy", _ctx("globex"))

    assert (acme.value, acme.variant, acme.reason) == ("new", "canary", Reason.TARGETING_MATCH)
    assert (initech.value, initech.variant, initech.reason) == (
        "legacy",
        "override_off",
        Reason.DISABLED,
    )
    assert (other.value, other.variant) == ("new", "stage_in")
    assert acme.flag_metadata["version"] == 1
    assert client.get_provider_status() is ProviderStatus.READY


def test_an_empty_redis_is_a_known_state_legacy_for_everyone(
    sdk: SdkHarness, shared_redis: RedisTarget
) -> None:
    provider = _provider(shared_redis.url, shared_redis.prefix)
    client = sdk.serve(provider)

    details = client.get_string_details(FLAG_KEY, "legacy", _ctx("acme"))

    assert (details.value, details.variant, details.error_code) == ("legacy", "stage_out", None)
    health = provider.health()
    assert (health.has_state, health.version, health.stale) == (True, 0, False)


def test_a_published_change_is_honoured_without_waiting_for_the_resync(
    sdk: SdkHarness, shared_redis: RedisTarget, redis_state: RedisRolloutStore
) -> None:
    provider = _provider(shared_redis.url, shared_redis.prefix, resync_seconds=60)
    client = sdk.serve(provider)
    changed = sdk.record(client, ProviderEvent.PROVIDER_CONFIGURATION_CHANGED)
    assert _route(client, "acme") == "legacy"

    redis_state.write(
        0, RolloutState(overrides={"acme": "on"}), actor="a", reason="r", action="enable"
    )
    took = wait_until(lambda: _route(client, "acme") == "new", deadline=2.0)

    assert took < 1.0
    events = changed.wait_for(1)
    assert events[0].flags_changed == [FLAG_KEY]
    assert events[0].metadata == {"version": 1}


def test_a_lost_change_message_is_healed_by_the_periodic_resync(
    sdk: SdkHarness, shared_redis: RedisTarget
) -> None:
    client = sdk.serve(_provider(shared_redis.url, shared_redis.prefix, resync_seconds=0.2))
    keys = RedisKeys(shared_redis.prefix)
    redis = shared_redis.client()

    # Written as a writer whose PUBLISH was lost would leave it: doc and version, no message.
    redis.set(keys.doc, json.dumps(RolloutState(version=1, kill_all=True).model_dump()))
    redis.set(keys.version, 1)

    wait_until(lambda: client.get_string_details(FLAG_KEY, "x", _ctx("a")).variant == "kill_all")


def test_redis_frozen_during_traffic_serves_last_known_good_then_recovers(
    sdk: SdkHarness, private_redis: PrivateRedis
) -> None:
    store = _store(private_redis.url, "app")
    store.write(0, RolloutState(canary=("acme",)), actor="a", reason="r", action="canary_add")
    provider = _provider(private_redis.url, "app", stale_error_after_seconds=0.6)
    client = sdk.serve(provider)
    stale = sdk.record(client, ProviderEvent.PROVIDER_STALE)
    error = sdk.record(client, ProviderEvent.PROVIDER_ERROR)
    ready = sdk.record(client, ProviderEvent.PROVIDER_READY)
    ready_before = len(ready.wait_for(1, timeout=0.5))

    with Traffic(client, "acme") as traffic:
        time.sleep(0.1)
        private_redis.freeze()
        stale_event = stale.wait_for(1)[0]
        assert client.get_provider_status() in (ProviderStatus.STALE, ProviderStatus.ERROR)
        health = provider.health()
        assert health.stale and health.has_state and health.version == 1
        assert health.stale_seconds is not None and health.stale_seconds > 0
        details = client.get_string_details(FLAG_KEY, "legacy", _ctx("acme"))
        assert (details.value, details.variant, details.reason) == ("new", "canary", "STALE")
        error_event = error.wait_for(1)[0]  # after the grace period: ERROR, never FATAL
        assert client.get_provider_status() is ProviderStatus.ERROR
        # Refreshed at every failed attempt, so it trails the live figure by one attempt.
        exported = REGISTRY.get_sample_value("authswitch_flags_stale_seconds", {"backend": "redis"})
        assert exported is not None and 0 < exported <= (provider.health().stale_seconds or 0)
        assert REGISTRY.get_sample_value("authswitch_redis_up") == 0
        private_redis.thaw()
        wait_until(lambda: client.get_provider_status() is ProviderStatus.READY)
        time.sleep(0.05)

    assert stale_event.metadata == {"version": 1}
    assert error_event.error_code is ErrorCode.GENERAL
    assert len(ready.wait_for(ready_before + 1)) > ready_before
    assert provider.health().stale is False
    assert len(traffic.results) > 50
    assert set(traffic.results) == {("new", "canary", None)}, "an evaluation answered otherwise"
    # Back in sync without a restart: the next change is honoured.
    store.write(1, RolloutState(), actor="a", reason="r", action="canary_remove")
    wait_until(lambda: _route(client, "acme") == "legacy")


def test_redis_restarted_empty_keeps_last_known_good_until_state_is_written_again(
    sdk: SdkHarness, private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    _store(private_redis.url, "app").write(
        0, RolloutState(overrides={"acme": "on"}), actor="a", reason="r", action="enable"
    )
    provider = _provider(private_redis.url, "app")
    client = sdk.serve(provider)

    private_redis.stop()
    wait_until(lambda: provider.health().stale)
    assert _route(client, "acme") == "new"
    private_redis.start()  # same port, no data: what a Redis without persistence comes back as
    wait_until(lambda: not provider.health().stale)

    assert _route(client, "acme") == "new", "a lost state must not send everyone to legacy"
    assert provider.health().last_error is not None
    assert "is missing; keeping version 1" in provider.health().last_error
    assert client.get_provider_status() is ProviderStatus.ERROR

    # The replica recorded the version it serves: a write on top of the empty store is refused
    # until someone initialises it on purpose (then versions go on after the replica's).
    store = _store(private_redis.url, "app")
    with pytest.raises(EmptyStoreRefused, match="replicas were serving version 1"):
        store.write(0, RolloutState(overrides={"acme": "off"}), actor="a", reason="r", action="x")
    assert _route(client, "acme") == "new"
    assert store.initialise_empty_store(actor="a", reason="Redis lost its data").version == 2
    store.write(
        2, RolloutState(overrides={"acme": "off"}), actor="a", reason="restore", action="disable"
    )
    wait_until(lambda: provider.health().version == 3)
    wait_until(lambda: client.get_provider_status() is ProviderStatus.READY)
    assert client.get_string_details(FLAG_KEY, "x", _ctx("acme")).variant == "override_off"


def test_cold_start_with_redis_down_serves_legacy_then_loads_state_when_it_answers(
    sdk: SdkHarness, private_redis: PrivateRedis
) -> None:
    _store(private_redis.url, "app").write(
        0, RolloutState(canary=("acme",)), actor="a", reason="r", action="canary_add"
    )
    private_redis.freeze()
    provider = _provider(private_redis.url, "app", socket_timeout_seconds=0.5)

    started = time.monotonic()
    client = sdk.serve(provider)
    took = time.monotonic() - started
    error = sdk.record(client, ProviderEvent.PROVIDER_ERROR)
    changed = sdk.record(client, ProviderEvent.PROVIDER_CONFIGURATION_CHANGED)

    assert took < 1.5, f"initialize blocked {took:.2f} s"
    details = client.get_string_details(FLAG_KEY, "legacy", _ctx("acme"))
    assert (details.value, details.error_code) == ("legacy", ErrorCode.PROVIDER_NOT_READY)
    assert error.wait_for(1)[0].error_code is ErrorCode.PROVIDER_NOT_READY
    health = provider.health()
    assert (health.has_state, health.version) == (False, None)

    private_redis.thaw()
    wait_until(lambda: _route(client, "acme") == "new")
    assert changed.wait_for(1)[0].metadata == {"version": 1}
    wait_until(lambda: client.get_provider_status() is ProviderStatus.READY)
    assert provider.health().has_state


def test_an_invalid_document_keeps_the_last_good_state_and_is_reported_once(
    sdk: SdkHarness,
    shared_redis: RedisTarget,
    redis_state: RedisRolloutStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    redis_state.write(0, RolloutState(canary=("acme",)), actor="a", reason="r", action="x")
    provider = _provider(shared_redis.url, shared_redis.prefix, resync_seconds=0.05)
    client = sdk.serve(provider)
    error = sdk.record(client, ProviderEvent.PROVIDER_ERROR)
    keys = RedisKeys(shared_redis.prefix)
    redis = shared_redis.client()
    caplog.set_level(logging.WARNING, logger="flags.redis.provider")

    redis.set(keys.doc, b'{"version": 2, "stage_percent": 250}')
    redis.set(keys.version, 2)
    redis.publish(keys.changed, 2)

    assert error.wait_for(1)[0].error_code is ErrorCode.PARSE_ERROR
    time.sleep(0.3)  # several resyncs meet the same broken document
    assert _route(client, "acme") == "new"
    assert "stage_percent" in (provider.health().last_error or "")
    assert sum("stage_percent" in r.getMessage() for r in caplog.records) == 1
    assert len(error.wait_for(2, timeout=0.1)) == 1

    # The store refuses to build on a document it can't read; it is repaired as it was broken.
    redis.set(keys.doc, json.dumps(RolloutState(version=3).model_dump()))
    redis.set(keys.version, 3)
    wait_until(lambda: client.get_provider_status() is ProviderStatus.READY)
    assert _route(client, "acme") == "legacy"


def test_shutdown_stops_the_listener(shared_redis: RedisTarget, sdk: SdkHarness) -> None:
    provider = _provider(shared_redis.url, shared_redis.prefix)
    sdk.serve(provider)
    listener = provider.listener_thread
    assert listener is not None and listener.is_alive()

    provider.shutdown()

    assert not listener.is_alive()
    provider.shutdown()  # idempotent


def test_the_password_never_reaches_health_events_or_logs(
    sdk: SdkHarness, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.flags.redis_support import free_port

    caplog.set_level(logging.DEBUG)
    url = f"redis://:hunter2-SEEKRIT@127.0.0.1:{free_port()}/0"
    provider = _provider(url, "app")
    client = sdk.serve(provider)
    error = sdk.record(client, ProviderEvent.PROVIDER_ERROR)

    event = error.wait_for(1)[0]

    assert "hunter2" not in (event.message or "")
    assert "hunter2" not in json.dumps(provider.health().as_dict())
    assert "hunter2" not in caplog.text
    assert "127.0.0.1" in (provider.health().last_error or "")


def test_a_different_state_under_the_same_version_is_still_honoured(
    sdk: SdkHarness, shared_redis: RedisTarget, redis_state: RedisRolloutStore
) -> None:
    """After a Redis without persistence restarts, version 1 can be written again."""
    redis_state.write(0, RolloutState(canary=("acme",)), actor="a", reason="r", action="x")
    client = sdk.serve(_provider(shared_redis.url, shared_redis.prefix, resync_seconds=60))
    keys = RedisKeys(shared_redis.prefix)
    redis = shared_redis.client()

    redis.set(keys.doc, json.dumps(RolloutState(version=1, kill_all=True).model_dump()))
    redis.publish(keys.changed, 1)

    wait_until(lambda: client.get_string_details(FLAG_KEY, "x", _ctx("acme")).variant == "kill_all")
