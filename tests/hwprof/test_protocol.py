"""The shared measurement protocol, driven by a fake clock so every stopping rule is deterministic."""

from __future__ import annotations

import itertools
import json
import math
from typing import Iterable, Iterator

import numpy as np
import pytest

from hwprof.errors import ConfigError, DataError, NotFittedError
from hwprof.protocol import (
    DriftMonitor,
    ProtocolSettings,
    median_ci,
    median_ci_half_width,
    run_protocol,
    summarize,
)


class FakeTimer:
    """A clock that only moves when ``fn`` runs, by the next prescribed duration (ms)."""

    def __init__(self, durations_ms: Iterable[float]) -> None:
        self.now = 0.0
        self.calls = 0
        self._durations: Iterator[float] = iter(durations_ms)

    def clock(self) -> float:
        return self.now

    def fn(self) -> None:
        self.calls += 1
        self.now += next(self._durations) / 1000.0


def lognormal_stream(sigma: float, seed: int, median_ms: float = 2.0) -> Iterator[float]:
    rng = np.random.default_rng(seed)
    while True:
        yield from (median_ms * rng.lognormal(0.0, sigma, size=256)).tolist()


def run(durations: Iterable[float], **settings: object):
    timer = FakeTimer(durations)
    result = run_protocol(timer.fn, ProtocolSettings(**settings), clock=timer.clock)
    return result, timer


# -- stopping rule -----------------------------------------------------------------


@pytest.mark.parametrize(("min_runs", "check_every", "expected"), [(10, 5, 10), (12, 5, 15), (7, 3, 9)])
def test_constant_stream_stops_at_min_runs_rounded_up_to_check_every(min_runs, check_every, expected):
    result, timer = run(itertools.repeat(4.0), min_runs=min_runs, check_every=check_every, stop_quantile=0.5)
    assert result.stop_reason == "ci_target"
    assert len(result.samples_ms) == expected == result.stats.n_runs
    assert result.stats.ci_half_width_ms == 0.0
    assert result.stats.median_ms == pytest.approx(4.0)
    assert not result.unstable and result.warnings == ()
    assert timer.calls == result.n_warmup + expected


def test_a_tail_quantile_is_not_called_precise_before_its_ci_can_bracket_it():
    """p10 of 10 samples: the CI ranks would clamp to the minimum; the rule waits for enough samples."""
    from hwprof.protocol import quantile_ci_half_width

    assert quantile_ci_half_width([4.0] * 50, 0.1) == math.inf  # floor(50 * 0.1 - 1.96 * sqrt(4.5)) < 1
    assert quantile_ci_half_width([4.0] * 55, 0.1) == 0.0
    result, _ = run(itertools.repeat(4.0), min_runs=10, check_every=5)  # the default tracks p10
    assert result.stop_reason == "ci_target" and result.stats.n_runs == 55


def test_noisier_stream_needs_more_runs_and_meets_the_ci_target():
    quiet, _ = run(lognormal_stream(0.005, seed=1))
    noisy, _ = run(lognormal_stream(0.05, seed=1))
    assert quiet.stop_reason == noisy.stop_reason == "ci_target"
    assert noisy.stats.n_runs > quiet.stats.n_runs
    assert noisy.stats.n_runs >= 50  # sigma 0.05 cannot reach 1% in a handful of runs
    for r in (quiet, noisy):
        assert r.stats.ci_half_width_ms <= 0.01 * r.stats.median_ms
        assert r.stats.ci_half_width_ms == pytest.approx(median_ci_half_width(r.samples_ms))
        assert not r.unstable


def test_very_noisy_stream_hits_max_runs_and_is_flagged_unstable():
    result, _ = run(lognormal_stream(0.5, seed=2), max_runs=300, max_time_s=1e9)
    assert result.stop_reason == "max_runs"
    assert result.stats.n_runs == 300
    assert result.unstable
    assert any(w.startswith("unstable: CI half-width ") and w.endswith("(flagged above 10%)") for w in result.warnings)
    assert any("CI target not met" in w for w in result.warnings)


