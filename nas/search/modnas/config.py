"""Everything that defines one MODNAS training run; its hash identifies the run for resuming."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from hwprof.errors import ConfigError
from hwprof.types import stable_hash
from nas.search.modnas.objectives import SCALARISATIONS
from nas.search.modnas.sampling import SAMPLERS, TemperatureSchedule

MODES = ("surrogate", "supernet")
COMBINES = ("mgd", "linear")
SCALES = ("linear", "log")  # how objectives are normalised: see nas.search.modnas.objectives
# Supernet mode evaluates one real network per (device, preference) task, so it runs fewer, single-sample tasks.
# Its error (cross-entropy / ln classes) is not scaled to its range over the space, as a Chebyshev scalarisation
# needs (with a small error the latency term is always the larger, and every ray picks fast networks), so it keeps
# the weighted sum, and the temperature it was measured with.
MODE_DEFAULTS: dict[str, dict[str, Any]] = {
    "supernet": {"samples_per_task": 1, "tasks_per_step": 4, "scalarisation": "weighted_sum", "tau_end": 0.3},
}
# Fields that do not change the result: leaving them out of the hash lets a run resume after editing them.
_NOT_HASHED = ("out_dir", "checkpoint_every", "store_db")
# Fields added after the first release, with the behaviour runs had before them: left out of the hash at that
# value, so a run (or finished directory) made before the field existed still resumes (or is found).
_HASHED_WHEN_NOT = {"scalarisation": "weighted_sum"}
# Fields added later that are written (and hashed) only when set, so a configuration without them is as before.
_WRITTEN_WHEN_SET = ("store_devices", "store_db")
# Fields that decide the set-up (references, embeddings, surrogates): runs that agree on them share it.
_SETUP_FIELDS = ("mode", "space", "dataset", "table", "devices", "store_devices", "n_refs", "surrogate_hidden", "accuracy_epochs",
                 "latency_epochs", "max_table_archs", "seed")


@dataclass(frozen=True)
class ModnasConfig:
    """One hypernetwork search.

    ``mode="surrogate"``: accuracy comes from a surrogate fitted on the
    benchmark table (every result says "surrogate"); ``"supernet"``: from a
    weight-sharing supernet trained on the bundled digits images. Latency
    always comes from a latency surrogate fitted on ``devices``' table columns.
    ``combine="mgd"`` joins the step's per-task gradients at their min-norm
    point; ``"linear"`` averages them (the linear-scalarisation ablation).
    ``objective_scale="log"`` normalises log error and log latency instead of
    the values (same Pareto front, ends stretched; see ``objectives``).
    ``scalarisation`` is how a task's preference weighs its two objectives:
    ``"weighted_sum"`` or ``"chebyshev"`` (reaches concave parts of the front;
    see ``objectives``).
    ``entropy_weight`` rewards spread-out architecture distributions early on
    and decays linearly to zero at ``entropy_until`` of the run: a
    distribution that collapses onto one architecture gets (almost) no
    gradient from either sampler any more, so without it the hypernetwork
    freezes on whatever it found in the first few hundred steps.
    """

    out_dir: str
    mode: str = "surrogate"
    space: str = "nb201"
    dataset: str = "cifar10"
    table: str | None = None
    devices: tuple[str, ...] | None = None
    store_devices: tuple[str, ...] | None = None
    store_db: str | None = None
    n_refs: int = 10
    steps: int = 5000
    tasks_per_step: int = 16
    samples_per_task: int = 32
    sampler: str = "gdas"
    tau_start: float = 1.0
    tau_end: float = 0.1
    tau_schedule: str = "exponential"
    combine: str = "mgd"
    objective_scale: str = "log"
    scalarisation: str = "chebyshev"
    dirichlet_alpha: tuple[float, ...] = (1.0, 1.0)
    entropy_weight: float = 0.5
    entropy_until: float = 0.7
    lr: float = 1e-3
    hidden: tuple[int, ...] = (256, 256)
    surrogate_hidden: tuple[int, ...] = (256, 256)
    accuracy_epochs: int = 150
    latency_epochs: int = 12
    max_table_archs: int | None = None
    seed: int = 0
    checkpoint_every: int = 250
    supernet_channels: int = 8
    supernet_cells: int = 1
    supernet_input_size: int = 16  # digits are 8x8; 16 keeps a spatial map after the two reductions
    supernet_batch_size: int = 64
    supernet_lr: float = 0.05
    supernet_warmup_steps: int = 200

    def __post_init__(self) -> None:
        if isinstance(self.store_devices, str):  # `--param store_devices=ort-cpu` names one device
            object.__setattr__(self, "store_devices", (self.store_devices,))
        for name in ("devices", "store_devices", "dirichlet_alpha", "hidden", "surrogate_hidden"):
            v = getattr(self, name)
            if isinstance(v, list):
                object.__setattr__(self, name, tuple(v))
        self.validate()

    def validate(self) -> None:
        def positive_int(name: str, minimum: int = 1) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
                raise ConfigError(f"modnas: {name} must be an integer >= {minimum}, got {v!r}")

        def positive_float(name: str) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ConfigError(f"modnas: {name} must be a finite number > 0, got {v!r}")

        if not isinstance(self.out_dir, str) or not self.out_dir:
            raise ConfigError(f"modnas: out_dir must be a directory path, got {self.out_dir!r}")
        if self.mode not in MODES:
            raise ConfigError(f"modnas: mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.combine not in COMBINES:
            raise ConfigError(f"modnas: combine must be one of {', '.join(COMBINES)}, got {self.combine!r}")
        if self.objective_scale not in SCALES:
            raise ConfigError(f"modnas: objective_scale must be one of {', '.join(SCALES)}, got {self.objective_scale!r}")
        if self.scalarisation not in SCALARISATIONS:
            raise ConfigError(f"modnas: scalarisation must be one of {', '.join(SCALARISATIONS)}, got {self.scalarisation!r}")
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"modnas: sampler must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
        if self.space != "nb201":
            raise ConfigError(
                f"modnas: training needs a space with an accuracy table and latency columns; only 'nb201' has both, got {self.space!r}"
            )
        if self.mode == "supernet" and self.samples_per_task != 1:
            raise ConfigError("modnas: supernet mode runs one network per task; set samples_per_task=1")
        for name in ("n_refs",):
            positive_int(name, 2)
        for name in ("steps", "tasks_per_step", "samples_per_task", "accuracy_epochs", "latency_epochs",
                     "checkpoint_every", "supernet_channels", "supernet_cells", "supernet_batch_size"):
            positive_int(name)
        positive_int("supernet_warmup_steps", 0)
        positive_int("seed", 0)
        if self.supernet_input_size < 4 or self.supernet_input_size % 4:
            raise ConfigError(f"modnas: supernet_input_size must be a positive multiple of 4, got {self.supernet_input_size}")
        for name in ("lr", "supernet_lr"):
            positive_float(name)
        if isinstance(self.entropy_weight, bool) or not isinstance(self.entropy_weight, (int, float)) or not (
            math.isfinite(self.entropy_weight) and self.entropy_weight >= 0
        ):
            raise ConfigError(f"modnas: entropy_weight must be a finite number >= 0, got {self.entropy_weight!r}")
        if isinstance(self.entropy_until, bool) or not isinstance(self.entropy_until, (int, float)) or not 0 < self.entropy_until <= 1:
            raise ConfigError(f"modnas: entropy_until must be a fraction of the run in (0, 1], got {self.entropy_until!r}")
        TemperatureSchedule(self.tau_start, self.tau_end, self.tau_schedule)
        if len(self.dirichlet_alpha) != 2 or any(
            isinstance(a, bool) or not isinstance(a, (int, float)) or not math.isfinite(a) or a <= 0 for a in self.dirichlet_alpha
        ):
            raise ConfigError(f"modnas: dirichlet_alpha must be two positive numbers (accuracy, latency), got {self.dirichlet_alpha!r}")
        for name in ("hidden", "surrogate_hidden"):
            v = getattr(self, name)
            if not v or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in v):
                raise ConfigError(f"modnas: {name} must be a non-empty list of positive integers, got {v!r}")
        if self.max_table_archs is not None and (
            isinstance(self.max_table_archs, bool) or not isinstance(self.max_table_archs, int) or self.max_table_archs < 100
        ):
            raise ConfigError(f"modnas: max_table_archs must be None or an integer >= 100, got {self.max_table_archs!r}")
        if self.devices is not None and (len(self.devices) == 0 or len(set(self.devices)) != len(self.devices)):
            raise ConfigError(f"modnas: devices must be a non-empty list of distinct names, got {self.devices!r}")
        if self.store_devices is not None:
            if len(self.store_devices) == 0 or len(set(self.store_devices)) != len(self.store_devices):
                raise ConfigError(f"modnas: store_devices must be a non-empty list of distinct names, got {self.store_devices!r}")
            if not self.store_db:
                raise ConfigError("modnas: store_devices are read from a store; give its path (--db / store_db)")
            both = sorted(set(self.store_devices) & set(self.devices or ()))
            if both:
                raise ConfigError(f"modnas: {both[0]!r} is both a table device and a store device; name it once")

    @classmethod
    def create(cls, out_dir: str, mode: str = "surrogate", **overrides: Any) -> "ModnasConfig":
        """A configuration with ``mode``'s defaults (``MODE_DEFAULTS``) under ``overrides``; unknown fields are a ConfigError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(f"modnas: unknown setting(s) {unknown}; known: {', '.join(sorted(known - {'out_dir', 'mode'}))}")
        return cls(out_dir=out_dir, mode=mode, **{**MODE_DEFAULTS.get(mode, {}), **overrides})

    @property
    def temperature(self) -> TemperatureSchedule:
        return TemperatureSchedule(self.tau_start, self.tau_end, self.tau_schedule)

    def entropy_at(self, step: int, total: int) -> float:
        """The entropy bonus weight at ``step``: linear from ``entropy_weight`` to 0 at ``entropy_until`` of the run."""
        end = self.entropy_until * total
        return float(self.entropy_weight * max(0.0, 1.0 - step / end)) if end > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        for k in _WRITTEN_WHEN_SET:
            if d[k] is None:
                del d[k]
        return d

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ModnasConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"modnas: unknown config field(s) {unknown}")
        return cls(**dict(data))

    def _hashed(self) -> dict[str, Any]:
        d = self.to_json()
        for k in _NOT_HASHED:
            d.pop(k, None)
        for k, before in _HASHED_WHEN_NOT.items():
            if d.get(k) == before:
                del d[k]
        return d

    def run_hash(self) -> str:
        return stable_hash(self._hashed())

    def differences(self, recorded: Any, setup_only: bool = False) -> str:
        """What differs from the configuration a directory records (``to_json`` form), e.g. "steps 50 there, 60
        now"; "" when it records none (files written before configurations were kept with them)."""
        if not isinstance(recorded, Mapping):
            return ""
        try:
            there = ModnasConfig.from_json(recorded)._hashed()
        except (ConfigError, TypeError, ValueError):
            return ""
        here = self._hashed()
        keys = sorted(here.keys() | there.keys())
        if setup_only:
            keys = [k for k in keys if k in _SETUP_FIELDS]
        return "; ".join(f"{k} {there.get(k)!r} there, {here.get(k)!r} now" for k in keys if here.get(k) != there.get(k))

    def setup_hash(self) -> str:
        """Identifies the set-up alone, so an ablation (another sampler, combine, step count) can reuse it."""
        d = self.to_json()
        return stable_hash({k: d[k] for k in _SETUP_FIELDS if k in d})
