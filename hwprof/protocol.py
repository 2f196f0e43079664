"""The measurement protocol every device adapter shares.

In the spirit of pyperf, a latency is the outcome of a method rather than of a
loop: warm up until the timings settle, repeat until the median is known to a
stated precision (or a budget runs out), report the spread next to the median,
and flag results that are too noisy to trust. The clock is a parameter so the
stopping rules can be tested deterministically with a fake one.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from hwprof.errors import ConfigError, DataError, NotFittedError
from hwprof.estimators import STOP_QUANTILE, quantile, visit_values
from hwprof.types import LatencyStats

logger = logging.getLogger("hwprof")

STOP_CI_TARGET = "ci_target"
STOP_MAX_RUNS = "max_runs"
STOP_MAX_TIME = "max_time"
STOP_MAX_ROUNDS = "max_rounds"
# Every result kept from an interleaved group cut short by Ctrl-C (or a signal raised as one).
STOP_INTERRUPTED = "interrupted"

# Below this many samples the order-statistic CI of the median is not informative.
MIN_SAMPLES_FOR_CI = 6


@dataclass(frozen=True)
class ProtocolSettings:
    """How long to warm up and when to stop repeating; recorded with every measurement."""

    min_warmup: int = 3
    max_warmup: int = 50
    warmup_window: int = 5
    warmup_rel_tol: float = 0.05
    min_runs: int = 10
    max_runs: int = 1000
    target_rel_ci: float = 0.01
    max_time_s: float = 10.0
    check_every: int = 5
    confidence: float = 0.95
    # The quantile whose CI the stopping rule tracks: the lower tail the primary (the minimum) belongs to.
    stop_quantile: float = STOP_QUANTILE
    # Flagged unstable when the tracked quantile's CI half-width, or the robust spread of its
    # per-visit values (1.4826 MAD / median), exceeds this fraction of the estimate.
    unstable_rel: float = 0.10
    # Interleaving (several models measured together, see run_interleaved): each model is
    # visited at least ``rounds`` and at most ``max_rounds`` times, in alternating order; a
    # revisit warms up with ``revisit_warmup`` calls (the first visit adaptively) and times
    # ``visit_runs`` runs and at least ``round_min_s``; after each visit from ``rounds`` on,
    # the stopping rule applies to the pooled samples.
    rounds: int = 1
    max_rounds: int = 10
    visit_runs: int = 20
    revisit_warmup: int = 2
    round_min_s: float = 0.02

    def validate(self) -> None:
        """Raise ConfigError naming every bad value (given vs expected)."""
        problems: list[str] = []

        def need(ok: bool, message: str) -> None:
            if not ok:
                problems.append(message)

        for name in ("min_warmup", "max_warmup", "warmup_window", "min_runs", "max_runs", "check_every", "rounds",
                     "max_rounds", "visit_runs", "revisit_warmup"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                problems.append(f"{name} must be an integer, got {value!r}")
        for name in ("warmup_rel_tol", "target_rel_ci", "max_time_s", "confidence", "unstable_rel", "round_min_s",
                     "stop_quantile"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
                problems.append(f"{name} must be a number, got {value!r}")
        if problems:
            raise ConfigError("invalid protocol settings: " + "; ".join(problems))

        need(self.min_warmup >= 0, f"min_warmup must be >= 0, got {self.min_warmup}")
        need(
            self.max_warmup >= self.min_warmup,
            f"max_warmup must be >= min_warmup ({self.min_warmup}), got {self.max_warmup}",
        )
        need(self.warmup_window >= 1, f"warmup_window must be >= 1, got {self.warmup_window}")
        need(self.warmup_rel_tol > 0, f"warmup_rel_tol must be > 0, got {self.warmup_rel_tol}")
        need(self.min_runs >= 1, f"min_runs must be >= 1, got {self.min_runs}")
        need(
            self.max_runs >= self.min_runs,
            f"max_runs must be >= min_runs ({self.min_runs}), got {self.max_runs}",
        )
        need(self.target_rel_ci > 0, f"target_rel_ci must be > 0, got {self.target_rel_ci}")
        need(self.max_time_s > 0, f"max_time_s must be > 0, got {self.max_time_s}")
        need(self.check_every >= 1, f"check_every must be >= 1, got {self.check_every}")
        need(0 < self.confidence < 1, f"confidence must be in (0, 1), got {self.confidence}")
        need(self.unstable_rel > 0, f"unstable_rel must be > 0, got {self.unstable_rel}")
        need(0 < self.stop_quantile < 1, f"stop_quantile must be in (0, 1), got {self.stop_quantile}")
        need(self.rounds >= 1, f"rounds must be >= 1, got {self.rounds}")
        need(self.max_rounds >= self.rounds, f"max_rounds must be >= rounds ({self.rounds}), got {self.max_rounds}")
        need(self.visit_runs >= 1, f"visit_runs must be >= 1, got {self.visit_runs}")
        need(self.revisit_warmup >= 0, f"revisit_warmup must be >= 0, got {self.revisit_warmup}")
        need(self.round_min_s >= 0, f"round_min_s must be >= 0, got {self.round_min_s}")
        if problems:
            raise ConfigError("invalid protocol settings: " + "; ".join(problems))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TimingResult:
    """What one protocol run produced; warm-up timings are not part of ``samples_ms``."""

    samples_ms: tuple[float, ...]
    stats: LatencyStats
    n_warmup: int
    warmup_settled: bool
    stop_reason: str  # "ci_target" | "max_runs" | "max_time" | "max_rounds" | "interrupted"
    unstable: bool
    warnings: tuple[str, ...] = field(default_factory=tuple)
    visit_sizes: tuple[int, ...] = ()  # samples per visit, in order (interleaved measurements)


class MeasurementInterrupted(KeyboardInterrupt):
    """Ctrl-C (or a signal raised as one) during a measurement, carrying what was completed.

    ``partial`` has one entry per model measured together: the result kept for
    it, or None where it had not completed its minimum (see
    :func:`run_interleaved`). The protocol fills it with ``TimingResult``; the
    device, worker and runner pass it on with ``Measurement`` in their place, so
    the profiler can store completed work. A ``KeyboardInterrupt``, so code that
    only knows Ctrl-C still stops.
    """

    def __init__(self, partial: Sequence[Any | None] = ()) -> None:
        super().__init__(f"interrupted: {sum(p is not None for p in partial)} of {len(partial)} results kept")
        self.partial = list(partial)


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def _as_array(samples_ms: Sequence[float]) -> np.ndarray:
    x = np.asarray(samples_ms, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"expected a 1-D sequence of latencies, got shape {x.shape}")
    if x.size and not np.all(np.isfinite(x)):
        raise ValueError("latency samples must be finite numbers (got NaN or inf)")
    return x


def _ci_bounds_sorted(x: np.ndarray, z: float, q: float = 0.5) -> tuple[float, float]:
    """Order-statistic CI of the ``q`` quantile: ranks ``n q -+ z sqrt(n q (1 - q))`` (Binomial(n, q) count below it)."""
    n = x.size
    if n < MIN_SAMPLES_FOR_CI:
        return (-math.inf, math.inf)
    half_spread = z * math.sqrt(n * q * (1 - q))
    j = math.floor(n * q - half_spread)  # 1-based ranks
    k = math.ceil(n * q + half_spread)
    if q != 0.5 and (j < 1 or k > n):
        # Too few samples to bracket a tail quantile: clamping the rank to the extreme would
        # claim a tight interval from two or three samples (the median keeps its old rule).
        return (-math.inf, math.inf)
    return (float(x[max(1, j) - 1]), float(x[min(n, k) - 1]))


def _ci_from_sorted(x: np.ndarray, z: float, q: float = 0.5) -> float:
    lo, hi = _ci_bounds_sorted(x, z, q)
    return (hi - lo) / 2


def quantile_ci_half_width(samples_ms: Sequence[float], q: float, confidence: float = 0.95) -> float:
    """Half the width of the distribution-free CI of the ``q`` quantile; ``inf`` below 6 samples."""
    return _ci_from_sorted(np.sort(_as_array(samples_ms)), _z(confidence), q)


def median_ci(samples_ms: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free CI ``(x_(j), x_(k))`` of the median, from order statistics.

    The ranks bracketing the median come from the normal approximation of the
    Binomial(n, 1/2) count of samples below it, so no distribution is assumed
    (latencies are skewed; a t-interval on the mean would be wrong).
    ``(-inf, inf)`` below 6 samples, where no useful interval exists.
    """
    return _ci_bounds_sorted(np.sort(_as_array(samples_ms)), _z(confidence))


