"""Loading, validating and atomically writing the rollout state file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from flags import FlagFileError, RolloutState, load_rollout_state, write_rollout_state


def _write(tmp_path: Path, text: str, name: str = "flags.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_loads_the_documented_example(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "version: 3\n"
        "salt: authswitch-v1\n"
        "kill_all: false\n"
        "stage_percent: 25        # % of connections (sticky buckets)\n"
        "canary: [acme]\n"
        'overrides: {globex: "on", initech: "off"}\n',
    )
    state = load_rollout_state(path)
    assert state == RolloutState(
        version=3,
        stage_percent=25,
        canary=("acme",),
        overrides={"globex": "on", "initech": "off"},
    )


def test_bare_yaml_on_off_mean_on_and_off(tmp_path: Path) -> None:
    path = _write(tmp_path, "overrides:\n  globex: on\n  initech: off\n")
    assert dict(load_rollout_state(path).overrides) == {"globex": "on", "initech": "off"}


def test_json_files_load(tmp_path: Path) -> None:
    path = _write(tmp_path, json.dumps({"version": 2, "canary": ["acme"]}), "flags.json")
    assert load_rollout_state(path) == RolloutState(version=2, canary=("acme",))


@pytest.mark.parametrize(
    ("content", "key", "problem"),
    [
        ("stage_percent: 150\n", "stage_percent", "must be between 0 and 100 (got 150)"),
        ("stage_percent: 12.345\n", "stage_percent", "must be a multiple of 0.01"),
        ("stage_percent: '25'\n", "stage_percent", "must be a number (got '25')"),
        ("version: -1\n", "version", "must be >= 0 (got -1)"),
        ("version: 1.5\n", "version", "must be a whole number"),
        ("salt: ''\n", "salt", "must not be empty"),
        ("kill_all: 'no'\n", "kill_all", "must be true or false (got 'no')"),
        ("canary: acme\n", "canary", "must be a list"),
        ("canary: [acme, '']\n", "canary[1]", "connection id must not be empty"),
        ("canary: [acme, 12345]\n", "canary[1]", "must be a string (quote it in YAML)"),
        ("overrides: {globex: maybe}\n", "overrides.globex", "must be 'on' or 'off' (got 'maybe')"),
        (
            "overrides: {'a b': 'on'}\n",
            "overrides.a b",
            "connection id must not contain whitespace",
        ),
        ("overrides: [globex]\n", "overrides", "must be a mapping"),
        ("kill_switch: true\n", "kill_switch", "unknown key"),
    ],
)
def test_bad_values_name_file_key_and_problem(
    tmp_path: Path, content: str, key: str, problem: str
) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(FlagFileError) as caught:
        load_rollout_state(path)
    message = str(caught.value)
    assert message.startswith(f"flags file {str(path)!r}: ")
    assert f"key {key!r}: {problem}" in message


def test_unknown_key_lists_the_allowed_keys(tmp_path: Path) -> None:
    path = _write(tmp_path, "version: 1\nstage_pct: 5\n")
    with pytest.raises(FlagFileError, match="key 'stage_pct': unknown key") as caught:
        load_rollout_state(path)
    assert "allowed keys: version, salt, kill_all, stage_percent, canary, overrides" in str(
        caught.value
    )


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = _write(tmp_path, "version: -1\nstage_percent: 101\n")
    with pytest.raises(FlagFileError) as caught:
        load_rollout_state(path)
    assert "key 'version'" in str(caught.value)
    assert "key 'stage_percent'" in str(caught.value)


def test_yaml_syntax_error_names_file_and_line_without_quoting_it(tmp_path: Path) -> None:
    path = _write(tmp_path, "version: 1\nsalt: s3cr3t-looking-value\ncanary: [acme\n")
    with pytest.raises(FlagFileError) as caught:
        load_rollout_state(path)
    message = str(caught.value)
    assert message.startswith(f"flags file {str(path)!r}: line 4")
    assert "invalid YAML" in message
    assert "s3cr3t" not in message
    assert "\n" not in message


def test_duplicate_key_is_an_error_not_last_one_wins(tmp_path: Path) -> None:
    path = _write(tmp_path, "stage_percent: 5\nstage_percent: 100\n")
    with pytest.raises(FlagFileError, match=r"line 2, .*duplicate key 'stage_percent'"):
        load_rollout_state(path)


@pytest.mark.parametrize(
    ("content", "problem"),
    [("", "got an empty file"), ("- acme\n", "got a list"), ("5\n", "got 5")],
)
def test_top_level_must_be_a_mapping(tmp_path: Path, content: str, problem: str) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(FlagFileError, match=f"top level must be a mapping of keys \\({problem}\\)"):
        load_rollout_state(path)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(FlagFileError, match=r"absent\.yaml': cannot read: No such file"):
        load_rollout_state(path)


@pytest.mark.parametrize("name", ["flags.yaml", "flags.json"])
def test_write_then_load_round_trips(tmp_path: Path, name: str) -> None:
    state = RolloutState(
        version=7,
        kill_all=True,
        stage_percent=33.33,
        canary=("acme", "conn_ü"),
        overrides={"on": "on", "off": "off", "12345": "on"},
    )
    path = tmp_path / name
    write_rollout_state(path, state)
    assert load_rollout_state(path) == state
    if name.endswith(".json"):
        assert json.loads(path.read_text(encoding="utf-8"))["version"] == 7


def test_write_replaces_atomically_and_keeps_permissions(tmp_path: Path) -> None:
    path = tmp_path / "flags.yaml"
    write_rollout_state(path, RolloutState(version=1))
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    os.chmod(path, 0o640)
    inode_before = path.stat().st_ino
    write_rollout_state(path, RolloutState(version=2))
    assert path.stat().st_ino != inode_before  # replaced, not rewritten in place
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flags.yaml"]  # no temp file left
    assert load_rollout_state(path).version == 2


def test_write_refuses_an_unvalidated_state_and_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "flags.yaml"
    write_rollout_state(path, RolloutState(version=1))
    bad = RolloutState().model_copy(update={"stage_percent": 250.0})  # skips validation
    with pytest.raises(ValueError, match="stage_percent"):
        write_rollout_state(path, bad)
    assert load_rollout_state(path).version == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flags.yaml"]
