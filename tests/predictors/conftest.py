"""Small, seeded data sets for predictor tests: a synthetic additive latency law and bundled NB201 rows."""

from __future__ import annotations

import csv
import gzip

import numpy as np
import pytest


def additive_data(n: int = 200, d: int = 6, seed: int = 0, noise: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """0/1 features and latency = 1 ms + sum of per-feature costs (a chain of fixed-shape layers), times noise."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 2, size=(n, d)).astype(np.float64)
    cost = np.linspace(0.5, 3.0, d)
    y = 1.0 + X @ cost
    if noise:
        y = y * np.exp(rng.normal(0.0, noise, size=n))
    return X, y


def write_table(path, archs, columns: dict[str, np.ndarray], gz: bool = False) -> None:
    """A benchmark CSV: ``idx``, ``arch`` and one ``lat_<device>_ms`` column per entry of ``columns``."""
    opener = gzip.open if gz else open
    with opener(path, "wt", newline="") as f:
        w = csv.writer(f)
        w.writerow(["idx", "arch", *(f"lat_{d}_ms" for d in columns)])
        for i, a in enumerate(archs):
            w.writerow([i, a, *(repr(float(columns[d][i])) for d in columns)])


@pytest.fixture(scope="session")
def nb201_rows():
    """(architecture specs, {device: latency ms}) of 400 seeded rows of the bundled NAS-Bench-201 table."""
    from nas.tabular import load_nb201

    table = load_nb201()
    idx = np.random.default_rng(0).choice(len(table.archs), size=400, replace=False)
    archs = [table.archs[i] for i in idx]
    return archs, {dev: np.asarray(lat)[idx] for dev, lat in table.latency_ms.items()}
