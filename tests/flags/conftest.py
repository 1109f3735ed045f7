"""Run a FileFlagProvider behind the real OpenFeature SDK, one domain per test."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.event import EventDetails, ProviderEvent
from openfeature.provider.no_op_provider import NoOpProvider

from flags import RolloutState, write_rollout_state
from flags.route_provider import RouteFlagProvider

# Real Redis for the Redis backend's tests: fixtures shared with tests/proxy.
from tests.flags.redis_support import private_redis, shared_redis  # noqa: F401


class RecordedEvents:
    """Collects one kind of provider event; the SDK delivers them on its own handler threads."""

    def __init__(self) -> None:
        self._events: list[EventDetails] = []
        self._changed = threading.Condition()

    def __call__(self, details: EventDetails) -> None:
        with self._changed:
            self._events.append(details)
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float = 3.0) -> list[EventDetails]:
        with self._changed:
            self._changed.wait_for(lambda: len(self._events) >= count, timeout)
            return list(self._events)


class SdkHarness:
    def __init__(self) -> None:
        self.domain = f"authswitch-flags-test-{uuid.uuid4().hex}"
        self.providers: list[RouteFlagProvider] = []
        self._handlers: list[tuple[OpenFeatureClient, ProviderEvent, RecordedEvents]] = []

    def serve(self, provider: RouteFlagProvider) -> OpenFeatureClient:
        self.providers.append(provider)
        api.set_provider_and_wait(provider, self.domain)
        return self.client()

    def client(self) -> OpenFeatureClient:
        return api.get_client(self.domain)

    def record(self, client: OpenFeatureClient, event: ProviderEvent) -> RecordedEvents:
        recorded = RecordedEvents()
        client.add_handler(event, recorded)
        self._handlers.append((client, event, recorded))
        return recorded

    def close(self) -> None:
        for client, event, recorded in self._handlers:
            client.remove_handler(event, recorded)
        for provider in self.providers:
            provider.shutdown()
        api.set_provider(NoOpProvider(), self.domain)


@pytest.fixture
def sdk() -> Iterator[SdkHarness]:
    harness = SdkHarness()
    yield harness
    harness.close()


@pytest.fixture
def flag_file(tmp_path: Path) -> Path:
    path = tmp_path / "flags.yaml"
    write_rollout_state(
        path,
        RolloutState(
            version=1,
            stage_percent=0,
            canary=("acme",),
            overrides={"globex": "on", "initech": "off"},
        ),
    )
    return path


def eventually(condition: Callable[[], bool], deadline: float = 3.0) -> bool:
    """Poll ``condition`` until it holds or ``deadline`` seconds pass."""
    give_up = time.monotonic() + deadline
    while time.monotonic() < give_up:
        if condition():
            return True
        time.sleep(0.01)
    return condition()
