"""Search algorithms (LayerNAS, baselines, MODNAS) behind one registry, and the calls that run them.

``run_search(SearchRequest(...))`` is ``hwprof search`` as a library call;
``search(algorithm, space, evaluator, costs, ...)`` runs a budgeted algorithm on objects.
"""

from nas.search.base import HistoryEntry, SearchInterrupted, SearchProblem, SearchProgress, SearchResult, pareto_entries
from nas.search.registry import (
    algorithm_kind,
    algorithm_names,
    algorithm_params,
    as_constraints,
    get_algorithm,
    register_algorithm,
    search,
)
from nas.search.request import ProgressCallback, SearchOutcome, SearchRequest
from nas.search.workflow import DEFAULT_BUDGET, run_search

__all__ = [
    "DEFAULT_BUDGET",
    "HistoryEntry",
    "ProgressCallback",
    "SearchOutcome",
    "SearchInterrupted",
    "SearchProblem",
    "SearchProgress",
    "SearchRequest",
    "SearchResult",
    "algorithm_kind",
    "algorithm_names",
    "algorithm_params",
    "as_constraints",
    "get_algorithm",
    "pareto_entries",
    "register_algorithm",
    "run_search",
    "search",
]