def median_ci_half_width(samples_ms: Sequence[float], confidence: float = 0.95) -> float:
    """Half the width of :func:`median_ci`; ``inf`` below 6 samples."""
    return _ci_from_sorted(np.sort(_as_array(samples_ms)), _z(confidence))


def summarize(samples_ms: Sequence[float], confidence: float = 0.95) -> LatencyStats:
    """Median, spread and CI of a non-empty latency sample (std is 0.0 for one sample)."""
    z = _z(confidence)
    x = np.sort(_as_array(samples_ms))
    if x.size == 0:
        raise ValueError("cannot summarise an empty latency sample")
    mean = float(np.mean(x))
    std = float(np.std(x, ddof=1)) if x.size > 1 else 0.0
    if mean > 0:
        cv = std / mean
    else:
        cv = 0.0 if std == 0 else math.inf
    return LatencyStats(
        median_ms=float(np.median(x)),
        mean_ms=mean,
        p90_ms=float(np.percentile(x, 90)),
        std_ms=std,
        min_ms=float(x[0]),
        max_ms=float(x[-1]),
        ci_half_width_ms=_ci_from_sorted(x, z),
        cv=cv,
        n_runs=int(x.size),
    )


def _settled(times_ms: list[float], window: int, rel_tol: float) -> bool:
    med_last = float(np.median(times_ms[-window:]))
    med_prev = float(np.median(times_ms[-2 * window : -window]))
    return abs(med_last - med_prev) <= rel_tol * med_prev


