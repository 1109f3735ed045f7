"""Reading a proxied callback's answer as a login outcome, by a per-route rule."""

from __future__ import annotations

import re
from dataclasses import dataclass

from proxy.outcomes.counts import Outcome
from proxy.outcomes.settings import AnswerRule, ProxyObservation

_REDIRECTS = frozenset((301, 302, 303, 307, 308))


@dataclass(frozen=True, slots=True)
class CompiledRule:
    error_location: re.Pattern[str] | None
    failed_statuses: frozenset[int]

    @classmethod
    def of(cls, rule: AnswerRule) -> CompiledRule:
        pattern = re.compile(rule.error_location) if rule.error_location else None
        return cls(pattern, frozenset(rule.failed_statuses))

    def classify(self, status: int, location: bytes | None) -> Outcome:
        """5xx, a listed status, or a redirect to an error location: failed; else succeeded."""
        if status >= 500 or status in self.failed_statuses or status < 100:
            return "failed"
        redirect = status in _REDIRECTS and location is not None
        if redirect and self.error_location is not None:
            assert location is not None
            if self.error_location.search(location.decode("latin-1")):
                return "failed"
        return "succeeded"


class AnswerRules:
    """The rule of each configured route, the default rule for the rest."""

    def __init__(self, settings: ProxyObservation) -> None:
        self._default = CompiledRule.of(settings.default)
        self._routes = {path: CompiledRule.of(rule) for path, rule in settings.routes.items()}

    def classify(self, route: str, status: int, location: bytes | None) -> Outcome:
        return self._routes.get(route, self._default).classify(status, location)


def status_class(status: int | None) -> str:
    """A bounded label: ``2xx`` .. ``5xx``, or ``none`` when no answer was given."""
    if status is None or not 100 <= status <= 599:
        return "none"
    return f"{status // 100}xx"
