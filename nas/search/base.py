"""What every search algorithm shares: the problem it works on and the result it returns.

``SearchProblem`` is the only door to the expensive accuracy evaluator: it
caches by architecture, counts unique evaluations against the budget, records
the history with each candidate's costs, and reports progress. Costs are
cached too and never count against the budget. Algorithms work on choice
tuples (one option index per layer) and ask the problem for the rest.

When a cost is a lookup table that does not cover the space (the 5,000
measured FBNet networks of a 9^22 space), the problem has a *domain*: the
table's architectures. Algorithms then pass every proposal through
``project``, which replaces it by the nearest architecture of the domain, so
a search moves through measured networks only.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from hwprof.errors import ConfigError, DataError, PersistenceError
from hwprof.outputs import write_atomic
from hwprof.types import Architecture
from nas.cost.base import Constraint, CostBound, CostModel, FiniteCost, check_constraints, cost_bounds
from nas.evaluators.base import CachedEvaluator
from nas.pareto import pareto_front

if TYPE_CHECKING:
    from hwprof.spaces import SearchSpace

Choices = tuple[int, ...]
INTERRUPTED = "interrupted"  # the stop reason of a search cut short by Ctrl-C (or a signal raised as one)


@dataclass(frozen=True)
class HistoryEntry:
    """One unique accuracy evaluation; ``index`` counts from 0 in evaluation order."""

    index: int
    spec: str
    accuracy: float
    costs: tuple[float, ...]
    feasible: bool

    def to_json(self, cost_names: Sequence[str]) -> dict[str, Any]:
        return {
            "index": self.index,
            "spec": self.spec,
            "accuracy": _finite_or_none(self.accuracy),
            "costs": {n: _finite_or_none(v) for n, v in zip(cost_names, self.costs)},
            "feasible": self.feasible,
        }


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


@dataclass(frozen=True)
class SearchProgress:
    """Sent to ``on_evaluation`` after every new (uncached) evaluation."""

    n_evaluations: int
    budget: int
    entry: HistoryEntry
    best: HistoryEntry | None


class SearchProblem:
    """Space + cached evaluator + cost models + constraints + budget, as the algorithms see them."""

    def __init__(
        self,
        space: "SearchSpace",
        evaluator: CachedEvaluator,
        costs: Sequence[CostModel],
        constraints: Sequence[Constraint] = (),
        multi_objective: bool = False,
        on_evaluation: Callable[[SearchProgress], None] | None = None,
        bounds_rng_seed: int = 0,
    ) -> None:
        if evaluator.budget is None:
            raise ConfigError("the search needs a CachedEvaluator with a budget")
        self.space = space
        self.evaluator = evaluator
        self.costs = list(costs)
        self.cost_names = [c.name for c in self.costs]
        self.constraints = list(constraints)
        self.constraint_columns = check_constraints(self.costs, self.constraints)
        self.multi_objective = multi_objective
        self.on_evaluation = on_evaluation
        self.sizes = tuple(len(opts) for _, opts in space.layers)
        self.history: list[HistoryEntry] = []
        self.scores: dict[Choices, float] = {}  # every evaluated candidate, in evaluation order
        self.notes: dict[str, Any] = {}  # resolved settings an algorithm wants recorded in the result
        self.best: HistoryEntry | None = None
        self._archs: dict[Choices, Architecture] = {}
        self._cost_cache: dict[Choices, tuple[float, ...]] = {}
        self._feasible_cache: dict[Choices, bool] = {}
        self._bounds: dict[int, tuple[CostBound, CostBound | None]] = {}
        self._bounds_seed = bounds_rng_seed
        self.domain = search_domain(space, self.costs)
        self._domain_set = None if self.domain is None else {tuple(int(x) for x in r) for r in self.domain}
        self._domain_by_option: dict[tuple[int, int], np.ndarray] = {}

    @property
    def budget(self) -> int:
        return int(self.evaluator.budget)  # type: ignore[arg-type]

    @property
    def n_evaluations(self) -> int:
        return self.evaluator.n_evaluations

    # --- architectures and costs (free) ---------------------------------------
    def arch(self, choices: Choices) -> Architecture:
        a = self._archs.get(choices)
        if a is None:
            a = self.space.from_choices(choices)
            self._archs[choices] = a
        return a

    def cost_vector(self, choices: Choices) -> tuple[float, ...]:
        v = self._cost_cache.get(choices)
        if v is None:
            arch = self.arch(choices)
            v = tuple(float(c.cost(arch)) for c in self.costs)
            self._cost_cache[choices] = v
        return v

    def cost_vectors(self, many: Sequence[Choices]) -> list[tuple[float, ...]]:
        """Batched: each cost model is asked once for all uncached candidates."""
        todo = list(dict.fromkeys(c for c in many if c not in self._cost_cache))
        if todo:
            archs = [self.arch(c) for c in todo]
            cols = [np.asarray(cm.costs(archs), dtype=np.float64) for cm in self.costs]
            for i, c in enumerate(todo):
                self._cost_cache[c] = tuple(float(col[i]) for col in cols)
        return [self._cost_cache[c] for c in many]

    def is_feasible_costs(self, costs: Sequence[float]) -> bool:
        return all(con.satisfied(costs[j]) for con, j in zip(self.constraints, self.constraint_columns))

    def feasible(self, choices: Choices) -> bool:
        if not self.constraints:
            return True
        ok = self._feasible_cache.get(choices)
        if ok is None:
            ok = self._feasible_cache[choices] = self.is_feasible_costs(self.cost_vector(choices))
        return ok

    def violation(self, choices: Choices) -> float:
        v = self.cost_vector(choices)
        return sum(con.violation(v[j]) for con, j in zip(self.constraints, self.constraint_columns))

    def bound_for(self, cost_index: int) -> float | None:
        """The constraint's max_value on cost ``cost_index`` (tightest one), or None."""
        vals = [con.max_value for con, j in zip(self.constraints, self.constraint_columns) if j == cost_index]
        return min(vals) if vals else None

    def cost_min(self, cost_index: int) -> CostBound:
        """Minimum of a cost over the space; exact when enumerable and cheap (see ``cost_bounds``)."""
        if cost_index not in self._bounds:
            rng = np.random.default_rng(self._bounds_seed)
            self._bounds[cost_index] = cost_bounds(self.space, self.costs[cost_index], rng, need_max=False)
        return self._bounds[cost_index][0]

    def cost_max(self, cost_index: int) -> CostBound:
        lo, hi = self._bounds.get(cost_index, (None, None))
        if hi is None:
            rng = np.random.default_rng(self._bounds_seed)
            lo2, hi = cost_bounds(self.space, self.costs[cost_index], rng)
            self._bounds[cost_index] = (lo if lo is not None else lo2, hi)
        return hi

    # --- the domain (architectures a partial lookup table can cost) -------------
    def in_domain(self, choices: Choices) -> bool:
        return self._domain_set is None or choices in self._domain_set

    def project(self, choices: Choices, keep: int | None = None) -> Choices | None:
        """``choices`` itself when the domain allows it, else the nearest domain architecture.

        Nearest = fewest layers that differ (ties: the first in table order);
        with ``keep`` only domain architectures that share ``choices[keep]`` qualify
        (the layer an algorithm is changing keeps its new option). None when
        no domain architecture has that option.
        """
        if self.in_domain(choices):
            return choices
        assert self.domain is not None
        if keep is None:
            rows = self.domain
        else:
            key = (keep, choices[keep])
            rows = self._domain_by_option.get(key)
            if rows is None:
                rows = self._domain_by_option[key] = self.domain[self.domain[:, keep] == choices[keep]]
            if len(rows) == 0:
                return None
        distance = (rows != np.asarray(choices, dtype=rows.dtype)).sum(axis=1)
        return tuple(int(x) for x in rows[int(np.argmin(distance))])

    # --- accuracy (budgeted) -----------------------------------------------------
    def is_evaluated(self, choices: Choices) -> bool:
        return choices in self.scores

    def evaluate(self, choices: Choices) -> float:
        """Accuracy of ``choices``; a new architecture costs one unit of budget (BudgetExhausted when none is left)."""
        score = self.scores.get(choices)
        if score is not None:
            return score
        arch = self.arch(choices)
        costs = self.cost_vector(choices)
        acc = self.evaluator.evaluate(arch)
        self.scores[choices] = acc
        entry = HistoryEntry(len(self.history), arch.spec, acc, costs, self.is_feasible_costs(costs))
        self.history.append(entry)
        if entry.feasible and (self.best is None or _better(entry, self.best)):
            self.best = entry
        if self.on_evaluation is not None:
            self.on_evaluation(SearchProgress(len(self.history), self.budget, entry, self.best))
        return acc

    def pareto(self) -> list[HistoryEntry]:
        return pareto_entries(self.history)