def _rel_ci(samples_ms: Sequence[float], settings: ProtocolSettings, z: float) -> float:
    """CI half-width of the tracked quantile (``stop_quantile``) relative to it."""
    x = np.sort(np.asarray(samples_ms, dtype=float))
    estimate = quantile(x, settings.stop_quantile)
    return _ci_from_sorted(x, z, settings.stop_quantile) / estimate if estimate > 0 else math.inf


def _ci_target_met(samples_ms: list[float], settings: ProtocolSettings, z: float) -> bool:
    return _rel_ci(samples_ms, settings, z) <= settings.target_rel_ci


class VisitObserver(Protocol):
    """Told when a model's timed loop of one visit starts and ends (warm-up excluded).

    An energy meter (``hwprof.meters.EnergyRecorder``) reads its counters
    there, so energy covers exactly the repetitions that were timed. A visit
    cut short (an error, Ctrl-C) gets no ``visit_ended``.
    """

    def visit_started(self, model: int) -> None: ...

    def visit_ended(self, model: int, n_runs: int) -> None: ...


def run_protocol(
    fn: Callable[[], object],
    settings: ProtocolSettings = ProtocolSettings(),
    clock: Callable[[], float] = time.perf_counter,
    observer: VisitObserver | None = None,
) -> TimingResult:
    """Warm up, then time ``fn()`` until the tracked quantile's CI is tight enough or a budget runs out.

    Warm-up ends once the median of the last ``warmup_window`` calls is within
    ``warmup_rel_tol`` of the window before (at least ``min_warmup`` calls, at
    most ``max_warmup``). Measured runs stop when the CI half-width of the
    ``stop_quantile`` quantile is at most ``target_rel_ci`` times it (checked
    every ``check_every`` runs from ``min_runs`` on), at ``max_runs``, or once
    ``max_time_s`` of measured-phase time has passed on ``clock``. Exceptions
    raised by ``fn`` propagate: the adapter knows how to describe them.
    With ``settings.rounds > 1`` the measured phase is split into ``rounds`` to
    ``max_rounds`` visits, as in :func:`run_interleaved`.
    """
    return run_interleaved([fn], settings, clock, observer)[0]


@dataclass
class _Track:
    """Protocol state of one model across the visits of an interleaved measurement."""

    fn: Callable[[], object]
    samples: list[float] = field(default_factory=list)
    visit_sizes: list[int] = field(default_factory=list)  # samples taken in each visit, in order
    n_warmup: int = 0
    unsettled_visits: int = 0  # adaptive warm-ups that hit max_warmup without settling (warned)
    settled_visits: int = 0
    adaptive_visits: int = 0
    measured_s: float = 0.0
    visits: int = 0  # visits begun (counted once warmed up)
    visits_done: int = 0  # visits finished (an interrupt may cut the last one short)
    index: int = 0  # position among the models measured together (what a VisitObserver is told)
    stop_reason: str | None = None

    def kept_on_interrupt(self, settings: ProtocolSettings) -> bool:
        """Finished, or through all ``rounds`` visits with at least ``min_runs`` samples.

        Such a model's samples already span the whole group's time as the
        interleaving intends; only the CI target may be unmet.
        """
        if self.stop_reason is not None:
            return True
        return self.visits_done >= settings.rounds and len(self.samples) >= settings.min_runs


