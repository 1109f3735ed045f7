"""The one error a configuration that can't be used raises, whichever part it configures."""

from __future__ import annotations


class ConfigError(Exception):
    """The configuration can't be used; the message names the file, the key and the problem."""
