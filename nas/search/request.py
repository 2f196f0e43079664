"""What a search is asked and what it hands back, as ``hwprof search`` states them.

The fields of ``SearchRequest`` are the options of ``hwprof search`` (specs as
text, see ``nas.cost.parse`` and ``nas.evaluators.parse``), so a notebook
states a search exactly as the command does; error messages name the options.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

if TYPE_CHECKING:
    from nas.cost.base import Constraint
    from nas.search.base import SearchResult

# on_progress(task, done, total, info): the shape of hwprof.cli.progress.ProgressDisplay.update
ProgressCallback = Callable[[str, int, "int | None", str], None]


@dataclass(frozen=True)
class SearchRequest:
    """One search, as option values.

    ``budget=None`` means the default of a budgeted algorithm (300 unique
    evaluations); an algorithm without an evaluation budget (MODNAS) refuses
    one. ``devices`` is for algorithms that learn for several devices at once.
    ``params`` are the algorithm's own settings (``algorithm_params``).
    ``command`` is recorded with any measurement a ``measure:`` cost stores.
    ``overwrite`` lets the results replace those of another search with the
    same file names in ``out`` (the same search again needs no permission).
    """

    algorithm: str = "layernas"
    space: str = "nb201"
    accuracy: str = "tabular:cifar10"
    costs: tuple[str, ...] = ()
    constraints: tuple["Constraint | str", ...] = ()
    budget: int | None = None
    seed: int = 0
    multi_objective: bool = False
    out: Path = Path("results")
    table: Path | None = None
    db: Path = Path("hwprof.db")
    devices: tuple[str, ...] | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    command: str = "nas.search.run_search"
    overwrite: bool = False

    def __post_init__(self) -> None:
        # a notebook writes lists, one string for one spec, and str paths: store them as the declared types
        for name in ("costs", "constraints", "devices"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, (value,) if isinstance(value, str) else tuple(value))
        for name in ("out", "db"):
            object.__setattr__(self, name, Path(getattr(self, name)))
        if self.table is not None:
            object.__setattr__(self, "table", Path(self.table))
        object.__setattr__(self, "params", dict(self.params))


@dataclass(frozen=True)
class SearchOutcome:
    """What a search produced: the evaluation-loop ``result`` (None for an algorithm that trains a model
    instead, e.g. MODNAS's hypernetwork in ``out``), the files it wrote, one line per thing to tell, and one
    line per warning (results not to trust before checking them)."""

    algorithm: str
    out: Path
    files: tuple[Path, ...]
    result: "SearchResult | None" = None
    summary: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
