"""Accuracy of latency predictions, as numbers in a frozen result object (never strings)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

import numpy as np

from hwprof.errors import DataError


@dataclass(frozen=True)
class LatencyMetrics:
    """Errors of predicted vs measured latency.

    ``mape`` and ``within_*`` are fractions (0.05 = 5%), relative to the
    measured value. Rank correlations are NaN when either side is constant.
    """

    rmse_ms: float
    mape: float
    within_5pct: float
    within_10pct: float
    spearman: float
    kendall_tau: float
    n: int

    def to_json(self) -> dict[str, Any]:
        """Plain dict; NaN becomes None so the JSON stays standard."""
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "LatencyMetrics":
        try:
            values = {f.name: data[f.name] for f in fields(cls)}
        except (KeyError, TypeError) as exc:
            raise DataError(f"malformed metrics {data!r}: missing field {exc}") from None
        out: dict[str, Any] = {}
        for name, v in values.items():
            if name == "n":
                out[name] = int(v)
            else:
                out[name] = float("nan") if v is None else float(v)
        return cls(**out)


def evaluate_predictions(y_true: Any, y_pred: Any) -> LatencyMetrics:
    """Compare predictions with measurements (both in ms, same order)."""
    from scipy import stats

    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if t.ndim != 1 or p.ndim != 1:
        raise DataError(f"expected 1-D latencies, got shapes {t.shape} and {p.shape}")
    if t.shape != p.shape:
        raise DataError(f"y_true has {t.size} values but y_pred has {p.size}; expected one prediction per measurement")
    if t.size < 2:
        raise DataError(f"need at least 2 measurements to evaluate, got {t.size}")
    if not (np.all(np.isfinite(t)) and np.all(t > 0)):
        raise DataError("measured latencies must be finite and positive")
    if not np.all(np.isfinite(p)):
        raise DataError("predicted latencies must be finite")
    rel = np.abs(p - t) / t
    if np.ptp(t) == 0 or np.ptp(p) == 0:
        rho = tau = float("nan")
    else:
        rho = float(stats.spearmanr(t, p)[0])
        tau = float(stats.kendalltau(t, p)[0])
    return LatencyMetrics(
        rmse_ms=float(np.sqrt(np.mean((p - t) ** 2))),
        mape=float(np.mean(rel)),
        within_5pct=float(np.mean(rel <= 0.05)),
        within_10pct=float(np.mean(rel <= 0.10)),
        spearman=rho,
        kendall_tau=tau,
        n=int(t.size),
    )
