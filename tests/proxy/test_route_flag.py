"""`authswitch.route` asked of a built-in provider directly gives what the OpenFeature SDK
gives, and the SDK stays in the path whenever it could change the answer (hooks, a provider
not ready or fatal, another provider bound to the domain)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagEvaluationDetails, FlagResolutionDetails
from openfeature.hook import Hook, HookContext, HookHints
from openfeature.provider.no_op_provider import NoOpProvider

from flags import FLAG_KEY, FileFlagProvider, RolloutState, write_rollout_state
from proxy.callback.route_flag import RouteAnswer, RouteFlag

CONNECTIONS = [f"conn-{index}" for index in range(200)] + ["acme", "globex", "initech"]


class RecordingHook(Hook):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def after(
        self,
        hook_context: HookContext,
        details: FlagEvaluationDetails[object],
        hints: HookHints,
    ) -> None:
        self.seen.append(str(hook_context.evaluation_context.targeting_key))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[FileFlagProvider, str]]:
    path = tmp_path / "flags.yaml"
    write_rollout_state(
        path,
        RolloutState(
            version=3,
            stage_percent=40,
            canary=("acme",),
            overrides={"globex": "on", "initech": "off"},
        ),
    )
    provider = FileFlagProvider(path)
    domain = f"route-flag-test-{uuid.uuid4().hex}"
    api.set_provider_and_wait(provider, domain)
    try:
        yield provider, domain
    finally:
        provider.shutdown()
        api.set_provider(NoOpProvider(), domain)


def _through_sdk(domain: str, connection: str) -> RouteAnswer:
    details = api.get_client(domain).get_string_details(
        FLAG_KEY, "legacy", EvaluationContext(targeting_key=connection)
    )
    return RouteAnswer(details.value, details.variant, details.error_code)


def test_direct_answers_are_the_sdk_answers(served: tuple[FileFlagProvider, str]) -> None:
    provider, domain = served
    flag = RouteFlag(api.get_client(domain), provider)
    assert flag._direct()
    answers = {c: flag.evaluate(EvaluationContext(targeting_key=c)) for c in CONNECTIONS}
    assert answers == {c: _through_sdk(domain, c) for c in CONNECTIONS}
    variants = {answer.variant for answer in answers.values()}
    assert {"canary", "override_on", "override_off", "stage_in", "stage_out"} <= variants
    assert answers["globex"] == RouteAnswer("new", "override_on", None)


@pytest.mark.parametrize("level", ["api", "client"])
def test_a_registered_hook_sees_every_evaluation(
    served: tuple[FileFlagProvider, str], level: str
) -> None:
    provider, domain = served
    client = api.get_client(domain)
    flag = RouteFlag(client, provider)
    hook = RecordingHook()
    if level == "api":
        api.add_hooks([hook])
    else:
        client.add_hooks([hook])
    try:
        answer = flag.evaluate(EvaluationContext(targeting_key="globex"))
    finally:
        if level == "api":
            api.clear_hooks()
        else:
            client.hooks = []
    assert answer == RouteAnswer("new", "override_on", None)
    assert hook.seen == ["globex"]
    assert flag._direct()  # hooks gone: direct again


def test_a_fatal_provider_answers_legacy_with_the_sdk_error(
    served: tuple[FileFlagProvider, str],
) -> None:
    provider, domain = served
    flag = RouteFlag(api.get_client(domain), provider)
    provider.emit_provider_error(
        ProviderEventDetails(message="gone for good", error_code=ErrorCode.PROVIDER_FATAL)
    )
    answer = flag.evaluate(EvaluationContext(targeting_key="globex"))
    assert answer == RouteAnswer("legacy", None, ErrorCode.PROVIDER_FATAL)


def test_another_provider_bound_to_the_domain_is_the_one_asked(
    served: tuple[FileFlagProvider, str],
) -> None:
    provider, domain = served
    flag = RouteFlag(api.get_client(domain), provider)
    api.set_provider_and_wait(NoOpProvider(), domain)
    answer = flag.evaluate(EvaluationContext(targeting_key="globex"))
    assert answer.value == "legacy" and answer.variant != "override_on"


def test_a_provider_that_raises_gets_the_sdk_error_answer(
    served: tuple[FileFlagProvider, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    provider, domain = served

    def broken(
        flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        raise RuntimeError("state unreadable")

    monkeypatch.setattr(provider, "resolve_string_details", broken)
    flag = RouteFlag(api.get_client(domain), provider)
    answer = flag.evaluate(EvaluationContext(targeting_key="globex"))
    assert answer == RouteAnswer("legacy", None, ErrorCode.GENERAL)
