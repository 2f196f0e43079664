"""Search algorithms by name (the ``"search"`` kind of ``hwprof.registry``), and ``search()``.

Algorithms are found through the one registry: the built-in ones are entry
points of the ``hwprof.search`` group, a third-party package declares its own
there, and a notebook calls ``register_algorithm``. An algorithm is a function
of one of two kinds (its ``kind`` attribute, ``"problem"`` when absent):

* ``"problem"``: ``run(problem, rng, **params) -> stop_reason`` proposes
  candidates through ``problem.evaluate`` until it is done or the budget raises
  ``BudgetExhausted``; ``search()`` runs one on objects, ``run_search`` on a
  ``SearchRequest``.
* ``"request"``: ``run(request, on_progress) -> SearchOutcome`` for an
  algorithm that does not work through a budget of evaluations (MODNAS trains
  a hypernetwork for every device and trade-off at once); ``run_search`` hands
  it the whole ``SearchRequest``. Its ``params`` attribute maps its settings to
  their defaults.
"""

from __future__ import annotations

import inspect
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from hwprof import registry
from hwprof.errors import ConfigError, SearchError, UnknownNameError
from nas.cost.base import Constraint, CostModel
from nas.evaluators.base import BudgetExhausted, CachedEvaluator, Evaluator
from nas.search.base import INTERRUPTED, ReplayedEvaluator, SearchInterrupted, SearchProblem, SearchProgress, SearchResult

if TYPE_CHECKING:
    from hwprof.spaces import SearchSpace

Algorithm = Callable[..., Any]
KINDS = ("problem", "request")


def register_algorithm(name: str, fn: Algorithm | str) -> None:
    """Add an algorithm (a function or a ``"module:function"`` path) under ``name``."""
    if not name or not isinstance(name, str):
        raise ConfigError(f"algorithm name must be a non-empty string, got {name!r}")
    registry.register("search", name, fn)


def algorithm_names() -> list[str]:
    return registry.names("search")


def get_algorithm(name: str) -> Algorithm:
    if name not in algorithm_names():
        raise UnknownNameError(f"unknown search algorithm {name!r}; known: {', '.join(algorithm_names())}")
    fn = registry.load("search", name)
    kind = _kind(fn)
    if kind not in KINDS:
        raise ConfigError(f"search algorithm {name!r} declares kind {kind!r}; expected one of {', '.join(KINDS)}")
    return fn


def _kind(fn: Algorithm) -> str:
    return getattr(fn, "kind", "problem")


def algorithm_kind(name: str) -> str:
    """``"problem"`` (runs on a SearchProblem) or ``"request"`` (runs on a whole SearchRequest)."""
    return _kind(get_algorithm(name))


def algorithm_params(name: str) -> dict[str, Any]:
    """The settings an algorithm accepts (``--param NAME=VALUE``), with their defaults."""
    fn = get_algorithm(name)
    if _kind(fn) == "request":
        return dict(getattr(fn, "params", {}))
    sig = inspect.signature(fn)
    return {p.name: p.default for p in list(sig.parameters.values())[2:] if p.kind is p.KEYWORD_ONLY}


def as_constraints(constraint: Constraint | str | Sequence[Constraint | str] | None) -> list[Constraint]:
    """Constraint objects from objects or ``'NAME<=VALUE'`` texts (one or several)."""
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
    recorded: Mapping[str, float] | None = None,
    **params: Any,
) -> SearchResult:
    """Run ``algorithm`` for at most ``budget`` unique accuracy evaluations.

    Constrained mode (default): the result's ``best`` is the most accurate
    evaluated architecture meeting every constraint. ``multi_objective=True``:
    the algorithm aims at the whole accuracy/cost trade-off; ``pareto`` is the
    non-dominated set of everything evaluated (in both modes).

    Ctrl-C (or a signal raised as KeyboardInterrupt) raises ``SearchInterrupted``
    carrying the result of the completed evaluations (stop reason
    ``"interrupted"``). ``recorded`` (spec -> accuracy, from such a result)
    answers those architectures without the evaluator, so the same seeded
    search resumes where it stopped.
    """
    fn = get_algorithm(algorithm)
    if _kind(fn) != "problem":
        raise ConfigError(
            f"{algorithm} does not search through evaluations of a budget; run it with "
            f"nas.search.run_search(SearchRequest(algorithm={algorithm!r}, ...))"
        )
    accepted = algorithm_params(algorithm)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ConfigError(f"{algorithm} has no parameter(s) {unknown}; accepted: {sorted(accepted) or 'none'}")
    cost_list = [costs] if not isinstance(costs, (list, tuple)) else list(costs)
    if not cost_list:
        raise ConfigError("the search needs at least one cost model (e.g. a latency lookup)")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise ConfigError(f"budget must be a positive integer number of evaluations, got {budget!r}")
    inner = evaluator.evaluator if isinstance(evaluator, CachedEvaluator) else evaluator
    replayed = ReplayedEvaluator(inner, recorded) if recorded else None
    problem = SearchProblem(
        space,
        CachedEvaluator(replayed or inner, budget=int(budget)),
        cost_list,
        as_constraints(constraint),
        multi_objective=multi_objective,
        on_evaluation=on_evaluation,
        bounds_rng_seed=seed,
    )
    rng = np.random.default_rng(seed)
    start = time.perf_counter()

    def result(stop_reason: str) -> SearchResult:
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
            wall_s=time.perf_counter() - start,
            n_reused=0 if replayed is None else replayed.n_replayed,
        )

    try:
        check_feasible(problem)
        try:
            stop_reason = fn(problem, rng, **params)
        except BudgetExhausted:
            stop_reason = "budget"
    except KeyboardInterrupt:
        raise SearchInterrupted(result(INTERRUPTED)) from None
    return result(stop_reason)