def search_domain(space: "SearchSpace", costs: Sequence[CostModel]) -> np.ndarray | None:
    """Choices (n, L) of the architectures every partial lookup table can cost; None when no table restricts the space."""
    domain: list[Choices] | None = None
    sources = []
    for cost in costs:
        if not isinstance(cost, FiniteCost) or cost.covers(space):
            continue
        rows = cost.domain(space)
        sources.append(cost.describe())
        if domain is None:
            domain = rows
        else:
            allowed = set(rows)
            domain = [r for r in domain if r in allowed]
    if domain is None:
        return None
    if not domain:
        raise ConfigError(f"the lookup tables share no architecture ({'; '.join(sources)}); expected tables over the same networks")
    return np.asarray(domain, dtype=np.int64)


def prepare_output_dir(directory: str | Path) -> Path:
    """Create ``directory`` and check it is writable, so a search does not run only to fail when saving."""
    out = Path(directory)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".hwprof-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        why = "it is a file" if out.is_file() else (exc.strerror or str(exc))
        raise PersistenceError(f"cannot write search results to {str(out)!r}: {why}; expected a writable directory") from None
    return out


class ReplayedEvaluator:
    """Answers the architectures an interrupted run of the same search evaluated from its record; asks
    ``evaluator`` for the others. A seeded algorithm proposes the same candidates again and, given the
    same scores, takes the same path, so a resumed search ends where an uninterrupted one would."""

    def __init__(self, evaluator: Any, recorded: Mapping[str, float]) -> None:
        self.evaluator = evaluator
        self.name = getattr(evaluator, "name", type(evaluator).__name__)
        self.unit = getattr(evaluator, "unit", "")
        self.recorded = dict(recorded)
        self.n_replayed = 0

    def evaluate(self, arch: Architecture) -> float:
        score = self.recorded.get(arch.spec)
        if score is None:
            return float(self.evaluator.evaluate(arch))
        self.n_replayed += 1
        return score


