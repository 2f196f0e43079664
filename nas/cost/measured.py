"""Latency measured on demand on a real device, through the profiler (and its store)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from hwprof.types import Architecture


class MeasuredCost:
    """Latency of each architecture as the search proposes it.

    The store is the long-term cache: a measurement already stored for this
    device and these settings is reused (``profiler.cached_latency_ms``, one
    indexed lookup of that architecture, so asking costs the same however many
    rows the store holds); otherwise the profiler exports, measures and stores
    the model. A memory cache avoids asking the store twice. ``n_measured``
    counts real measurements.
    """

    cheap = False

    def __init__(self, profiler: Any, name: str = "latency_ms", unit: str = "ms") -> None:
        self.profiler = profiler
        self.name = name
        self.unit = unit
        self.n_measured = 0
        self.n_from_store = 0
        self._cache: dict[Architecture, float] = {}

    def describe(self) -> str:
        device = getattr(getattr(self.profiler, "device", None), "name", "a device")
        return f"{self.name} measured on {device}"

    def cost(self, arch: Architecture) -> float:
        if arch in self._cache:
            return self._cache[arch]
        stored = self.profiler.cached_latency_ms(arch)
        if stored is not None:
            self.n_from_store += 1
            value = float(stored)
        else:
            value = float(self.profiler.measure(arch).latency_ms)
            self.n_measured += 1
        self._cache[arch] = value
        return value

    def costs(self, archs: Sequence[Architecture]) -> np.ndarray:
        return np.array([self.cost(a) for a in archs], dtype=np.float64)
