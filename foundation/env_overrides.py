"""Configuration keys set from the environment, the way containers are configured.

Naming rule: ``AUTHSWITCH__`` then the key's path, sections separated by ``__``, case-
insensitive: ``AUTHSWITCH__FLAGS__REDIS__URL`` sets ``flags.redis.url``; a number indexes a
list (``AUTHSWITCH__ROUTES__0__PATH``). The value is read as YAML, so ``true``, ``5`` and
``[a, b]`` are a boolean, a number and a list (quote it to keep a string: ``'"5"'``). With the
suffix ``__FILE`` the value is a path and the key gets the file's content as a string (trailing
newline removed): a secret mounted as a file never sits in the environment or the config file.
An environment variable wins over the config file.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foundation.config_error import ConfigError
from foundation.secret_file import read_secret_file
from foundation.strict_yaml import YamlDocumentError, load_yaml

ENV_PREFIX = "AUTHSWITCH__"
FILE_SUFFIX = "__FILE"
_SEGMENT = re.compile(r"^[a-z0-9_]{1,100}$")


@dataclass(frozen=True)
class EnvOverride:
    """One environment variable and the configuration key it sets."""

    variable: str
    path: tuple[str | int, ...]
    value: Any

    @property
    def key(self) -> str:
        return ".".join(str(part) for part in self.path)


def env_overrides(environ: Mapping[str, str]) -> list[EnvOverride]:
    """The overrides the environment holds, in a stable order; ``ConfigError`` naming the
    variable (never its value) if one can't be used."""
    overrides = []
    for variable in sorted(name for name in environ if name.upper().startswith(ENV_PREFIX)):
        rest = variable[len(ENV_PREFIX) :]
        from_file = rest.upper().endswith(FILE_SUFFIX)
        if from_file:
            rest = rest[: -len(FILE_SUFFIX)]
        path = _key_path(variable, rest)
        if from_file:
            value: Any = read_secret_file(Path(environ[variable]), variable).decode()
        else:
            try:
                value = load_yaml(environ[variable])
            except YamlDocumentError as exc:
                raise ConfigError(f"environment {variable}: {exc}") from None
        overrides.append(EnvOverride(variable, path, value))
    return overrides


def apply_overrides(raw: dict[str, Any], overrides: list[EnvOverride]) -> dict[str, Any]:
    """A copy of the config mapping ``raw`` with every override set."""
    result = copy.deepcopy(raw)
    for override in overrides:
        _set(result, override)
    return result


def _key_path(variable: str, rest: str) -> tuple[str | int, ...]:
    segments = rest.lower().split("__")
    if not all(_SEGMENT.match(segment) for segment in segments):
        raise ConfigError(
            f"environment {variable}: not a key path (sections of letters, digits and _ "
            f"joined by __ after {ENV_PREFIX})"
        )
    return tuple(int(segment) if segment.isdigit() else segment for segment in segments)


def _set(raw: dict[str, Any], override: EnvOverride) -> None:
    node: Any = raw
    *parents, last = override.path
    for depth, part in enumerate(parents):
        child = _child(node, part, override, depth)
        if child is None:
            child = {}
            node[part] = child
        node = child
    _check_container(node, last, override, len(parents))
    if isinstance(node, list):
        assert isinstance(last, int)
        node[last] = override.value
    else:
        node[last] = override.value


def _child(node: Any, part: str | int, override: EnvOverride, depth: int) -> Any:
    _check_container(node, part, override, depth)
    if isinstance(node, list):
        assert isinstance(part, int)
        return node[part]
    return node.get(part)


def _check_container(node: Any, part: str | int, override: EnvOverride, depth: int) -> None:
    where = ".".join(str(p) for p in override.path[:depth]) or "(top level)"
    if isinstance(node, list):
        if not isinstance(part, int) or not 0 <= part < len(node):
            raise ConfigError(
                f"environment {override.variable}: '{where}' is a list of {len(node)}; "
                f"'{part}' is not one of its indexes"
            )
    elif not isinstance(node, dict):
        raise ConfigError(
            f"environment {override.variable}: '{where}' is a value, not a section with keys"
        )
