"""A broker provisioner (WorkOS, Kratos) as the bulk import's target: the users of a batch
created one request each, concurrently, a bounded number at a time.

The provisioner answers per user: created (True), already there (False), or ProvisioningFailed.
A failure without an answer (connection error, timeout), a 401/403 (the key), a 408, 425, 429
or 5xx concerns the whole provider: TargetUnavailable, and the runner retries the batch (a user
created before the failure is then answered "already there", never created twice). Any other
status refuses that user only. These providers have no update through the broker's calls:
`update` fails every user, and the CLI refuses `--on-existing update` up front.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

from proxy.broker.credential import Password, PasswordHash
from proxy.broker.provisioning import ProvisioningFailed
from proxy.broker.verifier import Profile
from proxy.users_import.hash_passing import HashNotPassable, HashTarget, passed_hash
from proxy.users_import.line_schema import UserLine
from proxy.users_import.target import CREATED, EXISTS, Outcome, TargetUnavailable, failed

_T = TypeVar("_T")
# Not the user's fault: the provider (or our key) is the problem, a retry of the batch may pass.
_PROVIDER_STATUSES = frozenset({401, 403, 408, 425, 429})
_PROBE = "authswitch-import-probe@example.invalid"  # looked up once at start, never created


class UserProvisioner(Protocol):
    """What the WorkOS and Kratos broker provisioners offer a bulk import."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def exists(self, identifier: str, profile: Profile) -> bool: ...

    async def create_user(
        self,
        identifier: str,
        profile: Profile,
        password: Password | None,
        password_hash: PasswordHash | None = None,
    ) -> bool: ...


def identifier_and_profile(user: UserLine) -> tuple[str, Profile]:
    """The login identifier (the username, else the email) and the attributes of a line."""
    profile = Profile(
        email=user.email,
        # A provider wants a yes or no: absent means the legacy provider didn't say, not verified.
        email_verified=bool(user.email_verified),
        given_name=user.given_name,
        family_name=user.family_name,
    )
    return user.user_name, profile


class ProvisionerImportTarget:
    """Imports into the provider a broker provisioner writes to; `name` is its config type."""

    def __init__(
        self, provisioner: UserProvisioner, *, name: HashTarget, concurrency: int = 16
    ) -> None:
        self._provisioner = provisioner
        self._name = name
        self.hash_target: HashTarget | None = name  # both take hashes, each in its own form
        self._slots = asyncio.Semaphore(concurrency)  # shared by the batches in flight
        # Users created by an attempt at a batch that then raised TargetUnavailable (small:
        # only batches being retried): the retry's "already there" for them counts as created.
        self._created_before_retry: set[str] = set()

    @property
    def transport(self) -> str:
        return self._name

    async def start(self) -> None:
        await self._provisioner.start()
        # One lookup before any batch: a wrong key or a provider that doesn't answer stops the
        # import at start (exit 2), as it does for SCIM, instead of failing every user.
        await self._call(lambda: self._provisioner.exists(_PROBE, Profile(email=_PROBE)))

    async def close(self) -> None:
        await self._provisioner.close()

    async def create_many(self, users: Sequence[UserLine]) -> list[Outcome]:
        # Every create runs to its end, so none is left running behind a retry of the batch.
        results = await asyncio.gather(
            *(self._create(user) for user in users), return_exceptions=True
        )
        outcomes: list[Outcome] = []
        unavailable: BaseException | None = None
        for user, result in zip(users, results, strict=True):
            key = user.user_name.casefold()
            if isinstance(result, BaseException):
                unavailable = unavailable or result
            elif result is EXISTS and key in self._created_before_retry:
                result = CREATED  # created by the attempt that failed: ours, not skipped
            if isinstance(result, Outcome):
                outcomes.append(result)
        if unavailable is not None:
            # The batch will be retried: remember who this attempt did create.
            self._created_before_retry.update(
                user.user_name.casefold()
                for user, outcome in zip(users, results, strict=True)
                if outcome is CREATED
            )
            raise unavailable
        for user in users:
            self._created_before_retry.discard(user.user_name.casefold())
        return outcomes

    async def existing(self, users: Sequence[UserLine]) -> set[str]:
        found = await asyncio.gather(
            *(self._exists(user) for user in users), return_exceptions=True
        )
        for result in found:
            if isinstance(result, BaseException):
                raise result  # after every lookup has ended: none left running
        return {
            user.user_name.casefold() for user, there in zip(users, found, strict=True) if there
        }

    async def update(self, user: UserLine) -> Outcome:
        return failed(f"update not supported by the {self._name} target")

    async def _create(self, user: UserLine) -> Outcome:
        identifier, profile = identifier_and_profile(user)
        password = None if user.password is None else Password(user.password.get_secret_value())
        try:
            password_hash = self._password_hash(user)
        except HashNotPassable as exc:  # the pre-pass refused such lines: a changed file only
            return failed(f"password hash not passable: {exc}")
        try:
            created = await self._call(
                lambda: self._provisioner.create_user(identifier, profile, password, password_hash)
            )
        except ProvisioningFailed as exc:  # this user only: the message names no value
            return failed(str(exc))
        return CREATED if created else EXISTS

    def _password_hash(self, user: UserLine) -> PasswordHash | None:
        if user.password_hash is None or user.password_hash_algorithm is None:
            return None
        encoded, hash_type = passed_hash(
            self._name, user.password_hash.get_secret_value(), user.password_hash_algorithm
        )
        return PasswordHash(encoded, hash_type)

    async def _exists(self, user: UserLine) -> bool:
        identifier, profile = identifier_and_profile(user)
        try:
            return await self._call(lambda: self._provisioner.exists(identifier, profile))
        except ProvisioningFailed as exc:
            # A search refused for one user leaves no answer for the batch: the runner counts
            # it failed after its retries.
            raise TargetUnavailable(str(exc)) from None

    async def _call(self, call: Callable[[], Awaitable[_T]]) -> _T:
        """The call's result under a slot; TargetUnavailable when the provider is the problem."""
        async with self._slots:
            try:
                return await call()
            except ProvisioningFailed as exc:
                if exc.unreachable or exc.status in _PROVIDER_STATUSES or (exc.status or 0) >= 500:
                    raise TargetUnavailable(str(exc)) from None
                raise
