"""The password broker's ASGI handler: authenticate, limit, verify at legacy, provision, answer.

Every failure after authentication is answered like a wrong password (fail closed): legacy
down or slow, Redis unusable, the new provider refusing the user. A hook call never waits
longer than its front door's budget.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import random
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from proxy.broker import metrics
from proxy.broker.backends import provisioner_for, verifier_for
from proxy.broker.config import Broker as BrokerConfig
from proxy.broker.credential import Credential, hash_identifier
from proxy.broker.front_doors import FRONT_DOORS, BadHookRequest, FrontDoor, HookRequest
from proxy.broker.hook_auth import HookAuthenticator, HookRefused, Signed
from proxy.broker.provisioning import IdempotentProvisioning, Provisioner, ProvisioningFailed
from proxy.broker.rate_limit_storage import rate_limit_storage
from proxy.broker.rate_limits import RateLimits
from proxy.broker.verifier import LegacyUnavailable, Profile, Verifier
from proxy.http.asgi_types import RawHeaders, Receive, Scope, Send
from proxy.http.headers import content_length
from proxy.http.request_body import ClientDisconnected, RequestRejected, read_body
from proxy.http.responses import send_json

_REDIS_CHECK_SECONDS = 1.0

log = logging.getLogger("authswitch.broker")
access_log = logging.getLogger("authswitch.access")
audit_log = logging.getLogger("authswitch.broker.audit")


@dataclass(frozen=True)
class _Answer:
    status: int
    payload: dict[str, object]
    outcome: str
    headers: RawHeaders | None = None
    identifier_hash: str | None = None


class PasswordBroker:
    """Serves the configured front doors under `prefix`."""

    def __init__(
        self,
        config: BrokerConfig,
        *,
        body_seconds: float,
        verifier: Verifier | None = None,
        provisioner: Provisioner | None = None,
    ) -> None:
        self.config = config
        self.prefix = config.path_prefix + "/"
        secret = config.secret()
        self._auth = HookAuthenticator(
            config.authentication,
            secret,
            secret_header=config.secret_header,
            signature_header=config.signature_header,
            tolerance_seconds=config.signature_tolerance_seconds,
        )
        # Identifiers are hashed with a key of their own, derived from the hook secret.
        self._identifier_key = hmac.new(secret, b"authswitch-broker-identifier", "sha256").digest()
        self._doors = {name: FRONT_DOORS[name] for name in config.doors}
        self._body_seconds = body_seconds
        self._verifier = verifier or verifier_for(config)
        self._provisioner = provisioner or provisioner_for(config)
        self._redis: Redis | None = None
        self._redis_reachable = False
        self._redis_watch: asyncio.Task[None] | None = None
        self._limits: RateLimits | None = None
        self._provisioning: IdempotentProvisioning | None = None

    async def startup(self) -> None:
        redis_config = self.config.redis
        # Standalone, Sentinel or Cluster, TLS and password files: the shared settings block.
        self._redis = redis_config.async_client("authswitch-broker")
        storage = rate_limit_storage(redis_config, self._redis)
        rates = self.config.rate_limits
        self._limits = RateLimits(
            storage,
            per_ip=rates.per_ip,
            per_identifier=rates.per_identifier,
            global_rate=rates.global_,
        )
        await self._verifier.start()
        if self._provisioner is not None:
            await self._provisioner.start()
            self._provisioning = IdempotentProvisioning(
                self._redis,
                self._provisioner,
                key_prefix=redis_config.key_prefix,
                lock_seconds=self.config.lock_seconds,
            )
        await self._check_redis()
        self._redis_watch = asyncio.create_task(self._watch_redis())
        log.info("broker started", extra={"doors": list(self._doors), "prefix": self.prefix})

    @property
    def redis_reachable(self) -> bool:
        """Whether the last ping of the broker's Redis (every second) was answered."""
        return self._redis_reachable

    async def _watch_redis(self) -> None:
        while True:
            await asyncio.sleep(_REDIS_CHECK_SECONDS)
            await self._check_redis()

    async def _check_redis(self) -> None:
        assert self._redis is not None
        try:
            await self._redis.ping()
        except Exception as exc:  # whatever it is, the watch goes on and reports "unreachable"
            if self._redis_reachable or self._redis_watch is None:
                log.warning("broker Redis unreachable: hooks are denied (%s)", type(exc).__name__)
            self._redis_reachable = False
            return
        if not self._redis_reachable and self._redis_watch is not None:
            log.info("broker Redis reachable again")
        self._redis_reachable = True

    async def shutdown(self) -> None:
        if self._redis_watch is not None:
            self._redis_watch.cancel()
        await self._verifier.close()
        if self._provisioner is not None:
            await self._provisioner.close()
        if self._redis is not None:
            await self._redis.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        door = self._doors.get(scope["path"][len(self.prefix) :])
        if door is None:
            await send_json(send, 404, {"error": "not_found"})
            return
        if scope["method"] != "POST":
            await send_json(send, 405, {"error": "method_not_allowed"}, [(b"allow", b"POST")])
            return
        request_id = f"{random.getrandbits(64):016x}"
        try:
            answer = await self._answer(door, scope, receive, started)
        except ClientDisconnected:
            return
        headers = [(b"x-request-id", request_id.encode()), *(answer.headers or [])]
        await send_json(send, answer.status, answer.payload, headers)
        elapsed = time.perf_counter() - started
        metrics.HOOK_CALLS.labels(door.name, answer.outcome).inc()
        metrics.HOOK_SECONDS.labels(door.name).observe(elapsed)
        access_log.info(
            "broker_hook",
            extra={
                "fields": {
                    "request_id": request_id,
                    "door": door.name,
                    "identifier_hash": answer.identifier_hash,
                    "outcome": answer.outcome,
                    "status": answer.status,
                    "duration_ms": round(elapsed * 1000, 3),
                }
            },
        )

    async def _answer(
        self, door: FrontDoor, scope: Scope, receive: Receive, started: float
    ) -> _Answer:
        budget: float = getattr(self.config.budget_seconds, door.name)
        headers: RawHeaders = scope["headers"]
        try:
            body = await read_body(
                receive,
                content_length(headers),
                self.config.max_body_bytes,
                min(self._body_seconds, budget),
            )
        except RequestRejected as exc:
            return _Answer(exc.status, {"error": exc.reason}, metrics.REJECTED)
        try:
            signed = self._auth.check(headers, body)
        except HookRefused as exc:
            log.warning("broker hook refused: %s", exc, extra={"door": door.name})
            return _Answer(401, {"error": "unauthorized"}, metrics.UNAUTHORIZED)
        try:
            request = door.request(body)
        except BadHookRequest as exc:
            return _Answer(400, {"error": "bad_request", "message": str(exc)}, metrics.REJECTED)
        identifier_hash = hash_identifier(self._identifier_key, request.identifier)
        if signed is not None:
            refused = await self._refuse_replay(door, request, signed, identifier_hash)
            if refused is not None:
                return refused
        credential = request.credential
        if credential is None:  # no password to check (Cognito's forgot-password): denied
            status, payload = door.answer(request, None)
            return _Answer(status, payload, metrics.DENIED, None, identifier_hash)
        remaining = budget - (time.perf_counter() - started)
        decision = await self._decide(door, request, credential, identifier_hash, remaining)
        if isinstance(decision, int):  # rate limited: seconds to wait
            return _Answer(
                429,
                {"error": "rate_limited"},
                metrics.RATE_LIMITED,
                [(b"retry-after", str(decision).encode())],
                identifier_hash,
            )
        outcome, profile = decision
        status, payload = door.answer(request, profile)
        return _Answer(status, payload, outcome, None, identifier_hash)

    async def _refuse_replay(
        self, door: FrontDoor, request: HookRequest, signed: Signed, identifier_hash: str
    ) -> _Answer | None:
        """None the first time a signature is seen; a signature seen before is refused (401).
        Without Redis to tell, the hook is denied (fail closed)."""
        assert self._redis is not None, "startup() first"
        key = f"{self.config.redis.key_prefix}:broker:sig:{signed.signature_id}"
        try:
            async with asyncio.timeout(self.config.redis.socket_timeout_seconds):
                first = await self._redis.set(key, b"1", nx=True, ex=signed.valid_for_seconds)
        except (RedisError, TimeoutError) as exc:
            log.warning("broker Redis failed (%s)", type(exc).__name__, extra={"door": door.name})
            status, payload = door.answer(request, None)
            return _Answer(status, payload, metrics.BROKER_ERROR, None, identifier_hash)
        if first:
            return None
        log.warning("broker hook refused: replayed signature", extra={"door": door.name})
        return _Answer(401, {"error": "unauthorized"}, metrics.REPLAYED, None, identifier_hash)

    async def _decide(
        self,
        door: FrontDoor,
        request: HookRequest,
        credential: Credential,
        identifier_hash: str,
        budget: float,
    ) -> tuple[str, Profile | None] | int:
        """An outcome code and the verified user's profile (None: not verified), or the
        Retry-After seconds when a rate limit is reached."""
        assert self._limits is not None, "startup() first"
        phase = metrics.BROKER_ERROR
        try:
            async with asyncio.timeout(budget):
                retry_after = await self._limits.hit(request.client_ip, identifier_hash)
                if retry_after is not None:
                    return retry_after
                phase = metrics.LEGACY_ERROR
                verified = await self._verifier.verify(credential)
                if verified is None:
                    return metrics.DENIED, None
                profile = verified.completed(credential.identifier)
                if self._provisioning is not None:
                    phase = metrics.PROVISION_ERROR
                    result = await self._provisioning.ensure(credential, profile, identifier_hash)
                    self._audit(door, identifier_hash, result)
                return metrics.VERIFIED, profile
        except TimeoutError:
            log.warning("broker hook over budget", extra={"door": door.name, "phase": phase})
        except LegacyUnavailable as exc:
            log.warning("legacy verifier failed: %s", exc, extra={"door": door.name})
            phase = metrics.LEGACY_ERROR
        except ProvisioningFailed as exc:
            log.warning("provisioning failed: %s", exc, extra={"door": door.name})
        except RedisError as exc:
            log.warning("broker Redis failed (%s)", type(exc).__name__, extra={"door": door.name})
            phase = metrics.BROKER_ERROR
        except Exception as exc:
            # Fail closed; the type only, as a message could quote the credential.
            log.error("broker hook failed (%s)", type(exc).__name__, extra={"door": door.name})
        if phase == metrics.PROVISION_ERROR:
            self._audit(door, identifier_hash, metrics.FAILED)
        return phase, None

    def _audit(self, door: FrontDoor, identifier_hash: str, result: str) -> None:
        metrics.PROVISIONING.labels(door.name, result).inc()
        audit_log.info(
            "provisioning",
            extra={
                "fields": {"door": door.name, "identifier_hash": identifier_hash, "result": result}
            },
        )
