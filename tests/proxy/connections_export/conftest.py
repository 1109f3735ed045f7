"""Fixtures of the connections-export tests."""

from __future__ import annotations

from tests.proxy.cognito_emulator import cognito_emulator

__all__ = ["cognito_emulator"]
