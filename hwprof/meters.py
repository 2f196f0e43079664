"""The energy meter contract, and how a meter's readings become energy per inference.

A meter measures the machine the worker runs on (RAPL, NVML, tegrastats, an
external power meter's log: ``devices/energy``). It is read around each
visit's timed loop (:class:`hwprof.protocol.VisitObserver`), so the energy
belongs to exactly the repetitions whose latency was timed, warm-up excluded.
Each visit's energy is divided by that visit's runs; a model's energy per
inference pools its visits (total energy / total runs) and its uncertainty
combines the spread between visits with the meter's own resolution.

Two kinds of meter fit one contract: a counter (RAPL, NVML) whose ``read()``
is a counter snapshot, and a power trace (tegrastats, a CSV log) whose
``read()`` is a timestamp and whose ``energy_between`` integrates the trace.
Energy is None, never 0, where no meter was attached.
"""

from __future__ import annotations

import contextlib
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Iterator, Mapping, Sequence

from hwprof import registry
from hwprof.errors import HwprofError, first_line
from hwprof.types import Measurement, merge_settings


class MeterError(HwprofError):
    """A meter could not produce a reading (a counter vanished, a power log does not cover the window)."""


class MeterUnavailable(MeterError):
    """The meter cannot work on this machine; the message says why."""


@dataclass(frozen=True)
class EnergyReading:
    """Energy over one window, its uncertainty (95% half-width, from the meter's resolution) and length."""

    energy_mj: float
    uncertainty_mj: float
    duration_s: float


@dataclass(frozen=True)
class MeterInfo:
    """What ``Meter.check`` found: the source it reads, in words, and details for the record."""

    name: str
    source: str
    extra: Mapping[str, Any] = field(default_factory=dict)


class Meter(ABC):
    """An energy meter of the machine the worker runs on.

    Subclasses declare ``name`` and ``default_settings`` (constructor keyword
    arguments override them and are validated like a device's).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    default_settings: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, **settings: Any) -> None:
        self.settings: dict[str, Any] = self.validate_settings(
            merge_settings(f"meter {self.name!r}", self.default_settings, settings)
        )

    def validate_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        """Normalise and check settings; raise ConfigError. Default: accept as is."""
        return settings

    @abstractmethod
    def check(self) -> MeterInfo:
        """Describe what is read, or raise MeterUnavailable saying why it cannot be read here."""

    def open(self) -> None:
        """Start what runs during a measurement (e.g. a sampling process). Default: nothing."""

    def close(self) -> None:
        """Stop what ``open`` started. Default: nothing."""

    @contextlib.contextmanager
    def session(self) -> Iterator["Meter"]:
        self.open()
        try:
            yield self
        finally:
            self.close()

    @abstractmethod
    def read(self) -> Any:
        """A mark of now: a counter snapshot or a timestamp; cheap (called around timed loops)."""

    @abstractmethod
    def energy_between(self, start: Any, end: Any) -> EnergyReading:
        """Energy between two marks of ``read()``; may wait for a power log to cover ``end``."""


@dataclass(frozen=True)
class EnergyEstimate:
    """Energy per inference of one model: pooled over its metered visits."""

    energy_mj: float
    ci_mj: float
    n_visits: int
    n_runs: int


def t_quantile(confidence: float, dof: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.5 + confidence / 2, dof))


def pool_energy(visits: Sequence[tuple[EnergyReading, int]], confidence: float = 0.95) -> EnergyEstimate | None:
    """Energy per inference from ``(reading, runs)`` of each visit; None without a visit.

    The estimate is total energy / total runs. Its uncertainty adds in
    quadrature the Student-t CI of the per-visit energies per inference (from
    two visits on) and the meters' resolution, which is independent per visit.
    """
    visits = [(r, n) for r, n in visits if n > 0]
    if not visits:
        return None
    n_runs = sum(n for _, n in visits)
    energy = sum(r.energy_mj for r, _ in visits) / n_runs
    resolution = math.sqrt(sum(r.uncertainty_mj ** 2 for r, _ in visits)) / n_runs
    spread = 0.0
    if len(visits) >= 2:
        per_inference = [r.energy_mj / n for r, n in visits]
        mean = sum(per_inference) / len(per_inference)
        var = sum((e - mean) ** 2 for e in per_inference) / (len(per_inference) - 1)
        spread = t_quantile(confidence, len(per_inference) - 1) * math.sqrt(var / len(per_inference))
    return EnergyEstimate(energy, math.hypot(spread, resolution), len(visits), n_runs)


class EnergyRecorder:
    """A :class:`hwprof.protocol.VisitObserver` that reads a meter around every visit's timed loop."""

    def __init__(self, meter: Meter, n_models: int) -> None:
        self.meter = meter
        self._open: dict[int, Any] = {}
        self.visits: list[list[tuple[Any, Any, int]]] = [[] for _ in range(n_models)]

    def visit_started(self, model: int) -> None:
        self._open[model] = self.meter.read()

    def visit_ended(self, model: int, n_runs: int) -> None:
        end = self.meter.read()
        self.visits[model].append((self._open.pop(model), end, n_runs))

    def estimates(self, confidence: float = 0.95) -> list[EnergyEstimate | None]:
        """Energy per inference of each model (None for a model without a completed visit)."""
        return [
            pool_energy([(self.meter.energy_between(a, b), n) for a, b, n in visits], confidence)
            for visits in self.visits
        ]

    def annotate(self, measurements: Sequence[Measurement | None], confidence: float = 0.95) -> list[Measurement | None]:
        """``measurements`` (one per model, None kept) with energy_mj, energy_ci_mj and the meter's name."""
        out: list[Measurement | None] = []
        for m, est in zip(measurements, self.estimates(confidence)):
            if m is not None and est is not None:
                m = replace(m, energy_mj=est.energy_mj, energy_ci_mj=est.ci_mj, meter=self.meter.name)
            out.append(m)
        return out


def get_meter(name: str, **settings: Any) -> Meter:
    """The meter registered under ``name`` (entry-point group ``hwprof.meters``), built with ``settings``."""
    return registry.load("meter", name)(**settings)


def meter_status() -> list[tuple[str, bool, str]]:
    """Every registered meter: (name, usable here, what it reads or why not), for ``hwprof devices``."""
    rows = []
    for name in registry.names("meter"):
        try:
            info = get_meter(name).check()
        except HwprofError as exc:
            rows.append((name, False, first_line(exc)))
        else:
            rows.append((name, True, info.source))
    return rows
