"""Fixtures of the users-import tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.proxy.users_import.import_support import CountingScim


@pytest.fixture
def scim() -> Iterator[CountingScim]:
    """An empty scim2-server on loopback."""
    server = CountingScim()
    yield server
    server.server.stop()
