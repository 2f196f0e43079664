"""Accuracy looked up in NAS-Bench-201 (200-epoch test accuracy, %)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hwprof.errors import ConfigError, UnknownNameError
from hwprof.types import Architecture

if TYPE_CHECKING:
    from nas.tabular import NB201Table

_ALIASES = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16-120": "ImageNet16-120", "imagenet16": "ImageNet16-120"}


class TabularEvaluator:
    """Test accuracy of an NB201 architecture on ``dataset`` from the benchmark table."""

    unit = "%"

    def __init__(self, table: "NB201Table | None" = None, dataset: str = "cifar10") -> None:
        if table is None:
            from nas.tabular import load_nb201

            table = load_nb201()
        key = _ALIASES.get(str(dataset).lower())
        if key is None or key not in table.accuracy:
            raise UnknownNameError(f"unknown NB201 dataset {dataset!r}; known: {', '.join(table.accuracy)}")
        self.table = table
        self.dataset = key
        self.name = f"tabular:{key}"
        self._accuracy = table.accuracy[key]

    def evaluate(self, arch: Architecture) -> float:
        if arch.space != "nb201":
            raise ConfigError(f"the NB201 table scores nb201 architectures, got one of space {arch.space!r}")
        return float(self._accuracy[self.table.index_of(arch.spec)])
