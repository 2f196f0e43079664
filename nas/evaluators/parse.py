"""Accuracy evaluators from short text specs: what ``hwprof search --accuracy`` accepts, for notebooks too.

Grammar (``KIND`` or ``KIND:ARG``)::

    tabular:DATASET   200-epoch test accuracy (%) from the NB201 table: cifar10 | cifar100 | ImageNet16-120
                      (bundled, or ``table``; nb201 only); ``tabular`` alone is tabular:cifar10
    train:digits      train each network a few epochs on the bundled digits images (a small, 10-class
                      version of the space is built); ``train`` alone is train:digits
    proxy:synflow     zero-cost proxy scores (no training): SynFlow, or
    proxy:naswot      NASWOT's activation-pattern score
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hwprof import registry
from hwprof.errors import ConfigError
from nas.evaluators.base import Evaluator
from nas.evaluators.proxies import NaswotEvaluator, SynflowEvaluator
from nas.evaluators.tabular import TabularEvaluator
from nas.evaluators.train import TrainEvaluator
from nas.tabular import nb201_table_for

if TYPE_CHECKING:
    from hwprof.spaces import SearchSpace

EVALUATOR_FORMS = "tabular:cifar10|tabular:cifar100|tabular:ImageNet16-120|train:digits|proxy:synflow|proxy:naswot"
TRAIN_DATA = ("digits",)
PROXIES = {"synflow": SynflowEvaluator, "naswot": NaswotEvaluator}
# Small network for train:digits: one cell per stage, 8 channels, the digits' 10 classes at 16x16.
TRAIN_SPACE_PARAMS = {"num_classes": 10, "channels": 8, "cells_per_stage": 1, "input_size": 16}


def split_evaluator(text: str) -> tuple[str, str]:
    """(kind, argument) of a spec, defaults filled in; ConfigError listing the valid forms."""
    kind, _, arg = str(text).partition(":")
    if kind == "tabular":
        return kind, arg or "cifar10"
    if kind == "train":
        if (arg or "digits") not in TRAIN_DATA:
            raise ConfigError(f"unknown training data {arg!r} in accuracy {text!r}; known: {', '.join(TRAIN_DATA)}")
        return kind, arg or "digits"
    if kind == "proxy":
        if arg not in PROXIES:
            raise ConfigError(f"unknown proxy {arg!r} in accuracy {text!r}; known: {', '.join(PROXIES)}")
        return kind, arg
    raise ConfigError(f"unknown accuracy objective {text!r}; expected one of {EVALUATOR_FORMS}")


def parse_evaluator(text: str, space: "SearchSpace", *, table: str | Path | None = None, seed: int = 0) -> Evaluator:
    """The accuracy evaluator a spec names (grammar in the module docstring).

    ``table``: the NB201 CSV for ``tabular:`` (default: the bundled copy);
    ``seed``: initialisation of the networks ``train:`` and ``proxy:`` build.
    """
    kind, arg = split_evaluator(text)
    if kind == "tabular":
        return TabularEvaluator(nb201_table_for(space, table, f"accuracy {text!r}"), arg)
    if kind == "train":
        params = TRAIN_SPACE_PARAMS if space.name == "nb201" else {"num_classes": 10}
        try:
            small = registry.get_space(space.name, **params)
        except TypeError as exc:
            raise ConfigError(f"cannot build a 10-class {space.name} network for {arg} ({exc})") from None
        return TrainEvaluator(small, arg, seed=seed)
    return PROXIES[arg](space, seed=seed)
