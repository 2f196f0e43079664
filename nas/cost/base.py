"""The cost-model contract, constraints on costs, and the cost range of a space.

A cost is something to minimise that is known without training: latency from a
table, a predictor or a device, parameter count, MACs. Search algorithms treat
cost evaluations as free (they do not count against the evaluation budget), so
every cost model caches what it computes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, Sequence, runtime_checkable

import numpy as np

from hwprof.errors import ConfigError
from hwprof.types import Architecture

if TYPE_CHECKING:
    from hwprof.spaces import SearchSpace

# Spaces at most this large are enumerated to find the cost range when costing is cheap.
ENUMERATE_LIMIT = 100_000


@runtime_checkable
class CostModel(Protocol):
    """``name`` is the objective name constraints refer to (``latency_ms``, ``params``, ``macs``)."""

    name: str
    unit: str
    cheap: bool  # True when costing the whole (enumerable) space is affordable: tables, predictors

    def cost(self, arch: Architecture) -> float: ...

    def costs(self, archs: Sequence[Architecture]) -> np.ndarray: ...

    def describe(self) -> str: ...


@runtime_checkable
class FiniteCost(CostModel, Protocol):
    """A cost known only on a finite set of architectures (a lookup table of measurements).

    It declares that set, so a search stays inside it (``domain``) and the cost
    range is read off the table instead of being estimated (``bounds``).
    """

    def covers(self, space: "SearchSpace") -> bool:
        """True when every architecture of ``space`` has a cost here."""
        ...

    def domain(self, space: "SearchSpace") -> list[tuple[int, ...]]:
        """Choice tuples of the architectures that have a cost, in a fixed order."""
        ...

    def bounds(self, space: "SearchSpace") -> tuple["CostBound", "CostBound"]:
        """(min, max) over the architectures that have a cost; exact for the space when it ``covers`` it."""
        ...


_CONSTRAINT_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*<=\s*([^\s].*?)\s*$")


@dataclass(frozen=True)
class Constraint:
    """An upper bound on one cost objective: ``Constraint("latency_ms", 5.0)`` means latency_ms <= 5."""

    objective: str
    max_value: float

    def __post_init__(self) -> None:
        if not isinstance(self.objective, str) or not self.objective:
            raise ConfigError(f"constraint objective must be a non-empty name, got {self.objective!r}")
        if isinstance(self.max_value, bool) or not isinstance(self.max_value, (int, float)) or not math.isfinite(self.max_value):
            raise ConfigError(f"constraint {self.objective}: max_value must be a finite number, got {self.max_value!r}")

    def satisfied(self, value: float) -> bool:
        return bool(value <= self.max_value)

    def violation(self, value: float) -> float:
        """How far ``value`` is over the bound (0 when satisfied); pymoo's G <= 0 convention."""
        return max(0.0, float(value) - self.max_value)

    def __str__(self) -> str:
        return f"{self.objective}<={self.max_value:g}"

    @classmethod
    def parse(cls, text: str) -> "Constraint":
        """Parse ``'latency_ms<=5'`` (spaces allowed)."""
        m = _CONSTRAINT_RE.match(text or "")
        if m is None:
            raise ConfigError(f"constraint {text!r} not understood; expected NAME<=VALUE, e.g. 'latency_ms<=5'")
        name, value = m.groups()
        try:
            bound = float(value)
        except ValueError:
            raise ConfigError(f"constraint {text!r}: {value!r} is not a number; expected NAME<=VALUE, e.g. 'latency_ms<=5'") from None
        return cls(name, bound)


def check_constraints(costs: Sequence[CostModel], constraints: Sequence[Constraint]) -> list[int]:
    """Index of the cost model each constraint bounds; ConfigError when one names no cost model."""
    names = [c.name for c in costs]
    if len(set(names)) != len(names):
        raise ConfigError(f"cost models must have distinct names, got {names}; pass name=... to tell them apart")
    out = []
    for con in constraints:
        if con.objective not in names:
            raise ConfigError(
                f"constraint {con} bounds {con.objective!r}, which is not a cost objective; expected one of {names}"
            )
        out.append(names.index(con.objective))
    return out


@dataclass(frozen=True)
class CostBound:
    """An extreme cost over the space and how it was found (``method`` says exhaustive or sampled)."""

    value: float
    arch: Architecture
    method: str
    exact: bool


def _greedy_extreme(space: "SearchSpace", cost: CostModel, sign: float) -> tuple[float, Architecture]:
    """Sweep the layers once, picking the option that minimises sign*cost with the others fixed."""
    choices = [0] * space.num_layers
    for i, (_, opts) in enumerate(space.layers):
        cands = []
        for o in range(len(opts)):
            c = list(choices)
            c[i] = o
            cands.append(space.from_choices(c))
        vals = np.asarray(cost.costs(cands), dtype=np.float64) * sign
        choices[i] = int(np.argmin(vals))
    arch = space.from_choices(choices)
    return float(cost.cost(arch)), arch


def cost_bounds(
    space: "SearchSpace",
    cost: CostModel,
    rng: np.random.Generator | None = None,
    sample_size: int | None = None,
    need_max: bool = True,
) -> tuple[CostBound, CostBound | None]:
    """(minimum, maximum) cost over the space; the maximum is None when ``need_max`` is False.

    Exact when the cost is cheap and the space has at most ``ENUMERATE_LIMIT``
    architectures (every one is costed), or when it is a ``FiniteCost`` (its own
    rows). Otherwise the better of a per-layer greedy sweep and ``sample_size``
    random architectures (default 64 for cheap costs, 8 for costs that build
    or measure networks), which is an estimate (the true minimum may be lower).
    """
    if isinstance(cost, FiniteCost):
        return cost.bounds(space)
    if cost.cheap and space.size <= ENUMERATE_LIMIT:
        archs = list(space.enumerate())
        vals = np.asarray(cost.costs(archs), dtype=np.float64)
        lo, hi = int(np.argmin(vals)), int(np.argmax(vals))
        method = f"exhaustive over all {space.size} {space.name} architectures"
        return CostBound(float(vals[lo]), archs[lo], method, True), CostBound(float(vals[hi]), archs[hi], method, True)
    rng = rng if rng is not None else np.random.default_rng(0)
    if sample_size is None:
        sample_size = 64 if cost.cheap else 8
    n = min(sample_size, space.size)
    sample = space.sample(n, rng)
    vals = np.asarray(cost.costs(sample), dtype=np.float64)
    method = f"estimated from {n} random {space.name} architectures and a per-layer greedy sweep"

    def extreme(sign: float) -> CostBound:
        g_val, g_arch = _greedy_extreme(space, cost, sign)
        i = int(np.argmin(vals * sign))
        if g_val * sign <= vals[i] * sign:
            return CostBound(g_val, g_arch, method, False)
        return CostBound(float(vals[i]), sample[i], method, False)

    return extreme(1.0), extreme(-1.0) if need_max else None
