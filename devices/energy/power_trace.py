"""Energy from a trace of power samples (tegrastats, an external meter's log): trapezoidal integration.

Both trace meters mark windows with wall-clock timestamps (``time.time()``,
the clock their samples carry) and integrate the piecewise-linear power
between the samples around a window. The uncertainty is the difference
between that and a zero-order hold of the same samples: the error of not
knowing the power between samples, which shrinks as samples get denser
relative to the window.
"""

from __future__ import annotations

import bisect
import time
from typing import Callable, Sequence

import numpy as np

from hwprof.meters import EnergyReading, MeterError

POLL_S = 0.05  # how often a window's end is re-checked while waiting for the trace to cover it


def integrate(times_s: Sequence[float], watts: Sequence[float], t0: float, t1: float) -> EnergyReading:
    """Energy (mJ) of the trace between ``t0`` and ``t1``; the samples must cover the window."""
    if t1 < t0:
        raise MeterError(f"window ends before it starts ({t0:.3f} .. {t1:.3f})")
    if not times_s or times_s[0] > t0 or times_s[-1] < t1:
        span = f"{times_s[0]:.3f} .. {times_s[-1]:.3f}" if times_s else "no samples"
        raise MeterError(f"the power trace ({span}) does not cover the window {t0:.3f} .. {t1:.3f}")
    t = np.asarray(times_s, dtype=float)
    p = np.asarray(watts, dtype=float)
    lo = bisect.bisect_right(times_s, t0)
    hi = bisect.bisect_left(times_s, t1)
    inner_t = t[lo:hi]
    knots_t = np.concatenate(([t0], inner_t, [t1]))
    knots_p = np.concatenate(([np.interp(t0, t, p)], p[lo:hi], [np.interp(t1, t, p)]))
    trapezoid_j = float(np.sum((knots_p[1:] + knots_p[:-1]) / 2 * np.diff(knots_t)))
    # zero-order hold: the power of the last sample at or before each point
    held = p[np.searchsorted(t, knots_t[:-1], side="right") - 1]
    hold_j = float(np.sum(held * np.diff(knots_t)))
    return EnergyReading(trapezoid_j * 1000.0, abs(trapezoid_j - hold_j) * 1000.0, t1 - t0)


def wait_until_covered(last_time: Callable[[], float | None], t1: float, wait_s: float, what: str) -> None:
    """Sleep in short steps until the trace has a sample at or after ``t1``; MeterError after ``wait_s``."""
    deadline = time.monotonic() + wait_s
    while True:
        last = last_time()
        if last is not None and last >= t1:
            return
        if time.monotonic() >= deadline:
            seen = "no sample yet" if last is None else f"last sample {t1 - last:.2f} s before it"
            raise MeterError(f"{what} has no power sample after the window's end within {wait_s:g} s ({seen})")
        time.sleep(POLL_S)
