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

import yaml
from pydantic import ValidationError

from flags.state import RolloutState
from flags.validation_messages import describe_validation_error, describe_value
from foundation.strict_yaml import YamlDocumentError, load_yaml

MAX_FILE_BYTES = 4 * 1024 * 1024
_KEYS = tuple(RolloutState.model_fields)


class FlagFileError(Exception):
    """A rollout state file that can't be used; the message names the file, the key and the problem.

    The message never quotes the file's content beyond one short offending value.
    """


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
        document = load_yaml(text)
    except YamlDocumentError as exc:
        raise FlagFileError(f"{where}: {_describe_yaml_error(exc)}") from None
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


def _describe_yaml_error(exc: YamlDocumentError) -> str:
    # The shared loader's message already holds no file content; this file's wording puts the
    # position first.
    if exc.line is None:
        return str(exc)
    return f"line {exc.line}, column {exc.column}: invalid YAML: {exc.problem}"