def test_very_noisy_stream_hits_max_time_on_the_fake_clock():
    # ~2 ms per call: 0.2 s of measured time is about 100 calls, long before max_runs.
    result, timer = run(lognormal_stream(0.5, seed=3), max_time_s=0.2)
    assert result.stop_reason == "max_time"
    assert result.unstable
    measured_s = sum(result.samples_ms) / 1000.0
    assert measured_s >= 0.2
    assert measured_s - result.samples_ms[-1] / 1000.0 < 0.2  # stopped on the first call past the cap
    assert result.stats.n_runs < 1000


def test_max_time_respected_even_when_each_call_is_slow():
    # 3 s per call, 10 s cap: four calls (12 s) and out, fewer than min_runs, with a warning.
    result, _ = run(itertools.repeat(3000.0), min_warmup=0, max_warmup=0, max_time_s=10.0)
    assert result.stop_reason == "max_time"
    assert result.stats.n_runs == 4
    assert result.n_warmup == 0 and result.warmup_settled is False
    assert any("< min_runs 10" in w for w in result.warnings)
    assert not any("warm-up" in w for w in result.warnings)  # fixed (zero) warm-up is not a failure


# -- warm-up -----------------------------------------------------------------------


def test_warmup_ends_after_slow_calls_and_excludes_them_from_samples():
    # 20 cold calls easing from 10x to 2x the steady 1 ms (caches, allocator, lazy init).
    slow = [10.0 * 0.2 ** (i / 19) for i in range(20)]
    steady = lognormal_stream(0.002, seed=4, median_ms=1.0)
    result, _ = run(itertools.chain(slow, steady))
    assert result.warmup_settled
    assert 20 <= result.n_warmup <= 20 + 2 * 5
    assert max(result.samples_ms) < 2.0  # no 10 ms warm-up call leaked into the measurement
    assert result.stats.median_ms == pytest.approx(1.0, rel=0.01)
    assert not any("warm-up" in w for w in result.warnings)


def test_a_flat_slow_plateau_looks_settled_so_min_warmup_must_cover_it():
    # No window test can tell a flat plateau from steady state; min_warmup is the knob.
    stream = [10.0] * 20 + [1.0] * 1000
    fooled, _ = run(stream, min_warmup=3)
    assert fooled.n_warmup == 10 and fooled.samples_ms[0] == pytest.approx(10.0)
    covered, _ = run(stream, min_warmup=20)
    assert covered.n_warmup == 20 and max(covered.samples_ms) == pytest.approx(1.0)


def test_steady_stream_warms_up_for_two_windows_only():
    result, _ = run(itertools.repeat(1.0), min_warmup=3, warmup_window=4)
    assert result.warmup_settled and result.n_warmup == 8


def test_never_settling_warmup_stops_at_max_warmup_with_a_warning():
    rising = (1.0 * 1.1**i for i in itertools.count())
    result, _ = run(rising, max_warmup=30, max_runs=20, min_runs=10)
    assert result.n_warmup == 30
    assert result.warmup_settled is False
    assert "warm-up did not settle within 30 calls" in result.warnings
    # The measured phase starts right after the warm-up calls.
    assert result.samples_ms[0] == pytest.approx(1.1**30)


def test_fixed_warmup_shorter_than_two_windows_is_not_a_warning():
    result, _ = run(itertools.repeat(1.0), min_warmup=2, max_warmup=2)
    assert result.n_warmup == 2 and not result.warmup_settled
    assert result.warnings == ()


def test_fn_exceptions_propagate():
    def boom() -> None:
        raise RuntimeError("runtime failed")

    with pytest.raises(RuntimeError, match="runtime failed"):
        run_protocol(boom)


def test_real_clock_smoke():
    result = run_protocol(lambda: sum(range(200)), ProtocolSettings(max_runs=20, max_time_s=1.0))
    assert 1 <= result.stats.n_runs <= 20
    assert all(s > 0 for s in result.samples_ms)


# -- statistics --------------------------------------------------------------------


