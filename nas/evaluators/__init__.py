"""Accuracy evaluators (higher is better) and the cache that makes them a search budget.

``parse_evaluator("tabular:cifar10", space)`` builds one from the spec ``hwprof search --accuracy`` takes.
"""

from nas.evaluators.base import BudgetExhausted, CachedEvaluator, Evaluator
from nas.evaluators.data import ImageData, load_digits_data
from nas.evaluators.parse import EVALUATOR_FORMS, parse_evaluator, split_evaluator
from nas.evaluators.proxies import NaswotEvaluator, SynflowEvaluator, naswot_score, synflow_score
from nas.evaluators.tabular import TabularEvaluator
from nas.evaluators.train import TrainEvaluator

__all__ = [
    "EVALUATOR_FORMS",
    "BudgetExhausted",
    "CachedEvaluator",
    "Evaluator",
    "ImageData",
    "NaswotEvaluator",
    "SynflowEvaluator",
    "TabularEvaluator",
    "TrainEvaluator",
    "load_digits_data",
    "naswot_score",
    "parse_evaluator",
    "split_evaluator",
    "synflow_score",
]
