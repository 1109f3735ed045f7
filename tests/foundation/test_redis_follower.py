"""The one follower loop: subscribe then resync, messages, outages with backoff, clean stop."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
import redis

from foundation.redis_client import connect_redis
from foundation.redis_follower import BACKOFF_START_SECONDS, RedisFollower
from tests.flags.redis_support import PrivateRedis, private_redis, wait_until  # noqa: F401

log = logging.getLogger("tests.foundation.follower")


class ValueFollower(RedisFollower):
    """Keeps one Redis string in memory: the smallest real follower."""

    def __init__(self, url: str, *, resync_seconds: float | None = 0.2) -> None:
        super().__init__(
            where="test value",
            thread_name="test-follower",
            resync_seconds=resync_seconds,
            log=log,
        )
        self.client = connect_redis(url, socket_timeout=0.2, client_name="test-follower")
        self.value: bytes | None = None
        self.events: list[str] = []
        self.lock = threading.Lock()

    def _listening_client(self) -> redis.Redis:
        return self.client

    def _channel(self) -> str:
        return "test:changed"

    def _read(self, why: str) -> None:
        self.value = self.client.get("test:value")
        self._confirm()
        with self.lock:
            self.events.append(why)

    def _on_subscribed(self) -> None:
        self._read("subscribed")

    def _on_message(self, data: Any) -> None:
        self._read("message")

    def _on_resync(self) -> None:
        self._read("resync")


@pytest.fixture
def follower(private_redis: PrivateRedis) -> Any:  # noqa: F811
    follower = ValueFollower(private_redis.url)
    yield follower
    follower._stop_listener()
    follower.client.close()


def test_a_message_is_followed_and_a_lost_one_is_healed_by_the_resync(
    follower: ValueFollower,
    private_redis: PrivateRedis,  # noqa: F811
) -> None:
    writer = private_redis.client()
    writer.set("test:value", "1")
    follower._start_listener()
    wait_until(lambda: follower.value == b"1")
    assert follower.events[0] == "subscribed"

    writer.set("test:value", "2")
    writer.publish("test:changed", "2")
    wait_until(lambda: follower.value == b"2")
    assert "message" in follower.events

    writer.set("test:value", "3")  # written without a message: only the resync sees it
    wait_until(lambda: follower.value == b"3")
    assert "resync" in follower.events


def test_an_outage_is_noted_once_and_ends_when_redis_answers_again(
    follower: ValueFollower,
    private_redis: PrivateRedis,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=log.name)
    private_redis.client().set("test:value", "kept")
    follower._start_listener()
    wait_until(lambda: follower.value == b"kept")

    private_redis.stop()
    wait_until(lambda: follower._outage_since is not None)
    assert follower._outage_error is not None and "test value: " in follower._outage_error
    assert follower.value == b"kept", "memory keeps serving during the outage"
    wait_until(lambda: follower._failures >= 3)  # it keeps trying, with a growing backoff
    unreachable = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(unreachable) == 1, "one warning per outage, not one per attempt"

    private_redis.start()  # empty: the next resync reads None
    wait_until(lambda: follower._outage_since is None and follower.value is None)
    assert any("reachable again after" in r.getMessage() for r in caplog.records)
    assert follower._outage_error is None


def test_stop_ends_the_thread_promptly_even_while_it_backs_off(
    follower: ValueFollower,
    private_redis: PrivateRedis,  # noqa: F811
) -> None:
    private_redis.stop()
    follower._start_listener()
    thread = follower.listener_thread
    assert thread is not None
    wait_until(lambda: follower._failures >= 1)
    follower._stop_listener()
    assert not thread.is_alive()
    assert follower.listener_thread is None
    follower._stop_listener()  # twice is fine


def test_the_backoff_doubles_from_a_tenth_of_a_second_up_to_its_cap() -> None:
    follower = ValueFollower("redis://127.0.0.1:1/0", resync_seconds=1.0)
    for failures, ceiling in [(0, 0.1), (1, 0.2), (2, 0.4), (3, 0.8), (4, 1.0), (30, 1.0)]:
        follower._failures = failures
        delays = [follower._backoff() for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), failures
        assert max(delays) - min(delays) > ceiling / 10, "jittered, so replicas spread out"
    assert BACKOFF_START_SECONDS == 0.1
    follower.client.close()


def test_resync_seconds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="resync_seconds must be > 0"):
        ValueFollower("redis://127.0.0.1:1/0", resync_seconds=0)
