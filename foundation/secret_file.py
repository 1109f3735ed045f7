"""Secrets read from mounted files (Kubernetes Secrets), so they never sit in a config file."""

from __future__ import annotations

from pathlib import Path

from foundation.config_error import ConfigError


def read_secret_file(path: Path, key: str, *, min_bytes: int = 0) -> bytes:
    """A secret from a mounted file (trailing newline removed); errors name the key, never
    the content."""
    try:
        value = path.read_bytes().rstrip(b"\r\n")
    except OSError as exc:
        raise ConfigError(f"{key} '{path}': cannot read: {exc.strerror}") from None
    if len(value) < min_bytes:
        raise ConfigError(f"{key} '{path}': the secret must be at least {min_bytes} bytes")
    return value
