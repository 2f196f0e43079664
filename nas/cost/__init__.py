"""Cost models for hardware-aware search: what a candidate costs, known without training it.

A multi-objective search takes a list of cost models; a ``Constraint`` bounds one of them by name.
``parse_cost("lookup:pixel3", space)`` builds one from the spec ``hwprof search --cost`` takes.
"""

from nas.cost.base import ENUMERATE_LIMIT, Constraint, CostBound, CostModel, FiniteCost, check_constraints, cost_bounds
from nas.cost.counts import MacsCost, ParamsCost, count_macs, count_params
from nas.cost.lookup import LookupCost
from nas.cost.measured import MeasuredCost
from nas.cost.parse import COST_FORMS, CostSpec, parse_cost, parse_costs, split_cost
from nas.cost.predictor import PredictorCost

__all__ = [
    "COST_FORMS",
    "ENUMERATE_LIMIT",
    "Constraint",
    "CostBound",
    "CostModel",
    "CostSpec",
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
    "parse_cost",
    "parse_costs",
    "split_cost",
]
