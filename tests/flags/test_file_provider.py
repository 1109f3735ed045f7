"""FileFlagProvider through the real OpenFeature SDK: answers, errors, hot reload, shutdown."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEvent
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason
from openfeature.provider import ProviderStatus

from flags import FLAG_KEY, FileFlagProvider, FlagFileError, RolloutState, write_rollout_state
from tests.flags.conftest import SdkHarness, eventually

SECRET_LOOKING = "do-not-log-this-file-content"


def _ctx(connection_id: str) -> EvaluationContext:
    return EvaluationContext(targeting_key=connection_id)


def _replace_with_text(path: Path, text: str) -> None:
    # Atomic, like an editor or config-management tool would do, so the watcher never reads half.
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


@pytest.mark.parametrize(
    ("state", "connection_id", "value", "variant", "reason"),
    [
        (RolloutState(kill_all=True, canary=("acme",)), "acme", "legacy", "kill_all", "DISABLED"),
        (RolloutState(overrides={"acme": "off"}), "acme", "legacy", "override_off", "DISABLED"),
        (RolloutState(overrides={"acme": "on"}), "acme", "new", "override_on", "TARGETING_MATCH"),
        (RolloutState(canary=("acme",)), "acme", "new", "canary", "TARGETING_MATCH"),
        (RolloutState(stage_percent=100), "acme", "new", "stage_in", "SPLIT"),
        (RolloutState(stage_percent=45.19), "acme", "legacy", "stage_out", "SPLIT"),
    ],
)
def test_answers_route_with_variant_reason_and_metadata(
    sdk: SdkHarness,
    tmp_path: Path,
    state: RolloutState,
    connection_id: str,
    value: str,
    variant: str,
    reason: str,
) -> None:
    path = tmp_path / "flags.yaml"
    write_rollout_state(path, state.model_copy(update={"version": 4}))
    client = sdk.serve(FileFlagProvider(path))

    details = client.get_string_details(FLAG_KEY, "legacy", _ctx(connection_id))

    assert (details.value, details.variant, details.reason) == (value, variant, reason)
    assert details.error_code is None
    assert dict(details.flag_metadata) == {"version": 4, "stage_percent": state.stage_percent}


def test_unknown_flag_key_gives_flag_not_found_and_the_default(
    sdk: SdkHarness, flag_file: Path
) -> None:
    client = sdk.serve(FileFlagProvider(flag_file))
    details = client.get_string_details("authswitch.other", "fallback", _ctx("acme"))
    assert (details.value, details.error_code, details.reason) == (
        "fallback",
        ErrorCode.FLAG_NOT_FOUND,
        Reason.ERROR,
    )


def test_missing_targeting_key_gives_the_default(sdk: SdkHarness, flag_file: Path) -> None:
    client = sdk.serve(FileFlagProvider(flag_file))
    for context in (None, EvaluationContext(), EvaluationContext(targeting_key="")):
        details = client.get_string_details(FLAG_KEY, "fallback", context)
        assert (details.value, details.error_code) == ("fallback", ErrorCode.TARGETING_KEY_MISSING)


def test_non_string_lookups_are_type_mismatches(sdk: SdkHarness, flag_file: Path) -> None:
    client = sdk.serve(FileFlagProvider(flag_file))
    # "acme" is in the canary, so a provider that answered anyway would return "new"/True.
    as_bool = client.get_boolean_details(FLAG_KEY, False, _ctx("acme"))
    as_int = client.get_integer_details(FLAG_KEY, 7, _ctx("acme"))
    as_float = client.get_float_details(FLAG_KEY, 0.5, _ctx("acme"))
    as_object = client.get_object_details(FLAG_KEY, {"route": "legacy"}, _ctx("acme"))
    assert (as_bool.value, as_bool.error_code) == (False, ErrorCode.TYPE_MISMATCH)
    assert (as_int.value, as_int.error_code) == (7, ErrorCode.TYPE_MISMATCH)
    assert (as_float.value, as_float.error_code) == (0.5, ErrorCode.TYPE_MISMATCH)
    assert (as_object.value, as_object.error_code) == ({"route": "legacy"}, ErrorCode.TYPE_MISMATCH)


@pytest.mark.parametrize("content", [None, "stage_percent: 150\n", "canary: [acme\n"])
def test_a_missing_or_broken_file_at_start_fails_initialisation(
    sdk: SdkHarness, tmp_path: Path, content: str | None
) -> None:
    path = tmp_path / "flags.yaml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    provider = FileFlagProvider(path)

    with pytest.raises(FlagFileError, match=r"flags\.yaml"):
        sdk.serve(provider)

    assert provider.watcher_thread is None
    details = sdk.client().get_string_details(FLAG_KEY, "legacy", _ctx("acme"))
    assert (details.value, details.error_code) == ("legacy", ErrorCode.PROVIDER_NOT_READY)


def test_a_new_file_is_served_within_a_poll_and_announced(sdk: SdkHarness, flag_file: Path) -> None:
    provider = FileFlagProvider(flag_file, poll_interval=0.05)
    client = sdk.serve(provider)
    changed = sdk.record(client, ProviderEvent.PROVIDER_CONFIGURATION_CHANGED)
    assert client.get_string_value(FLAG_KEY, "legacy", _ctx("umbrella")) == "legacy"

    write_rollout_state(flag_file, RolloutState(version=2, canary=("acme", "umbrella")))

    assert eventually(
        lambda: client.get_string_value(FLAG_KEY, "legacy", _ctx("umbrella")) == "new"
    )
    events = changed.wait_for(1)
    assert [(e.flags_changed, e.metadata) for e in events] == [([FLAG_KEY], {"version": 2})]
    details = client.get_string_details(FLAG_KEY, "legacy", _ctx("umbrella"))
    assert details.flag_metadata["version"] == 2
    assert provider.state.version == 2


def test_a_broken_file_keeps_the_last_good_state_until_fixed(
    sdk: SdkHarness, flag_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="flags")
    provider = FileFlagProvider(flag_file, poll_interval=0.05)
    client = sdk.serve(provider)
    errors = sdk.record(client, ProviderEvent.PROVIDER_ERROR)
    ready = sdk.record(client, ProviderEvent.PROVIDER_READY)
    ready.wait_for(1)  # the handler fires at once for a provider that is already READY

    _replace_with_text(flag_file, f"version: 2\nsalt: {SECRET_LOOKING}\nstage_percent: 150\n")

    error_events = errors.wait_for(1)
    assert len(error_events) == 1
    assert error_events[0].error_code == ErrorCode.PARSE_ERROR
    assert client.get_provider_status() == ProviderStatus.ERROR  # not FATAL: still evaluated
    assert client.get_string_value(FLAG_KEY, "legacy", _ctx("acme")) == "new"  # version 1 canary
    assert provider.state.version == 1
    assert provider.last_error is not None
    assert "flags.yaml" in provider.last_error
    assert "key 'stage_percent': must be between 0 and 100" in provider.last_error

    # Polling the same broken content again, even after a touch, must not repeat the warning.
    os.utime(flag_file)
    assert provider.reload_now() is False
    assert provider.reload_now() is False
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "flags.yaml" in warnings[0].getMessage()
    assert "stage_percent" in warnings[0].getMessage()
    assert SECRET_LOOKING not in caplog.text
    assert len(errors.wait_for(2, timeout=0.3)) == 1

    write_rollout_state(flag_file, RolloutState(version=3, canary=("umbrella",)))

    assert eventually(lambda: provider.last_error is None)
    assert len(ready.wait_for(2)) == 2
    assert client.get_provider_status() == ProviderStatus.READY
    assert client.get_string_value(FLAG_KEY, "legacy", _ctx("umbrella")) == "new"
    assert client.get_string_value(FLAG_KEY, "legacy", _ctx("acme")) == "legacy"


def test_a_vanished_file_keeps_the_last_good_state(sdk: SdkHarness, flag_file: Path) -> None:
    provider = FileFlagProvider(flag_file, poll_interval=60)  # driven by reload_now only
    client = sdk.serve(provider)
    saved = flag_file.read_bytes()
    flag_file.unlink()

    assert provider.reload_now() is False
    assert provider.last_error is not None
    assert "cannot read" in provider.last_error
    assert client.get_string_value(FLAG_KEY, "legacy", _ctx("acme")) == "new"

    flag_file.write_bytes(saved)
    assert provider.reload_now() is False  # same state as before: nothing changed
    assert provider.last_error is None


def test_reload_now_reports_whether_the_state_changed(sdk: SdkHarness, flag_file: Path) -> None:
    provider = FileFlagProvider(flag_file, poll_interval=60)
    sdk.serve(provider)
    assert provider.reload_now() is False  # untouched
    write_rollout_state(flag_file, provider.state)  # rewritten, same content
    assert provider.reload_now() is False
    write_rollout_state(flag_file, RolloutState(version=2, kill_all=True))
    assert provider.reload_now() is True
    assert provider.state.kill_all is True


def test_shutdown_stops_the_watcher_thread_promptly(sdk: SdkHarness, flag_file: Path) -> None:
    provider = FileFlagProvider(flag_file, poll_interval=60)
    sdk.serve(provider)
    watcher = provider.watcher_thread
    assert watcher is not None and watcher.is_alive()

    provider.shutdown()

    # join() waits at most 5 s; a thread sleeping through its 60 s poll would still be alive.
    assert not watcher.is_alive()
    assert provider.watcher_thread is None
