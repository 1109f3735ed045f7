"""The one error a configuration that can't be used raises, whichever part it configures."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError


class ConfigError(Exception):
    """The configuration can't be used; the message names the file, the key and the problem."""


def invalid_config(
    source: Path, exc: ValidationError, *, under: tuple[str, ...] = ()
) -> ConfigError:
    """One ConfigError naming the file and every key with its problem, never the input value."""
    problems = [
        f"key '{'.'.join(str(p) for p in (*under, *err['loc'])) or '(top level)'}': {err['msg']}"
        for err in exc.errors(include_url=False, include_input=False)
    ]
    return ConfigError(f"config '{source}': " + "; ".join(problems))