def _better(a: HistoryEntry, b: HistoryEntry) -> bool:
    """Higher accuracy wins; ties go to the lower first cost, then the earlier evaluation."""
    if a.accuracy != b.accuracy:
        return a.accuracy > b.accuracy
    return a.costs[:1] < b.costs[:1]


def pareto_entries(history: Sequence[HistoryEntry]) -> list[HistoryEntry]:
    """Feasible entries not dominated in (accuracy max, every cost min), cheapest first."""
    feas = [e for e in history if e.feasible]
    if not feas:
        return []
    pts = np.array([[e.accuracy, *e.costs] for e in feas], dtype=np.float64)
    pts[~np.isfinite(pts[:, 0]), 0] = -np.inf
    senses = ["max"] + ["min"] * (pts.shape[1] - 1)
    idx = pareto_front(pts, senses)
    out = [feas[i] for i in idx]
    return sorted(out, key=lambda e: (e.costs, -e.accuracy, e.index))


@dataclass
class SearchResult:
    """A finished search: best feasible architecture, the full history and the Pareto set."""

    algorithm: str
    seed: int
    space: str
    evaluator: str
    evaluator_unit: str
    cost_names: list[str]
    cost_units: list[str]
    constraints: list[str]
    budget: int
    multi_objective: bool
    history: list[HistoryEntry]
    pareto: list[HistoryEntry]
    best: HistoryEntry | None
    stop_reason: str
    params: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0
    # What defines the run (``nas.search.outputs.run_settings``) when it came from a request; None from ``search()``.
    settings: dict[str, Any] | None = None
    # Evaluations answered from an interrupted run's record instead of the evaluator (a resumed search).
    n_reused: int = 0
    # cost name -> evaluated networks whose predicted cost is below the predictor's floor (extrapolations)
    below_predictor_floor: dict[str, int] = field(default_factory=dict)

    @property
    def partial(self) -> bool:
        """Cut short by an interrupt: the history holds the evaluations completed before it."""
        return self.stop_reason == INTERRUPTED

    @property
    def n_evaluations(self) -> int:
        return len(self.history)

    @property
    def best_arch(self) -> Architecture | None:
        return None if self.best is None else Architecture(self.space, self.best.spec)

    @property
    def best_accuracy(self) -> float | None:
        return None if self.best is None else self.best.accuracy

    @property
    def best_costs(self) -> dict[str, float] | None:
        return None if self.best is None else dict(zip(self.cost_names, self.best.costs))

    def best_after(self, n_evaluations: int) -> HistoryEntry | None:
        """Best feasible entry among the first ``n_evaluations`` (anytime performance)."""
        best = None
        for e in self.history[:n_evaluations]:
            if e.feasible and (best is None or _better(e, best)):
                best = e
        return best

    def to_json(self) -> dict[str, Any]:
        names = self.cost_names
        return {
            "algorithm": self.algorithm,
            "seed": self.seed,
            "space": self.space,
            "evaluator": self.evaluator,
            "evaluator_unit": self.evaluator_unit,
            "costs": [{"name": n, "unit": u} for n, u in zip(names, self.cost_units)],
            "constraints": list(self.constraints),
            "budget": self.budget,
            "multi_objective": self.multi_objective,
            "n_evaluations": self.n_evaluations,
            "stop_reason": self.stop_reason,
            "partial": self.partial,
            "n_reused": self.n_reused,
            "below_predictor_floor": dict(self.below_predictor_floor),
            "params": _jsonable(self.params),
            "wall_s": self.wall_s,
            "settings": self.settings,
            "best": None if self.best is None else self.best.to_json(names),
            "pareto": [e.to_json(names) for e in self.pareto],
            "history": [e.to_json(names) for e in self.history],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "SearchResult":
        try:
            names = [c["name"] for c in data["costs"]]

            def entry(d: dict[str, Any]) -> HistoryEntry:
                acc = d["accuracy"]
                costs = tuple(math.nan if d["costs"][n] is None else float(d["costs"][n]) for n in names)
                return HistoryEntry(int(d["index"]), d["spec"], -math.inf if acc is None else float(acc), costs, bool(d["feasible"]))

            return cls(
                algorithm=data["algorithm"],
                seed=int(data["seed"]),
                space=data["space"],
                evaluator=data["evaluator"],
                evaluator_unit=data["evaluator_unit"],
                cost_names=names,
                cost_units=[c["unit"] for c in data["costs"]],
                constraints=list(data["constraints"]),
                budget=int(data["budget"]),
                multi_objective=bool(data["multi_objective"]),
                history=[entry(d) for d in data["history"]],
                pareto=[entry(d) for d in data["pareto"]],
                best=None if data["best"] is None else entry(data["best"]),
                stop_reason=data["stop_reason"],
                params=dict(data.get("params", {})),
                wall_s=float(data.get("wall_s", 0.0)),
                settings=dict(data["settings"]) if data.get("settings") is not None else None,
                n_reused=int(data.get("n_reused", 0)),
                below_predictor_floor={str(k): int(v) for k, v in data.get("below_predictor_floor", {}).items()},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"not a search result JSON ({exc!r}); expected the output of SearchResult.to_json()") from None

    def file_stem(self) -> str:
        return f"{self.algorithm}_seed{self.seed}"

    def write(self, directory: str | Path) -> tuple[Path, Path]:
        """Write ``<algo>_seed<seed>_history.csv`` and ``<algo>_seed<seed>.json``; returns both paths.

        Each file is written beside its target and renamed over it, so an
        interrupted write leaves the previous file whole, and the JSON (which
        identifies the run) comes last.
        """
        out = prepare_output_dir(directory)
        csv_path = out / f"{self.file_stem()}_history.csv"
        json_path = out / f"{self.file_stem()}.json"
        text = io.StringIO(newline="")
        w = csv.writer(text)
        w.writerow(["index", "spec", "accuracy", *self.cost_names, "feasible"])
        for e in self.history:
            w.writerow([e.index, e.spec, repr(e.accuracy), *(repr(c) for c in e.costs), int(e.feasible)])
        write_atomic(csv_path, text.getvalue(), newline="")
        write_atomic(json_path, json.dumps(self.to_json(), indent=1) + "\n", newline="")
        return csv_path, json_path


class SearchInterrupted(KeyboardInterrupt):
    """Ctrl-C (or a signal raised as one) stopped a search; ``result`` holds the completed evaluations
    (stop reason ``"interrupted"``), ``summary`` says what was kept. A KeyboardInterrupt, so code that
    only cleans up on Ctrl-C still runs."""

    def __init__(self, result: SearchResult, summary: str = "") -> None:
        super().__init__(summary or f"search interrupted after {result.n_evaluations} evaluations")
        self.result = result
        self.summary = summary or str(self)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Architecture):
        return obj.spec
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)
