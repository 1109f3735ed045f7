"""Provider factories the tests name in `flags.openfeature.provider`, as a user would theirs."""

from __future__ import annotations

from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagResolutionDetails, Reason
from openfeature.provider.in_memory_provider import InMemoryFlag, InMemoryProvider

from flags import FLAG_KEY


def connection_list_provider(
    new: list[str], *, key: str = FLAG_KEY, boolean: bool = False, variants: bool = True
) -> InMemoryProvider:
    """One flag: the connections in `new` get "new" (or true), every other one "legacy" (false).

    `variants: false` answers without a variant, as some flag systems do.
    """
    on: str | bool = True if boolean else "new"
    off: str | bool = False if boolean else "legacy"

    def evaluate(
        flag: InMemoryFlag[str | bool], context: EvaluationContext
    ) -> FlagResolutionDetails[str | bool]:
        chosen = "on" if context.targeting_key in new else "off"
        return FlagResolutionDetails(
            value=flag.variants[chosen],
            reason=Reason.TARGETING_MATCH,
            variant=chosen if variants else None,
        )

    flag: InMemoryFlag[str | bool] = InMemoryFlag(
        "off", {"on": on, "off": off}, context_evaluator=evaluate
    )
    return InMemoryProvider({key: flag})


def not_a_provider() -> object:
    """What a wrong import path may name: callable, but what it returns evaluates nothing."""
    return object()


def refusing_provider(**options: object) -> InMemoryProvider:
    """A provider whose constructor refuses its options, as a real one does with bad values."""
    raise ValueError("unknown environment 'nowhere'")
