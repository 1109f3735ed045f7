"""Fixtures of the users-export tests."""

from __future__ import annotations

from tests.proxy.cognito_emulator import cognito_emulator
from tests.proxy.users_import.conftest import scim

__all__ = ["cognito_emulator", "scim"]