def test_median_ci_hand_computed():
    # n=20, z=1.96: z*sqrt(20)/2 = 4.38 -> ranks j=floor(5.62)=5, k=ceil(14.38)=15.
    x = [float(i * i) for i in range(20, 0, -1)]
    assert median_ci(x) == (25.0, 225.0)
    assert median_ci_half_width(x) == 100.0
    # confidence 0.5: z=0.674 -> 0.674*sqrt(20)/2 = 1.51 -> ranks 8 and 12.
    assert median_ci_half_width(x, confidence=0.5) == (144.0 - 64.0) / 2
    # n=10: ranks floor(5-3.10)=1 and ceil(5+3.10)=9.
    y = [3, 1, 4, 1.5, 9, 2.6, 5.3, 5.8, 9.7, 9.3]
    assert median_ci_half_width(y) == pytest.approx((9.3 - 1.0) / 2)
    assert median_ci_half_width([1.0, 2.0, 3.0, 4.0, 5.0]) == math.inf


def test_median_ci_coverage_is_about_95_percent():
    rng = np.random.default_rng(0)
    true_median = math.log(2.0)  # of Exponential(1): skewed, like latencies
    hits_interval = hits_symmetric = 0
    for _ in range(500):
        x = rng.exponential(1.0, size=51)
        lo, hi = median_ci(x)
        hits_interval += lo <= true_median <= hi
        hw = median_ci_half_width(x)
        assert hw == pytest.approx((hi - lo) / 2)
        hits_symmetric += abs(np.median(x) - true_median) <= hw
    assert 0.90 <= hits_interval / 500 <= 0.99
    assert 0.90 <= hits_symmetric / 500 <= 0.99


def test_summarize_matches_numpy():
    x = np.random.default_rng(5).lognormal(1.0, 0.3, size=37)
    s = summarize(x.tolist())
    assert s.median_ms == pytest.approx(np.median(x))
    assert s.mean_ms == pytest.approx(np.mean(x))
    assert s.p90_ms == pytest.approx(np.percentile(x, 90))
    assert s.std_ms == pytest.approx(np.std(x, ddof=1))
    assert (s.min_ms, s.max_ms) == (pytest.approx(x.min()), pytest.approx(x.max()))
    assert s.cv == pytest.approx(np.std(x, ddof=1) / np.mean(x))
    assert s.ci_half_width_ms == pytest.approx(median_ci_half_width(x))
    assert s.n_runs == 37


def test_summarize_edge_cases():
    with pytest.raises(ValueError, match="empty"):
        summarize([])
    with pytest.raises(ValueError, match="finite"):
        summarize([1.0, float("nan")])
    one = summarize([2.5])
    assert (one.median_ms, one.std_ms, one.cv, one.n_runs) == (2.5, 0.0, 0.0, 1)
    assert one.ci_half_width_ms == math.inf


# -- drift -------------------------------------------------------------------------


def scripted(values: list[float]):
    it = iter(values)
    return lambda: next(it)


def test_drift_monitor_flags_a_10_percent_shift_but_not_2_percent():
    mon = DriftMonitor(scripted([10.0, 10.2, 11.0]), every=50, threshold_rel=0.05)
    assert not mon.due(50)  # no baseline yet
    assert mon.start() == 10.0 and mon.baseline_ms == 10.0
    assert not mon.due(49) and mon.due(50)
    small = mon.check(50)
    assert small.drift_rel == pytest.approx(0.02) and not small.exceeded
    assert not mon.due(99) and mon.due(100)
    big = mon.check(100)
    assert big.drift_rel == pytest.approx(0.10) and big.exceeded
    assert (big.baseline_ms, big.median_ms, big.n_done) == (10.0, 11.0, 100)
    assert mon.checks == [small, big]


def test_drift_monitor_negative_drift_and_errors():
    mon = DriftMonitor(scripted([10.0, 9.0, 0.0]), every=1)
    with pytest.raises(NotFittedError, match="start"):
        mon.check(1)
    mon.start()
    faster = mon.check(1)
    assert faster.drift_rel == pytest.approx(-0.10) and faster.exceeded
    with pytest.raises(DataError, match="positive"):
        mon.check(2)
    with pytest.raises(ConfigError, match="every"):
        DriftMonitor(lambda: 1.0, every=0)
    with pytest.raises(ConfigError, match="threshold"):
        DriftMonitor(lambda: 1.0, threshold_rel=0.0)


# -- settings ----------------------------------------------------------------------


