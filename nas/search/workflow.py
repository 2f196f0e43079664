"""``run_search``: what ``hwprof search`` does, as one library call (a notebook reproduces the command).

The algorithm is looked up in the registry and runs by its kind (see
``nas.search.registry``): a ``"problem"`` algorithm gets a space, an evaluator
and cost models parsed from the request's specs, the constraints and the
budget, and its ``SearchResult`` is written to ``request.out`` (never over
another search's results there unless ``request.overwrite``, see
``nas.search.outputs``); a ``"request"`` algorithm (MODNAS) gets the request
itself.

Ctrl-C (or SIGTERM/SIGHUP raised as KeyboardInterrupt) during a budgeted
search writes the completed evaluations (stop reason ``"interrupted"``, marked
partial) and raises ``SearchInterrupted`` saying how many were kept; the same
request in the same directory then resumes: the recorded evaluations are
answered from the record (``nas.search.outputs.recorded_evaluations``), the
seeded algorithm replays them and goes on. A search that fails before it
writes anything leaves no directory it created behind.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Sequence

from hwprof import registry
from hwprof.errors import ConfigError
from nas.cost.base import CostModel
from nas.cost.parse import COST_FORMS, parse_costs
from nas.evaluators.parse import parse_evaluator
from nas.search.base import SearchInterrupted, SearchProgress, SearchResult, prepare_output_dir
from nas.search.outputs import check_previous_results, recorded_evaluations, result_paths, run_settings
from nas.search.registry import algorithm_kind, as_constraints, get_algorithm, search
from nas.search.request import ProgressCallback, SearchOutcome, SearchRequest

DEFAULT_BUDGET = 300


def run_search(request: SearchRequest, on_progress: ProgressCallback | None = None) -> SearchOutcome:
    """Run the search ``request`` describes and write its results; ``on_progress(task, done, total, info)``."""
    seed = request.seed
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"--seed {seed!r} is not a non-negative integer; expected a seed like 0 or 42")
    created = not request.out.exists()
    try:
        if algorithm_kind(request.algorithm) == "request":
            return get_algorithm(request.algorithm)(request, on_progress)
        return _run_problem_search(request, on_progress)
    except BaseException:
        if created:
            _remove_if_empty(request.out)
        raise


def _remove_if_empty(directory: Path) -> None:
    """Remove the output directory a failed search created, when nothing was written into it."""
    try:
        directory.rmdir()  # only an empty directory goes
    except OSError:
        pass


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
    stem = f"{algo}_seed{request.seed}"
    check_previous_results(request.out, stem, settings, request.overwrite)
    recorded = None if request.overwrite else recorded_evaluations(request.out, stem, settings)
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

        try:
            result = search(
                algo, space, evaluator, costs, constraints, budget=budget, seed=request.seed,
                multi_objective=request.multi_objective, on_evaluation=on_evaluation, recorded=recorded, **request.params,
            )
        except SearchInterrupted as exc:
            _note_predictor_floors(exc.result, costs)
            raise SearchInterrupted(exc.result, _keep_interrupted(exc.result, settings, request, recorded)) from None
    result.settings = settings
    warnings = _note_predictor_floors(result, costs)
    csv_path, json_path = result.write(request.out)
    summary = [f"saved {csv_path} and {json_path}"]
    if result.n_reused:
        summary.insert(0, f"resumed: {result.n_reused} evaluations reused from the interrupted run, "
                          f"{result.n_evaluations - result.n_reused} new")
    return SearchOutcome(algo, request.out, (csv_path, json_path), result, tuple(summary), warnings)


def _note_predictor_floors(result: SearchResult, costs: Sequence[CostModel]) -> tuple[str, ...]:
    """Record, per predictor cost, how many evaluated networks it predicted below its floor (a tenth of its fastest
    training latency, where its answers are squeezed: ``predictors.base.soft_floor``); a warning line for each."""
    warnings = []
    for j, cost in enumerate(costs):
        floor_ms = float(getattr(getattr(cost, "predictor", None), "floor_ms_", 0.0) or 0.0)
        if floor_ms <= 0:
            continue
        below = [e for e in result.history if e.costs[j] < floor_ms]
        result.below_predictor_floor[cost.name] = len(below)
        if below:
            best = " (the best among them)" if result.best is not None and result.best in below else ""
            warnings.append(
                f"{len(below)} of {result.n_evaluations} evaluated networks{best} have a predicted {cost.name} below "
                f"the predictor's floor ({floor_ms:.4g} {cost.unit}, a tenth of its fastest training latency): those "
                "predictions are extrapolations; measure them before trusting them"
            )
    return tuple(warnings)


def _keep_interrupted(
    result: SearchResult, settings: dict, request: SearchRequest, recorded: dict[str, float] | None
) -> str:
    """Write an interrupted search's completed evaluations (unless the record it resumed from holds more); the line
    saying what was kept."""
    n, before = result.n_evaluations, len(recorded or {})
    csv_path, json_path = result_paths(request.out, result.file_stem())
    if n > before:
        result.settings = settings
        csv_path, json_path = result.write(request.out)
    elif before == 0:
        return f"search stopped before its first evaluation completed; nothing kept in {str(request.out)!r}"
    kept = max(n, before)
    return (
        f"search stopped after {kept} of {result.budget} evaluations; {kept} kept in {csv_path} and {json_path} "
        f"(stop_reason 'interrupted', partial); run the same command to resume"
    )
