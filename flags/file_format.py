"""The rollout state file format: YAML (or JSON, which YAML reads too), one mapping.

```yaml
version: 3
salt: authswitch-v1
kill_all: false
stage_percent: 25        # % of connections (sticky buckets), steps of 0.01
canary: [acme]
overrides: {globex: "on", initech: "off"}
```

Every key is optional (defaults: version 0, salt ``authswitch-v1``, kill_all false,
stage_percent 0, no canary, no overrides); any other key is an error. YAML 1.1 reads a bare
``on`` / ``off`` as a boolean, so ``globex: on`` is accepted and means ``"on"``. Connection ids
that YAML would read as something other than text (``on``, ``no``, ``true``, ``null``, numbers
like ``12345``) must be quoted. A key given twice is an error, not "the last one wins".
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from pydantic import ValidationError

from flags.state import RolloutState
from flags.validation_messages import describe_validation_error, describe_value

MAX_FILE_BYTES = 4 * 1024 * 1024
_KEYS = tuple(RolloutState.model_fields)


class FlagFileError(Exception):
    """A rollout state file that can't be used; the message names the file, the key and the problem.

    The message never quotes the file's content beyond one short offending value.
    """


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice (PyYAML silently keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, list | dict):  # an unhashable key; let PyYAML report it
                continue
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_rollout_state(data: bytes, file_name: str) -> RolloutState:
    """Parse and fully validate the bytes of a rollout state file; raise ``FlagFileError``."""
    where = f"flags file {file_name!r}"
    if len(data) > MAX_FILE_BYTES:
        raise FlagFileError(f"{where}: file is larger than {MAX_FILE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FlagFileError(f"{where}: not valid UTF-8 (byte offset {exc.start})") from None
    try:
        document = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except yaml.MarkedYAMLError as exc:
        raise FlagFileError(f"{where}: {_describe_yaml_error(exc)}") from None
    except yaml.YAMLError as exc:
        raise FlagFileError(f"{where}: invalid YAML ({type(exc).__name__})") from None
    if not isinstance(document, dict):
        got = "an empty file" if document is None else describe_value(document)
        raise FlagFileError(f"{where}: top level must be a mapping of keys (got {got})")
    try:
        return RolloutState.model_validate(document)
    except ValidationError as exc:
        raise FlagFileError(
            f"{where}: {describe_validation_error(exc, allowed_keys=_KEYS)}"
        ) from None


def render_rollout_state(state: RolloutState, *, as_json: bool = False) -> bytes:
    """Serialise a state so that ``parse_rollout_state`` gives it back unchanged."""
    document = state.model_dump(mode="json")
    if as_json:
        return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return text.encode()


def _describe_yaml_error(exc: yaml.MarkedYAMLError) -> str:
    # str(exc) would quote the offending lines of the file; report the position and problem only.
    mark = exc.problem_mark or exc.context_mark
    position = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = exc.problem or exc.context or "unreadable"
    return f"{position}invalid YAML: {problem}"
