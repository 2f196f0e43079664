"""The accuracy-evaluator contract and the cache that turns evaluations into a budget.

An evaluator scores an architecture, higher is better: test accuracy in % for
tables and training, a proxy score for zero-cost proxies. Evaluating is the
expensive step of a search, so every search goes through one
``CachedEvaluator``: asking twice for the same architecture costs nothing, and
its count of unique evaluations *is* the search budget.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from hwprof.errors import ConfigError, SearchError
from hwprof.types import Architecture


@runtime_checkable
class Evaluator(Protocol):
    name: str  # e.g. "tabular:cifar10", "proxy:synflow"
    unit: str  # "%" for accuracies, "score" for proxies

    def evaluate(self, arch: Architecture) -> float: ...


class BudgetExhausted(SearchError):
    """Raised by ``CachedEvaluator`` when a new evaluation would exceed the budget (search control flow)."""


class CachedEvaluator:
    """Caches scores by architecture and enforces an evaluation budget (unique architectures)."""

    def __init__(self, evaluator: Evaluator, budget: int | None = None) -> None:
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
            raise ConfigError(f"evaluation budget must be a positive integer or None, got {budget!r}")
        self.evaluator = evaluator
        self.budget = budget
        self.name = getattr(evaluator, "name", type(evaluator).__name__)
        self.unit = getattr(evaluator, "unit", "")
        self._scores: dict[Architecture, float] = {}

    @property
    def n_evaluations(self) -> int:
        return len(self._scores)

    @property
    def remaining(self) -> int | None:
        return None if self.budget is None else self.budget - len(self._scores)

    def is_cached(self, arch: Architecture) -> bool:
        return arch in self._scores

    def cached(self) -> dict[Architecture, float]:
        """Every architecture evaluated so far, in evaluation order."""
        return dict(self._scores)

    def evaluate(self, arch: Architecture) -> float:
        score = self._scores.get(arch)
        if score is not None:
            return score
        if self.budget is not None and len(self._scores) >= self.budget:
            raise BudgetExhausted(f"evaluation budget of {self.budget} used up")
        score = float(self.evaluator.evaluate(arch))
        self._scores[arch] = score
        return score