def test_default_settings_are_valid_and_json_serialisable():
    s = ProtocolSettings()
    s.validate()
    d = s.to_json()
    assert json.loads(json.dumps(d)) == d
    assert d["target_rel_ci"] == 0.01 and d["min_runs"] == 10 and d["rounds"] == 1 and len(d) == 17


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_warmup": -1}, "min_warmup must be >= 0, got -1"),
        ({"min_warmup": 10, "max_warmup": 5}, r"max_warmup must be >= min_warmup \(10\), got 5"),
        ({"warmup_window": 0}, "warmup_window must be >= 1"),
        ({"warmup_rel_tol": 0.0}, "warmup_rel_tol must be > 0"),
        ({"min_runs": 0}, "min_runs must be >= 1"),
        ({"min_runs": 20, "max_runs": 10}, r"max_runs must be >= min_runs \(20\), got 10"),
        ({"target_rel_ci": -0.01}, "target_rel_ci must be > 0"),
        ({"max_time_s": 0}, "max_time_s must be > 0"),
        ({"check_every": 0}, "check_every must be >= 1"),
        ({"confidence": 1.0}, r"confidence must be in \(0, 1\), got 1.0"),
        ({"confidence": 0}, r"confidence must be in \(0, 1\)"),
        ({"unstable_rel": 0}, "unstable_rel must be > 0"),
        ({"stop_quantile": 1.0}, r"stop_quantile must be in \(0, 1\)"),
        ({"rounds": 5, "max_rounds": 4}, r"max_rounds must be >= rounds \(5\), got 4"),
        ({"visit_runs": 0}, "visit_runs must be >= 1"),
        ({"min_runs": 2.5}, "min_runs must be an integer, got 2.5"),
        ({"max_time_s": "10"}, "max_time_s must be a number"),
    ],
)
def test_validate_rejects_bad_values(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ProtocolSettings(**kwargs).validate()


def test_run_protocol_validates_settings_before_calling_fn():
    timer = FakeTimer(itertools.repeat(1.0))
    with pytest.raises(ConfigError):
        run_protocol(timer.fn, ProtocolSettings(max_runs=0), clock=timer.clock)
    assert timer.calls == 0


# -- interleaving --------------------------------------------------------------------


class SharedMachine:
    """One fake clock for several models; the machine slows down by ``slowdown`` after ``switch_s``."""

    def __init__(self, base_ms: list[float], switch_s: float = math.inf, slowdown: float = 1.0) -> None:
        self.now = 0.0
        self.base_ms = base_ms
        self.switch_s = switch_s
        self.slowdown = slowdown
        self.order: list[int] = []

    def clock(self) -> float:
        return self.now

    def fn(self, i: int):
        def call() -> None:
            if not self.order or self.order[-1] != i:
                self.order.append(i)
            factor = self.slowdown if self.now >= self.switch_s else 1.0
            self.now += self.base_ms[i] * factor / 1000.0

        return call


def test_interleaved_visits_every_model_each_round_in_alternating_order():
    from hwprof.protocol import run_interleaved

    m = SharedMachine([1.0, 2.0, 3.0])
    settings = ProtocolSettings(rounds=3, round_min_s=0.0, min_warmup=0, max_warmup=0)
    results = run_interleaved([m.fn(i) for i in range(3)], settings, clock=m.clock)
    # 0,1,2 then 2,1,0 then 0,1,2 (a model visited twice in a row shows once)
    assert m.order[:7] == [0, 1, 2, 1, 0, 1, 2]
    assert [r.stats.median_ms for r in results] == pytest.approx([1.0, 2.0, 3.0])
    assert all(r.stop_reason == "ci_target" and r.stats.n_runs >= 10 for r in results)


def test_interleaving_cancels_a_slowdown_that_blocks_attribute_to_one_model():
    from hwprof.protocol import run_interleaved

    # Two identical 2 ms models; the machine becomes 30% slower half-way through.
    settings = ProtocolSettings(min_warmup=0, max_warmup=0, min_runs=100, max_runs=100, check_every=100)
    block = SharedMachine([2.0, 2.0], switch_s=0.2, slowdown=1.3)
    blocks = [run_protocol(block.fn(i), settings, clock=block.clock) for i in range(2)]
    assert blocks[1].stats.median_ms / blocks[0].stats.median_ms == pytest.approx(1.3)

    inter = SharedMachine([2.0, 2.0], switch_s=0.2, slowdown=1.3)
    results = run_interleaved([inter.fn(i) for i in range(2)], replace_settings(settings, rounds=10, visit_runs=10, round_min_s=0.0), clock=inter.clock)
    ratio = results[1].stats.mean_ms / results[0].stats.mean_ms
    assert abs(ratio - 1) < 0.02


def replace_settings(settings: ProtocolSettings, **changes: object) -> ProtocolSettings:
    from dataclasses import replace

    return replace(settings, **changes)


def test_interleaved_time_cap_is_per_model_and_rounds_validated():
    from hwprof.protocol import run_interleaved

    m = SharedMachine([1000.0, 1.0])
    settings = ProtocolSettings(rounds=2, round_min_s=0.0, min_warmup=0, max_warmup=0, max_time_s=3.0)
    slow, fast = run_interleaved([m.fn(0), m.fn(1)], settings, clock=m.clock)
    assert slow.stop_reason == "max_time" and slow.stats.n_runs == 3
    assert fast.stop_reason == "ci_target"
    with pytest.raises(ConfigError, match="rounds"):
        ProtocolSettings(rounds=0).validate()
    with pytest.raises(ConfigError, match="round_min_s"):
        ProtocolSettings(round_min_s=-1).validate()


def test_fast_model_spends_only_its_share_of_the_caps_per_visit():
    """A 0.1 ms model must not use max_runs in its first long visits and so miss later rounds."""
    from hwprof.protocol import run_interleaved

    m = SharedMachine([5.0, 0.1, 5.0])  # the fast model in the middle: each of its visits shows in m.order
    settings = ProtocolSettings(rounds=10, round_min_s=0.5, min_warmup=0, max_warmup=0, max_runs=200, max_time_s=2.0)
    slow, fast, _ = run_interleaved([m.fn(0), m.fn(1), m.fn(2)], settings, clock=m.clock)
    assert m.order.count(1) >= 10  # every round, although 0.5 s per visit would have hit max_runs in the first
    assert fast.stats.n_runs <= 200
    # the slow models' visits are bounded by their share of max_time_s (0.2 s), not round_min_s (0.5 s)
    assert slow.stats.n_runs <= 2.0 / 0.005 and m.order.count(0) >= 5


def test_an_interrupt_keeps_the_models_that_completed_their_rounds():
    """Ctrl-C in the second round: the model already through both rounds is kept (stop reason
    'interrupted'), the one cut short and the one not yet revisited are not."""
    from hwprof.protocol import STOP_INTERRUPTED, MeasurementInterrupted, run_interleaved

    durations = itertools.cycle([2.0, 2.2, 2.9, 2.1])  # never tight enough for the CI target below
    clock = {"now": 0.0, "calls": 0}

    def fn():
        clock["calls"] += 1
        if clock["calls"] == 25:
            raise KeyboardInterrupt
        clock["now"] += next(durations) / 1000.0

    # fixed warm-up of 2; round 0 takes 3 samples per model (5 calls each: calls 1-15); round 1
    # runs backwards: C takes 2 + 3 (calls 16-20), B is interrupted at call 25, A never revisited
    settings = ProtocolSettings(min_warmup=2, max_warmup=2, min_runs=5, max_runs=1000, target_rel_ci=1e-9,
                                max_time_s=100.0, check_every=5, rounds=2, visit_runs=3, round_min_s=0.0)
    with pytest.raises(MeasurementInterrupted) as caught:
        run_interleaved([fn, fn, fn], settings, clock=lambda: clock["now"])
    a, b, c = caught.value.partial
    assert a is None and b is None
    assert c.stop_reason == STOP_INTERRUPTED and c.stats.n_runs == 6 and c.n_warmup == 4
    assert isinstance(caught.value, KeyboardInterrupt)  # code that only knows Ctrl-C still stops


def test_an_interrupt_before_any_model_completed_keeps_nothing():
    from hwprof.protocol import MeasurementInterrupted

    timer = FakeTimer(itertools.repeat(2.0))

    def fn():
        if timer.calls == 3:
            raise KeyboardInterrupt
        timer.fn()

    with pytest.raises(MeasurementInterrupted) as caught:
        run_protocol(fn, ProtocolSettings(), clock=timer.clock)
    assert caught.value.partial == [None]
