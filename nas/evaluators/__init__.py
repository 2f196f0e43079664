"""Accuracy evaluators (higher is better) and the cache that makes them a search budget."""

from nas.evaluators.base import BudgetExhausted, CachedEvaluator, Evaluator
from nas.evaluators.data import ImageData, load_digits_data
from nas.evaluators.proxies import NaswotEvaluator, SynflowEvaluator, naswot_score, synflow_score
from nas.evaluators.tabular import TabularEvaluator
from nas.evaluators.train import TrainEvaluator

__all__ = [
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
    "synflow_score",
]
