"""Fixtures of the users-export tests."""

from __future__ import annotations

from tests.proxy.users_import.conftest import scim

__all__ = ["scim"]
