"""Fixtures the console's test modules share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.proxy.console.oidc_provider import OidcProvider, start_provider


@pytest.fixture
def op() -> Iterator[OidcProvider]:
    """A real OpenID provider on loopback for the console to sign people in at."""
    provider = start_provider()
    yield provider
    provider.server.stop()
