"""``run_search``: what ``hwprof search`` does, as one library call (a notebook reproduces the command).

The algorithm is looked up in the registry and runs by its kind (see
``nas.search.registry``): a ``"problem"`` algorithm gets a space, an evaluator
and cost models parsed from the request's specs, the constraints and the
budget, and its ``SearchResult`` is written to ``request.out`` (never over
another search's results there unless ``request.overwrite``, see
``nas.search.outputs``); a ``"request"`` algorithm (MODNAS) gets the request
itself.
"""

from __future__ import annotations

from contextlib import ExitStack

from hwprof import registry
from hwprof.errors import ConfigError
from nas.cost.parse import COST_FORMS, parse_costs
from nas.evaluators.parse import parse_evaluator
from nas.search.base import SearchProgress, prepare_output_dir
from nas.search.outputs import check_previous_results, run_settings
from nas.search.registry import algorithm_kind, as_constraints, get_algorithm, search
from nas.search.request import ProgressCallback, SearchOutcome, SearchRequest

DEFAULT_BUDGET = 300


def run_search(request: SearchRequest, on_progress: ProgressCallback | None = None) -> SearchOutcome:
    """Run the search ``request`` describes and write its results; ``on_progress(task, done, total, info)``."""
    if algorithm_kind(request.algorithm) == "request":
        return get_algorithm(request.algorithm)(request, on_progress)
    return _run_problem_search(request, on_progress)


def _run_problem_search(request: SearchRequest, on_progress: ProgressCallback | None) -> SearchOutcome:
    algo = request.algorithm
    if request.devices is not None:
        raise ConfigError(f"{algo} searches for the cost models given with --cost; --devices is not one of its settings")
    if not request.costs:
        raise ConfigError(f"give at least one cost (--cost); expected {COST_FORMS}")
    constraints = as_constraints(request.constraints)
    if not constraints and not request.multi_objective:
        raise ConfigError("give a bound (--max-latency-ms or --constraint) or ask for --multi-objective")
    budget = DEFAULT_BUDGET if request.budget is None else request.budget
    space = registry.get_space(request.space)
    prepare_output_dir(request.out)
    settings = run_settings(request, budget, constraints)
    check_previous_results(request.out, f"{algo}_seed{request.seed}", settings, request.overwrite)
    with ExitStack() as resources:  # closes the profiler a measure: cost opens
        evaluator = parse_evaluator(request.accuracy, space, table=request.table, seed=request.seed)
        costs = parse_costs(
            request.costs, space, table=request.table, db=request.db, resources=resources, command=request.command
        )
        names = [c.name for c in costs]

        def on_evaluation(p: SearchProgress) -> None:
            if on_progress is None:
                return
            best = "" if p.best is None else f"best {p.best.accuracy:.4g} {evaluator.unit} @ " + ", ".join(
                f"{n} {v:.4g}" for n, v in zip(names, p.best.costs)
            )
            on_progress(algo, p.n_evaluations, p.budget, best)

        result = search(
            algo, space, evaluator, costs, constraints, budget=budget, seed=request.seed,
            multi_objective=request.multi_objective, on_evaluation=on_evaluation, **request.params,
        )
    result.settings = settings
    csv_path, json_path = result.write(request.out)
    return SearchOutcome(algo, request.out, (csv_path, json_path), result, (f"saved {csv_path} and {json_path}",))