def _warm_up(track: _Track, settings: ProtocolSettings, timed_call_ms: Callable[[Callable[[], object]], float],
             adaptive: bool) -> None:
    """Adaptive warm-up (until timings settle) on a first visit; ``revisit_warmup`` calls on a revisit."""
    if not adaptive:
        for _ in range(settings.revisit_warmup):
            timed_call_ms(track.fn)
        track.n_warmup += settings.revisit_warmup
        return
    warm_ms: list[float] = []
    window = settings.warmup_window
    settled = False
    while len(warm_ms) < settings.max_warmup:
        warm_ms.append(timed_call_ms(track.fn))
        if len(warm_ms) >= max(settings.min_warmup, 2 * window) and _settled(warm_ms, window, settings.warmup_rel_tol):
            settled = True
            break
    track.n_warmup += len(warm_ms)
    track.adaptive_visits += 1
    track.settled_visits += settled
    # A fixed warm-up (min == max) is the user's choice, not a failure to settle.
    if not settled and settings.max_warmup > settings.min_warmup:
        track.unsettled_visits += 1


def _visit(track: _Track, settings: ProtocolSettings, z: float, clock: Callable[[], float],
           timed_call_ms: Callable[[Callable[[], object]], float], observer: VisitObserver | None = None) -> None:
    """Warm up, then time one visit; decide after it whether the model is done.

    With ``rounds == 1`` the visit is the whole measurement (pyperf-style: one
    block, the CI checked every ``check_every`` runs from ``min_runs`` on).
    Interleaved, a visit times ``visit_runs`` runs (and at least
    ``round_min_s``); from visit ``rounds`` on, the model stops once the
    tracked quantile's CI meets the target, and at ``max_rounds`` visits: the
    budget goes to more visits spread over time, not to long visits.
    """
    single = settings.rounds == 1
    _warm_up(track, settings, timed_call_ms, adaptive=single or track.visits == 0)
    track.visits += 1
    # A visit may run past visit_runs until round_min_s has passed, but never past its share of
    # the caps: a fast model must not spend max_runs (or max_time_s) in one visit and miss rounds.
    run_slice = max(settings.visit_runs, settings.max_runs // settings.max_rounds)
    time_slice = min(settings.round_min_s, settings.max_time_s / settings.max_rounds)
    if observer is not None:
        observer.visit_started(track.index)
    _timed_loop(track, settings, z, clock, timed_call_ms, single, run_slice, time_slice)
    if observer is not None:
        observer.visit_ended(track.index, track.visit_sizes[-1])
    if track.stop_reason is None and track.visits >= settings.rounds and len(track.samples) >= settings.min_runs:
        if _ci_target_met(track.samples, settings, z):
            track.stop_reason = STOP_CI_TARGET
        elif track.visits >= settings.max_rounds:
            track.stop_reason = STOP_MAX_ROUNDS


def _timed_loop(track: _Track, settings: ProtocolSettings, z: float, clock: Callable[[], float],
                timed_call_ms: Callable[[Callable[[], object]], float], single: bool, run_slice: int,
                time_slice: float) -> None:
    """The timed runs of one visit; sets ``track.stop_reason`` when a stopping rule ends the model."""
    t_visit = clock()
    n_visit = 0
    track.visit_sizes.append(0)
    while True:
        t0 = clock()
        track.samples.append(timed_call_ms(track.fn))
        track.measured_s += clock() - t0
        n_visit += 1
        track.visit_sizes[-1] = n_visit
        n = len(track.samples)
        if single and n >= settings.min_runs and (n % settings.check_every == 0 or n == settings.max_runs):
            if _ci_target_met(track.samples, settings, z):
                track.stop_reason = STOP_CI_TARGET
                return
        if n >= settings.max_runs:
            track.stop_reason = STOP_MAX_RUNS
            return
        if track.measured_s >= settings.max_time_s:
            track.stop_reason = STOP_MAX_TIME
            return
        if not single and n_visit >= settings.visit_runs and (clock() - t_visit >= time_slice or n_visit >= run_slice):
            return


def run_interleaved(
    fns: Sequence[Callable[[], object]],
    settings: ProtocolSettings = ProtocolSettings(),
    clock: Callable[[], float] = time.perf_counter,
    observer: VisitObserver | None = None,
) -> list[TimingResult]:
    """Measure several models together, interleaving them in rounds; one TimingResult per model.

    A slow change of the machine (frequency, a neighbour's load, temperature)
    during a long profiling run biases models measured in one block each: a
    model timed in a bad minute stays slow. Visiting every model at least
    ``rounds`` times, in alternating order, spreads each model's samples over
    the whole span, so such changes hit all of them alike, and the visits of a
    round can be paired with the calibration models' (hwprof.estimators). A
    revisit warms up briefly (other models evicted the caches) and times
    ``visit_runs`` runs; from ``rounds`` visits on, a model stops once the CI
    of the tracked quantile meets ``target_rel_ci``, else at ``max_rounds``.
    ``max_time_s`` and ``max_runs`` cap each model's pooled measured phase.

    On Ctrl-C (a ``KeyboardInterrupt`` of any kind) it raises
    :class:`MeasurementInterrupted` with a result for every model that had
    finished or had completed its ``rounds`` visits and ``min_runs`` samples,
    each with ``stop_reason`` ``"interrupted"`` (the whole group was cut short,
    so even a finished model shared it with unfinished ones), None for the
    rest; a long group thus keeps its work. Uninterrupted, nothing changes.

    ``observer`` (optional) is told when each visit's timed loop starts and
    ends, with the model's index in ``fns`` (an energy meter; see
    :class:`VisitObserver`).
    """
    settings.validate()
    z = _z(settings.confidence)

    def timed_call_ms(fn: Callable[[], object]) -> float:
        t0 = clock()
        fn()
        return (clock() - t0) * 1000.0

    tracks = [_Track(fn, index=i) for i, fn in enumerate(fns)]
    round_no = 0
    try:
        while True:
            pending = [t for t in tracks if t.stop_reason is None]
            if not pending:
                break
            for track in pending if round_no % 2 == 0 else reversed(pending):
                _visit(track, settings, z, clock, timed_call_ms, observer)
                track.visits_done += 1
            round_no += 1
    except KeyboardInterrupt as exc:
        raise MeasurementInterrupted([_interrupted_result(t, settings) for t in tracks]) from exc
    return [_result(t, settings) for t in tracks]


def _interrupted_result(track: _Track, settings: ProtocolSettings) -> TimingResult | None:
    if not track.kept_on_interrupt(settings):
        return None
    track.stop_reason = STOP_INTERRUPTED
    return _result(track, settings)


def _result(track: _Track, settings: ProtocolSettings) -> TimingResult:
    warnings: list[str] = []
    if track.unsettled_visits:
        hint = ""
        if settings.max_warmup < 2 * settings.warmup_window:
            hint = f" (the settle test needs 2 x warmup_window = {2 * settings.warmup_window} calls)"
        where = "" if track.adaptive_visits == 1 else f" in {track.unsettled_visits} of {track.adaptive_visits} visits"
        warnings.append(f"warm-up did not settle within {settings.max_warmup} calls{where}{hint}")
    stats = summarize(track.samples, settings.confidence)
    stop_reason = track.stop_reason or STOP_MAX_RUNS
    if stats.n_runs < settings.min_runs:
        warnings.append(
            f"only {stats.n_runs} runs (< min_runs {settings.min_runs}) fit in max_time_s {settings.max_time_s:g} s"
        )
    rel_ci, spread = instability(track.samples, track.visit_sizes, settings)
    tracked = f"the {settings.stop_quantile:g} quantile"
    if stop_reason != STOP_CI_TARGET:
        warnings.append(
            f"CI target not met: half-width {rel_ci:.2%} of {tracked} > {settings.target_rel_ci:.2%} "
            f"after {stats.n_runs} runs (stopped at {stop_reason})"
        )
    # A CI too wide to compute (too few samples for the quantile) is imprecision, said above, not instability.
    unstable = (math.isfinite(rel_ci) and rel_ci > settings.unstable_rel) or spread > settings.unstable_rel
    if unstable:
        warnings.append(f"unstable: {describe_instability(rel_ci, spread, settings)}")
    for message in warnings:
        logger.debug("protocol: %s", message)
    return TimingResult(
        samples_ms=tuple(track.samples),
        stats=stats,
        n_warmup=track.n_warmup,
        warmup_settled=track.adaptive_visits > 0 and track.settled_visits == track.adaptive_visits,
        stop_reason=stop_reason,
        unstable=unstable,
        warnings=tuple(warnings),
        visit_sizes=tuple(s for s in track.visit_sizes if s > 0),
    )


def instability(samples_ms: Sequence[float], visit_sizes: Sequence[int], settings: ProtocolSettings) -> tuple[float, float]:
    """(relative CI half-width of the tracked quantile, robust spread of its per-visit values): what ``unstable`` tests."""
    return _rel_ci(samples_ms, settings, _z(settings.confidence)), rounds_spread(samples_ms, visit_sizes, settings.stop_quantile)


def describe_instability(rel_ci: float, spread: float, settings: ProtocolSettings) -> str:
    return (
        f"CI half-width {rel_ci:.1%} of the {settings.stop_quantile:g} quantile, spread between visits {spread:.1%} "
        f"(flagged above {settings.unstable_rel:.0%})"
    )


def instability_note(samples_ms: Sequence[float], visit_sizes: Sequence[int], settings: ProtocolSettings) -> str:
    """Why a stored measurement was flagged unstable, from its samples (the protocol's own wording)."""
    return describe_instability(*instability(samples_ms, visit_sizes, settings), settings)


def rounds_spread(samples_ms: Sequence[float], visit_sizes: Sequence[int], q: float) -> float:
    """Robust spread (1.4826 MAD / median) of the per-visit ``q`` quantiles; 0 with fewer than 3 visits.

    Rounds that disagree mean the machine changed under the measurement,
    which pooling hides; rare preemption spikes inside a visit do not move it.
    """
    sizes = [s for s in visit_sizes if s > 0]
    if len(sizes) < 3 or sum(sizes) != len(samples_ms):
        return 0.0
    values = np.asarray(visit_values(samples_ms, sizes, q))
    med = float(np.median(values))
    return float(1.4826 * np.median(np.abs(values - med)) / med) if med > 0 else math.inf


@dataclass(frozen=True)
class DriftCheck:
    n_done: int
    baseline_ms: float
    median_ms: float
    drift_rel: float
    exceeded: bool


class DriftMonitor:
    """Re-measures a fixed reference model periodically during a long profiling run.

    Thermal throttling, a noisy neighbour or a governor change shift every
    later measurement; timing the same reference again exposes that, so the
    caller can pause, re-baseline or mark the affected rows.
    """

    def __init__(
        self, measure_reference: Callable[[], float], every: int = 50, threshold_rel: float = 0.05
    ) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ConfigError(f"drift check interval 'every' must be an integer >= 1, got {every!r}")
        if not threshold_rel > 0:
            raise ConfigError(f"drift threshold_rel must be > 0, got {threshold_rel!r}")
        self.measure_reference = measure_reference
        self.every = every
        self.threshold_rel = threshold_rel
        self.baseline_ms: float | None = None
        self.checks: list[DriftCheck] = []
        self._last_n = 0

    def _measure(self) -> float:
        value = float(self.measure_reference())
        if not (math.isfinite(value) and value > 0):
            raise DataError(f"reference latency must be a positive finite number of ms, got {value!r}")
        return value

    def start(self) -> float:
        """Measure (or re-measure) the baseline; later checks compare against it."""
        self.baseline_ms = self._measure()
        self._last_n = 0
        return self.baseline_ms

    def due(self, n_done: int) -> bool:
        """True once ``every`` items have been profiled since the start or the last check."""
        return self.baseline_ms is not None and n_done - self._last_n >= self.every

    def check(self, n_done: int) -> DriftCheck:
        if self.baseline_ms is None:
            raise NotFittedError("DriftMonitor.check() called before start(); call start() to take the baseline")
        now_ms = self._measure()
        drift = (now_ms - self.baseline_ms) / self.baseline_ms
        result = DriftCheck(
            n_done=n_done,
            baseline_ms=self.baseline_ms,
            median_ms=now_ms,
            drift_rel=drift,
            exceeded=abs(drift) > self.threshold_rel,
        )
        self.checks.append(result)
        self._last_n = n_done
        if result.exceeded:
            logger.warning(
                "drift: reference %.4g ms vs baseline %.4g ms (%+.1f%%) after %d items",
                now_ms,
                self.baseline_ms,
                drift * 100,
                n_done,
            )
        return result
