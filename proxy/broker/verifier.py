"""What a legacy verifier is: checks a credential, or says that legacy could not answer."""

from __future__ import annotations

from typing import Protocol

from proxy.broker.credential import Credential


class LegacyUnavailable(Exception):
    """Legacy could not give an answer (down, slow, erroring): the broker denies."""


class Verifier(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def verify(self, credential: Credential) -> bool:
        """True for the right password; False for a wrong one or an unknown user."""
        ...
