"""Search algorithms (LayerNAS and baselines) behind one ``search()`` call, and their shared result type."""

from nas.search.base import HistoryEntry, SearchProblem, SearchProgress, SearchResult, pareto_entries
from nas.search.registry import algorithm_names, algorithm_params, get_algorithm, register_algorithm, search

__all__ = [
    "HistoryEntry",
    "SearchProblem",
    "SearchProgress",
    "SearchResult",
    "algorithm_names",
    "algorithm_params",
    "get_algorithm",
    "pareto_entries",
    "register_algorithm",
    "search",
]
