"""Cost models for hardware-aware search: what a candidate costs, known without training it.

A multi-objective search takes a list of cost models; a ``Constraint`` bounds one of them by name.
"""

from nas.cost.base import ENUMERATE_LIMIT, Constraint, CostBound, CostModel, FiniteCost, check_constraints, cost_bounds
from nas.cost.counts import MacsCost, ParamsCost, count_macs, count_params
from nas.cost.lookup import LookupCost
from nas.cost.measured import MeasuredCost
from nas.cost.predictor import PredictorCost

__all__ = [
    "ENUMERATE_LIMIT",
    "Constraint",
    "CostBound",
    "CostModel",
    "FiniteCost",
    "LookupCost",
    "MacsCost",
    "MeasuredCost",
    "ParamsCost",
    "PredictorCost",
    "check_constraints",
    "cost_bounds",
    "count_macs",
    "count_params",
]
