"""Measured latencies looked up by architecture: a benchmark table, a CSV, or the measurement store."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from hwprof.errors import DataError, HwprofError, UnknownNameError
from hwprof.types import Architecture
from nas.cost.base import CostBound

if TYPE_CHECKING:
    from hwprof.spaces import SearchSpace
    from nas.tabular import NB201Table


class LookupCost:
    """A table from architecture spec to a measured cost; an architecture not in it is an error.

    A ``FiniteCost``: it declares its architectures (``domain``) and its exact range (``bounds``).

    ``space`` (optional) canonicalises and validates the table's architecture
    strings, so a CSV written with different spacing still matches.
    """

    cheap = True

    def __init__(
        self,
        values: Mapping[str, float],
        name: str = "latency_ms",
        unit: str = "ms",
        source: str = "lookup table",
        space: "SearchSpace | None" = None,
        lines: Sequence[int] | None = None,
    ) -> None:
        table: dict[str, float] = {}
        given: dict[str, str] = {}  # canonical spec -> how the table first wrote it
        for n, (spec, v) in enumerate(values.items()):
            row = f"line {lines[n]} " if lines is not None else ""
            try:
                key = space.parse(spec).spec if space is not None else spec
            except HwprofError as exc:
                raise DataError(f"{source}: {row}architecture {spec!r} is not a {space.name} architecture: {exc}") from None
            if key in given:  # two spellings of one network: which cost would count?
                raise DataError(f"{source}: {row}{spec!r} is the architecture {given[key]!r} again; expected each once")
            val = float(v)
            if not np.isfinite(val):
                raise DataError(f"{source}: cost of {spec!r} is {v!r}; expected a finite number")
            table[key] = val
            given[key] = spec
        if not table:
            raise DataError(f"{source} holds no architectures; expected at least one measured cost")
        self.name = name
        self.unit = unit
        self.source = source
        self.space_name = space.name if space is not None else None
        self._table = table

    # --- constructors --------------------------------------------------------
    @classmethod
    def from_nb201(cls, table: "NB201Table", device: str, name: str = "latency_ms") -> "LookupCost":
        """One device column of the NAS-Bench-201 table (e.g. ``"pixel3"``, ``"1080ti_1"``)."""
        if device not in table.latency_ms:
            raise UnknownNameError(f"no latency column for device {device!r} in the NB201 table; known: {', '.join(table.devices)}")
        col = table.latency_ms[device]
        return cls(dict(zip(table.archs, col.tolist())), name=name, source=f"NB201 table, device {device}")

    @classmethod
    def from_csv(
        cls,
        path: str | Path,
        column: str,
        space: "SearchSpace | None" = None,
        name: str = "latency_ms",
    ) -> "LookupCost":
        """A ``lat_<device>_ms`` column of a benchmark-style CSV; ``column`` may be ``<device>`` or the full name."""
        from nas.tabular import read_latency_csv
        from predictors.data import column_device

        archs, latency, _ = read_latency_csv(path)
        key = column if column in latency else (column_device(column) or column)
        if key not in latency:
            raise UnknownNameError(
                f"no latency column {column!r} in {Path(path).name}; known: {', '.join(latency)} (as <device> or lat_<device>_ms)"
            )
        # the reader refused a repeated string; ``lines`` lets the constructor name a bad or re-spelt row
        return cls(dict(zip(archs, latency[key].tolist())), name=name, source=f"{Path(path).name}, column {key}",
                   space=space, lines=range(2, len(archs) + 2))

    @classmethod
    def from_store(cls, store, device: str, space: "SearchSpace | None" = None, name: str = "latency_ms") -> "LookupCost":
        """Median latencies measured on ``device`` in a ``hwprof.store.Store``."""
        values = store.latencies(device, space=space.name if space is not None else None)
        if not values:
            where = f" for space {space.name!r}" if space is not None else ""
            raise DataError(f"the store holds no measurements on device {device!r}{where}; run `hwprof profile` first")
        return cls(values, name=name, source=f"store {getattr(store, 'path', '')}, device {device}", space=space)

    # --- the contract ----------------------------------------------------------
    def __len__(self) -> int:
        return len(self._table)

    def describe(self) -> str:
        return f"{self.name} looked up in {self.source} ({len(self._table)} architectures)"

    def cost(self, arch: Architecture) -> float:
        try:
            return self._table[arch.spec]
        except KeyError:
            raise DataError(
                f"no {self.name} for architecture {arch.spec!r} in {self.source}; "
                f"expected one of its {len(self._table)} architectures (use a predictor cost to cover the rest)"
            ) from None

    def costs(self, archs: Sequence[Architecture]) -> np.ndarray:
        out = np.empty(len(archs), dtype=np.float64)
        for i, a in enumerate(archs):
            v = self._table.get(a.spec)
            out[i] = self.cost(a) if v is None else v  # cost() raises the descriptive error
        return out

    def covers(self, space: "SearchSpace") -> bool:
        """True when every architecture of ``space`` has a cost here (the table is the whole space)."""
        return len(self._table) >= space.size

    def domain(self, space: "SearchSpace") -> list[tuple[int, ...]]:
        """Choice tuples of the table's architectures, in table order: what a search may visit."""
        return [space.choices_from_spec(spec) for spec in self._table]

    def bounds(self, space: "SearchSpace") -> tuple[CostBound, CostBound]:
        """(min, max) over the table; exact for the space when the table covers all of it."""
        specs = list(self._table)
        vals = np.fromiter(self._table.values(), dtype=np.float64, count=len(specs))
        lo, hi = int(np.argmin(vals)), int(np.argmax(vals))
        covers = self.covers(space)
        if covers:
            method = f"exhaustive over all {space.size} {space.name} architectures"
        else:
            method = f"over the {len(specs)} architectures in {self.source} (it does not cover all {space.size})"
        return (
            CostBound(float(vals[lo]), space.parse(specs[lo]), method, covers),
            CostBound(float(vals[hi]), space.parse(specs[hi]), method, covers),
        )
