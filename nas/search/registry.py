"""Search algorithms by name, and ``search()``: one call that validates the set-up and runs one.

An algorithm is a function ``run(problem, rng, **params) -> stop_reason``: it
proposes candidates through ``problem.evaluate`` until it is done or the budget
raises ``BudgetExhausted``. Register your own with ``register_algorithm``.
"""

from __future__ import annotations

import inspect
import time
from importlib import import_module
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from hwprof.errors import ConfigError, SearchError, UnknownNameError
from nas.cost.base import Constraint, CostModel
from nas.evaluators.base import BudgetExhausted, CachedEvaluator, Evaluator
from nas.search.base import SearchProblem, SearchProgress, SearchResult

if TYPE_CHECKING:
    from hwprof.spaces import SearchSpace

Algorithm = Callable[..., str]

# name -> "module:function", imported on first use.
_ALGORITHMS: dict[str, str | Algorithm] = {
    "layernas": "nas.search.layernas:run",
    "random": "nas.search.random_search:run",
    "evolution": "nas.search.evolution:run",
    "nsga2": "nas.search.nsga2:run",
}


def register_algorithm(name: str, fn: Algorithm | str) -> None:
    """Add an algorithm (a function or a ``"module:function"`` path) under ``name``."""
    if not name or not isinstance(name, str):
        raise ConfigError(f"algorithm name must be a non-empty string, got {name!r}")
    _ALGORITHMS[name] = fn


def algorithm_names() -> list[str]:
    return sorted(_ALGORITHMS)


def get_algorithm(name: str) -> Algorithm:
    if name not in _ALGORITHMS:
        raise UnknownNameError(f"unknown search algorithm {name!r}; known: {', '.join(algorithm_names())}")
    fn = _ALGORITHMS[name]
    if isinstance(fn, str):
        module, _, attr = fn.partition(":")
        fn = getattr(import_module(module), attr)
        _ALGORITHMS[name] = fn
    return fn


def algorithm_params(name: str) -> dict[str, Any]:
    """The keyword parameters an algorithm accepts, with their defaults."""
    sig = inspect.signature(get_algorithm(name))
    return {p.name: p.default for p in list(sig.parameters.values())[2:] if p.kind is p.KEYWORD_ONLY}


def _as_constraints(constraint: Constraint | str | Sequence[Constraint | str] | None) -> list[Constraint]:
    if constraint is None:
        return []
    items = [constraint] if isinstance(constraint, (Constraint, str)) else list(constraint)
    return [c if isinstance(c, Constraint) else Constraint.parse(c) for c in items]


def check_feasible(problem: SearchProblem) -> None:
    """SearchError when a constraint is below the minimum cost over the space (saying how it was found)."""
    for con, j in zip(problem.constraints, problem.constraint_columns):
        lo = problem.cost_min(j)
        if not con.satisfied(lo.value):
            unit = getattr(problem.costs[j], "unit", "")
            kind = "minimum" if lo.exact else "smallest found"
            raise SearchError(
                f"constraint {con} is infeasible: the {kind} {con.objective} is {lo.value:.6g} {unit} "
                f"({lo.method}; e.g. {lo.arch.spec}); expected a bound >= {lo.value:.6g}"
            )


def search(
    algorithm: str,
    space: "SearchSpace",
    evaluator: Evaluator,
    costs: CostModel | Sequence[CostModel],
    constraint: Constraint | str | Sequence[Constraint | str] | None = None,
    budget: int = 300,
    seed: int = 0,
    multi_objective: bool = False,
    on_evaluation: Callable[[SearchProgress], None] | None = None,
    **params: Any,
) -> SearchResult:
    """Run ``algorithm`` for at most ``budget`` unique accuracy evaluations.

    Constrained mode (default): the result's ``best`` is the most accurate
    evaluated architecture meeting every constraint. ``multi_objective=True``:
    the algorithm aims at the whole accuracy/cost trade-off; ``pareto`` is the
    non-dominated set of everything evaluated (in both modes).
    """
    fn = get_algorithm(algorithm)
    accepted = algorithm_params(algorithm)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ConfigError(f"{algorithm} has no parameter(s) {unknown}; accepted: {sorted(accepted) or 'none'}")
    cost_list = [costs] if not isinstance(costs, (list, tuple)) else list(costs)
    if not cost_list:
        raise ConfigError("the search needs at least one cost model (e.g. a latency lookup)")
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise ConfigError(f"budget must be a positive integer number of evaluations, got {budget!r}")
    widest = max(len(opts) for _, opts in space.layers)
    if budget < widest:
        raise SearchError(
            f"budget {budget} is smaller than one layer's expansion ({widest} options); expected a budget >= {widest}"
        )
    inner = evaluator.evaluator if isinstance(evaluator, CachedEvaluator) else evaluator
    problem = SearchProblem(
        space,
        CachedEvaluator(inner, budget=int(budget)),
        cost_list,
        _as_constraints(constraint),
        multi_objective=multi_objective,
        on_evaluation=on_evaluation,
        bounds_rng_seed=seed,
    )
    check_feasible(problem)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    try:
        stop_reason = fn(problem, rng, **params)
    except BudgetExhausted:
        stop_reason = "budget"
    wall_s = time.perf_counter() - start
    resolved = {k: v for k, v in accepted.items()}
    resolved.update(params)
    resolved.update(problem.notes)
    return SearchResult(
        algorithm=algorithm,
        seed=int(seed),
        space=space.name,
        evaluator=problem.evaluator.name,
        evaluator_unit=problem.evaluator.unit,
        cost_names=problem.cost_names,
        cost_units=[getattr(c, "unit", "") for c in cost_list],
        constraints=[str(c) for c in problem.constraints],
        budget=int(budget),
        multi_objective=multi_objective,
        history=list(problem.history),
        pareto=problem.pareto(),
        best=problem.best,
        stop_reason=stop_reason,
        params=resolved,
        wall_s=wall_s,
    )
