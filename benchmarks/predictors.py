"""Benchmark of the latency predictors (issue 4): accuracy, few-shot transfer, speed, own measurements.

Parts (all on one CPU thread; run under ``nice -n 19``):

- ``accuracy``: per device column of nb201.csv.gz and fbnet.csv.gz, train on
  1,000 random networks (seed 0), test on the rest; +-5%, +-10%, RMSE, Spearman
  of gbdt, mlp, the FLOPs-only linear baseline and the one-hot plain-xgboost
  reference (xgboost's default trees on the one-hot encoding, log target);
- ``fewshot``: the HELP protocol on nb201 (validation devices titanx_1,
  titanx_32, titanx_256, gold_6240; the 17 other devices are the sources;
  K = 10 from networks 0-899; Spearman on 900-1899 without the top and bottom
  10% of latency; 5 seeds) for every method of ``predictors.transfer``;
- ``lodo``: leave-one-device-out over every device of both tables (each device
  in turn is the new device, the others the sources), K = 5/10/20 from
  networks 0-899 (random, HELP's draw, and suggested by farthest-point
  sampling, the default path), Spearman on 900-1899 without the top and
  bottom 10% of latency, 5 seeds; every method of ``--lodo-methods`` plus
  the one-hot ``linear`` baseline on the same K;
- ``own``: few-shot to this machine's own ort-cpu measurements
  (``benchmarks/data/ort-cpu-nb201.csv``, made once with ``hwprof profile``)
  with the 21 bundled NB201 devices as sources: K = 5/10/20 from a training
  part, Spearman on held-out networks, 10 seeds; architectures as given vs
  live-equivalent; against a one-hot ``linear`` model on the same K and
  ``gbdt`` on 100;
- ``speed``: seconds to predict 10,000 networks (architecture specs -> ms);
- ``db``: on a store of our own measurements (``--db``), a 4:1 train/test split
  (400/100 for 500 networks) of the ort-cpu rows for every predictor, on the raw
  medians and on the reference-calibrated latencies; skipped when absent.

Prints a table per part and writes benchmarks/results/predictors.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# This file is named like the package it measures; keep its folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results" / "predictors.json"
VALIDATION = ("titanx_1", "titanx_32", "titanx_256", "gold_6240")
N_TRAIN = 1000
OWN_SAMPLES = ROOT / "benchmarks" / "data" / "ort-cpu-nb201.csv"
LODO_KS = (5, 10, 20)
LODO_METHODS = ("auto", "nnls", "ridge")


def _setup() -> None:
    import torch

    torch.set_num_threads(1)


def _tables(data_dir: Path) -> dict[str, Any]:
    from nas.tabular import load_fbnet, load_nb201

    nb, fb = data_dir / "nb201.csv.gz", data_dir / "fbnet.csv.gz"
    return {
        "nb201": load_nb201(nb if nb.is_file() else None),
        "fbnet": load_fbnet(fb if fb.is_file() else None),
    }


def model_factories(quick: bool) -> dict[str, tuple[str, Callable[[], Any]]]:
    """name -> (feature set, constructor). Generic defaults; nothing here is tuned on the test devices."""
    from predictors.gbdt import GBDTPredictor
    from predictors.linear import LinearPredictor
    from predictors.mlp import MLPPredictor

    epochs = 60 if quick else 400
    return {
        "gbdt": ("onehot+counts", lambda: GBDTPredictor()),
        "mlp": ("onehot+counts", lambda: MLPPredictor(max_epochs=epochs)),
        "flops-linear": ("flops", lambda: LinearPredictor(alpha=0.0)),
        # The reference: xgboost's default trees (100 rounds, depth 6, eta 0.3) on the plain one-hot.
        "xgb-onehot": ("onehot", lambda: GBDTPredictor(n_estimators=100, max_depth=6, learning_rate=0.3, subsample=1.0,
                                                       colsample_bytree=1.0, linear_base=False)),
    }


def accuracy(tables: dict[str, Any], quick: bool, spaces: list[str]) -> dict[str, Any]:
    from predictors.features.encoding import ArchFeaturizer
    from predictors.metrics import evaluate_predictions

    out: dict[str, Any] = {}
    factories = model_factories(quick)
    for space in spaces:
        table = tables[space]
        devices = table.devices[:3] if quick else table.devices
        n = len(table.archs)
        order = np.random.default_rng(0).permutation(n)
        trn, tst = order[:N_TRAIN], order[N_TRAIN:]
        if quick:
            tst = tst[:2000]
        feats = {fs: ArchFeaturizer(space, fs).transform(table.archs) for fs in {f for f, _ in factories.values()}}
        per_model: dict[str, dict[str, Any]] = {m: {} for m in factories}
        for dev in devices:
            y = np.asarray(table.latency_ms[dev], dtype=np.float64)
            for name, (fs, make) in factories.items():
                X = feats[fs]
                t0 = time.perf_counter()
                model = make().fit(X[trn], y[trn])
                fit_s = time.perf_counter() - t0
                m = evaluate_predictions(y[tst], model.predict(X[tst]))
                per_model[name][dev] = {**m.to_json(), "fit_s": round(fit_s, 2)}
            line = "  ".join(f"{k} {per_model[k][dev]['spearman']:.3f}/{per_model[k][dev]['within_10pct']:.3f}" for k in factories)
            print(f"  {space} {dev:14s} {line}", flush=True)
        out[space] = {
            "devices": list(devices),
            "n_train": N_TRAIN,
            "n_test": int(len(tst)),
            "per_device": per_model,
            "median": {m: _medians(v) for m, v in per_model.items()},
        }
    return out


def _medians(per_device: dict[str, dict[str, Any]]) -> dict[str, float]:
    keys = ("spearman", "within_5pct", "within_10pct", "rmse_ms", "mape")
    return {k: float(np.median([r[k] for r in per_device.values()])) for k in keys}


def _trimmed(y: np.ndarray) -> np.ndarray:
    lo, hi = np.quantile(y, [0.1, 0.9])
    return (y >= lo) & (y <= hi)


def fewshot(tables: dict[str, Any], quick: bool, k: int = 10) -> dict[str, Any]:
    """HELP protocol on nb201 for every transfer method; sample choice: farthest-point (embedding: its references)."""
    from scipy import stats

    from predictors import transfer

    table = tables["nb201"]
    sources = transfer.SourceLatencies.from_columns(table.archs, table.latency_ms, exclude=VALIDATION)
    pool = np.arange(900)
    test = np.arange(900, 1900)
    seeds = range(2 if quick else 5)
    methods = {"ridge": {}, "nnls": {}, "finetune": {}, "embedding": {"reference_pool": pool}}
    if quick:
        methods["finetune"] = {"max_epochs": 5}
        methods["embedding"] = {"reference_pool": pool, "steps": 300}
    results: dict[str, Any] = {}
    for method, params in methods.items():
        rho = {d: [] for d in VALIDATION}
        t0 = time.perf_counter()
        for seed in seeds:
            model = transfer.pretrain(method, sources, seed=seed, **params)
            if model.reference_archs:
                picked = list(model.reference_archs)
            else:
                picked = transfer.suggest_archs(sources, k, seed=seed, pool=pool)
            rows = [table.index_of(a) for a in picked]
            for dev in VALIDATION:
                y = np.asarray(table.latency_ms[dev], dtype=np.float64)
                pred = model.adapt(picked, y[rows]).predict_archs([table.archs[i] for i in test])
                keep = _trimmed(y[test])
                rho[dev].append(float(stats.spearmanr(y[test][keep], pred[keep])[0]))
        per_device = {d: float(np.mean(v)) for d, v in rho.items()}
        results[method] = {"spearman": per_device, "per_seed": rho, "mean": float(np.mean(list(per_device.values()))),
                           "seconds": round(time.perf_counter() - t0, 1)}
        print(f"  {method:10s} " + "  ".join(f"{d} {v:.3f}" for d, v in per_device.items())
              + f"  mean {results[method]['mean']:.3f}", flush=True)
    # The sample choice matters: the reference combination with random samples (HELP's protocol draws them at random).
    rho = {d: [] for d in VALIDATION}
    model = transfer.pretrain("ridge", sources)
    for seed in seeds:
        rows = np.sort(np.random.default_rng(seed).choice(pool, size=k, replace=False))
        for dev in VALIDATION:
            y = np.asarray(table.latency_ms[dev], dtype=np.float64)
            pred = model.adapt([table.archs[i] for i in rows], y[rows]).predict_archs([table.archs[i] for i in test])
            keep = _trimmed(y[test])
            rho[dev].append(float(stats.spearmanr(y[test][keep], pred[keep])[0]))
    per_device = {d: float(np.mean(v)) for d, v in rho.items()}
    results["ridge-random-samples"] = {"spearman": per_device, "per_seed": rho, "mean": float(np.mean(list(per_device.values())))}
    print("  ridge, random samples " + "  ".join(f"{d} {v:.3f}" for d, v in per_device.items())
          + f"  mean {results['ridge-random-samples']['mean']:.3f}", flush=True)
    return {"k": k, "validation_devices": list(VALIDATION), "sources": list(sources.devices),
            "seeds": len(list(seeds)), "sample_choice": "farthest-point over source devices (embedding: its references)",
            "methods": results}


def _help_rho(y_test: np.ndarray, pred: np.ndarray) -> float:
    """HELP's test metric: Spearman without the top and bottom 10% of the measured latency."""
    from scipy import stats

    keep = _trimmed(y_test)
    return float(stats.spearmanr(y_test[keep], pred[keep])[0])


def _onehot_baseline(space: str) -> tuple[Any, Callable[[], Any]]:
    """The no-transfer reference: closed-form ridge (``linear``) on the one-hot encoding of the same K samples."""
    from predictors.features.encoding import ArchFeaturizer
    from predictors.linear import LinearPredictor

    return ArchFeaturizer(space, "onehot"), lambda: LinearPredictor(alpha=1.0)


class _CombinationVariants:
    """Analysis rows of the leave-one-device-out table (not shipped): variants of ``auto`` measured and rejected,
    and the ceilings of an additive predictor, which explain where the bank-based methods stop.

    - ``nnls-rel``: ``nnls`` fitted on relative error (weights 1/y), free intercept;
    - ``auto+rel``: ``auto``'s leave-one-out choice among ``nnls``, ``nnls-rel`` and standardized ridge (K >= 8);
    - ``ceiling-bank-900``: least squares on the bank's standardized source latencies fitted on all 900 pool networks
      (the best any combination of the bank does with 90x the samples);
    - ``ceiling-additive``: ridge on the device's own 15,625 (NB201) / 5,000 (FBNet) latencies, one-hot+counts
      (the best additive predictor of the device, trained on its test networks too);
    - ``ceiling-gbdt-own``: ``gbdt`` (defaults: a ridge base plus boosted trees, so not additive) trained on the
      device's own latencies of every network outside the test set (14,625 NB201 / 4,000 FBNet): how far any
      predictor gets on the device's measurements, interactions included.
    """

    def __init__(self, sources: Any, space: str, archs: list[str]) -> None:
        from predictors.features.encoding import ArchFeaturizer
        from predictors.transfer import SourceBank

        self.featurizer = ArchFeaturizer(space, "onehot+counts")
        self.X = self.featurizer.transform(archs)
        self.B = SourceBank.fit(sources, self.featurizer, 1.0).predict(self.X)
        self.Z = (self.B - self.B.mean(axis=0)) / np.where(self.B.std(axis=0) > 1e-12, self.B.std(axis=0), 1.0)

    @staticmethod
    def nnls_relative(A: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, float]:
        from scipy.optimize import nnls

        x, _ = nnls(np.column_stack([1 / t, -1 / t, A / t[:, None]]), np.ones(len(t)))
        return x[2:], float(x[0] - x[1])

    def predict(self, rows: np.ndarray, ys: np.ndarray, test: np.ndarray) -> dict[str, np.ndarray]:
        from predictors.linear import ridge_fit
        from predictors.transfer import AutoCombination, combination_weights
        from predictors.transfer.combination import _loo_relative_error

        fits = {"nnls": (self.B, lambda A, t: combination_weights(A, t, nonnegative=True, alpha=0.0)),
                "nnls-rel": (self.B, self.nnls_relative),
                "ridge-standardized": (self.Z, lambda A, t: ridge_fit(A, t, 0.1 * len(t)))}
        preds = {}
        for name, (A, fit) in fits.items():
            w, b = fit(A[rows], ys)
            preds[name] = A[test] @ w + b
        if len(ys) >= AutoCombination.MIN_LOO:
            errors = {name: _loo_relative_error(A[rows], ys, fit) for name, (A, fit) in fits.items()}
            chosen = min(errors, key=errors.get)
        else:
            chosen = "nnls"
        return {"nnls-rel": preds["nnls-rel"], "auto+rel": preds[chosen]}

    def ceilings(self, y: np.ndarray, pool: np.ndarray, test: np.ndarray) -> dict[str, float]:
        from predictors.gbdt import GBDTPredictor
        from predictors.linear import ridge_fit

        w, b = ridge_fit(self.Z[pool], y[pool], 1e-6)
        coef, intercept = ridge_fit(self.X, y, 1.0)
        train = np.setdiff1d(np.arange(len(y)), test)
        own = GBDTPredictor().fit(self.X[train], y[train])
        return {"ceiling-bank-900": _help_rho(y[test], self.Z[test] @ w + b),
                "ceiling-additive": _help_rho(y[test], self.X[test] @ coef + intercept),
                "ceiling-gbdt-own": _help_rho(y[test], own.predict(self.X[test]))}


def lodo(tables: dict[str, Any], quick: bool, methods: list[str]) -> dict[str, Any]:
    """Leave-one-device-out over every device of each table; K = 5/10/20; random and suggested samples; 5 seeds."""
    from predictors import transfer

    out: dict[str, Any] = {"ks": list(LODO_KS), "methods": methods + ["onehot-linear"], "default": transfer.DEFAULT_METHOD,
                           "pool": "networks 0-899", "test": "networks 900-1899 without top/bottom 10% of latency",
                           "sample_choice": {"random": "seeded random draw from the pool (HELP)",
                                             "suggested": "farthest-point sampling over the source devices (hwprof adapt --suggest)"}}
    seeds = range(2 if quick else 5)
    for space, table in tables.items():
        devices = table.devices[:3] if quick else table.devices
        archs = list(table.archs)
        pool, test = np.arange(900), np.arange(900, 1900)
        test_archs = [archs[i] for i in test]
        onehot, make_linear = _onehot_baseline(space)
        X_onehot = onehot.transform(archs)
        rho: dict[str, dict[str, dict[str, list[float]]]] = {}
        choices: dict[str, dict[str, int]] = {}
        t0 = time.perf_counter()
        for dev in devices:
            y = np.asarray(table.latency_ms[dev], dtype=np.float64)
            sources = transfer.SourceLatencies.from_columns(archs, table.latency_ms, exclude=[dev])
            models = {m: transfer.pretrain(m, sources, seed=0) for m in methods}
            X_test = {m: models[m].featurizer.transform(test_archs) for m in methods}
            variants = _CombinationVariants(sources, space, archs)
            for key, value in variants.ceilings(y, pool, test).items():
                rho.setdefault(key, {}).setdefault(dev, []).append(value)
            for k in LODO_KS:
                for mode in ("random", "suggested"):
                    for seed in seeds:
                        rows = transfer.suggest_samples(k, sources.latency_ms, seed, pool=pool,
                                                        method="random" if mode == "random" else "farthest")
                        picked, ys = [archs[i] for i in rows], y[rows]
                        for m, model in models.items():
                            adapted = model.adapt(picked, ys)
                            rho.setdefault(f"{m}/{mode}/k{k}", {}).setdefault(dev, []).append(
                                _help_rho(y[test], adapted.predict(X_test[m])))
                            choice = getattr(adapted, "transfer_choice_", None)
                            if choice and k == 10 and mode == "suggested":
                                choices.setdefault(dev, {}).setdefault(choice["chosen"], 0)
                                choices[dev][choice["chosen"]] += 1
                        for key, pred in variants.predict(rows, ys, test).items():
                            rho.setdefault(f"{key}/{mode}/k{k}", {}).setdefault(dev, []).append(_help_rho(y[test], pred))
                        base = make_linear().fit(X_onehot[rows], ys)
                        rho.setdefault(f"onehot-linear/{mode}/k{k}", {}).setdefault(dev, []).append(
                            _help_rho(y[test], base.predict(X_onehot[test])))
            line = "  ".join(f"{m} {np.mean(rho[f'{m}/suggested/k10'][dev]):.3f}" for m in [*methods, "onehot-linear"])
            print(f"  {space} {dev:14s} K=10 suggested: {line}", flush=True)
        summary = {}
        for key, per_dev in rho.items():
            means = {d: float(np.mean(v)) for d, v in per_dev.items()}
            worst = min(means, key=means.get)
            summary[key] = {"mean": float(np.mean(list(means.values()))), "min": means[worst], "min_device": worst,
                            "per_device": means}
        out[space] = {"devices": list(devices), "seeds": len(list(seeds)), "summary": summary,
                      "per_seed": rho, "auto_choice_k10_suggested": choices, "seconds": round(time.perf_counter() - t0, 1)}
        print(f"  {space}: mean / min over {len(devices)} devices (min device)")
        for key in sorted(summary):
            r = summary[key]
            print(f"    {key:32s} {r['mean']:.3f} / {r['min']:.3f} ({r['min_device']})", flush=True)
    return out


def own_device(quick: bool, samples_path: Path = OWN_SAMPLES) -> dict[str, Any]:
    """Few-shot to this machine's own ort-cpu profiles with the 21 bundled NB201 devices as sources.

    Three ways to describe the user's networks to the sources: ``as-given`` (the spec),
    ``live-table`` (the source table's row of ``a`` re-labelled with the latencies of ``live(a)``, the
    additive bank fitted on that table: the previous default) and ``live`` (the bank fitted on the table
    as measured, the adapted predictor fitted on and predicting for ``live(a)``: what ``hwprof adapt --db``
    does now; ``embedding`` too). K suggested among the user's training networks (farthest-point over the sources' rows of
    ``live(a)``, as given for ``as-given``); Spearman on the held-out networks.
    """
    if not samples_path.is_file():
        print(f"  skipped: {samples_path} not found", flush=True)
        return {"skipped": f"{samples_path} not found"}
    from scipy import stats

    from nas.tabular import load_nb201
    from predictors import transfer
    from predictors.data import read_latency_samples
    from predictors.features.encoding import ArchFeaturizer
    from predictors.gbdt import GBDTPredictor
    from predictors.linear import LinearPredictor
    from predictors.transfer.live import LiveFeaturizer, adapt_live, live_specs

    own = read_latency_samples(samples_path)
    archs, y = list(own.archs), own.latency_ms
    table = load_nb201()
    given = transfer.SourceLatencies.from_columns(table.archs, table.latency_ms)
    relabelled, changed = given.live_equivalent("nb201")
    live_archs = live_specs("nb201", archs)
    changed_own = sum(a != b for a, b in zip(archs, live_archs))
    row_of = {a: i for i, a in enumerate(table.archs)}
    n_test = max(10, len(archs) // 3)
    onehot, make_linear = _onehot_baseline("nb201")
    X_onehot = onehot.transform(archs)
    X_onehot_live = LiveFeaturizer("nb201", "onehot").transform(archs)
    feats = ArchFeaturizer("nb201", "onehot+counts")
    X_feats = feats.transform(archs)
    methods = ["auto", "nnls", "ridge"]
    pretrained = {(m, tab): transfer.pretrain(m, src, seed=0) for m in methods for tab, src in (("given", given), ("relabelled", relabelled))}
    views = {"as-given": ("given", given, False), "live-table": ("relabelled", relabelled, False), "live": ("given", relabelled, True)}
    # The non-additive method on the live path (pretrained once on the table as measured; about a minute).
    embedding = transfer.pretrain("embedding", given, seed=0, **({"steps": 300} if quick else {}))
    seeds = range(3 if quick else 10)
    rho: dict[str, list[float]] = {}
    choices: dict[str, dict[str, int]] = {}

    def record(key: str, pred: np.ndarray, test: np.ndarray) -> None:
        rho.setdefault(key, []).append(float(stats.spearmanr(y[test], pred)[0]))

    for seed in seeds:
        order = np.random.default_rng(seed).permutation(len(archs))
        test, train = order[:n_test], order[n_test:]
        test_archs = [archs[i] for i in test]
        for k in LODO_KS:
            for view, (tab, choice_table, live) in views.items():
                # The default path: K suggested among the user's measured networks (farthest-point over the sources).
                picked_rows = transfer.suggest_samples(k, choice_table.latency_ms, seed, pool=[row_of[archs[i]] for i in train])
                by_row = {row_of[archs[i]]: i for i in train}
                fit = np.array([by_row[int(r)] for r in picked_rows])
                for m in methods:
                    model = pretrained[(m, tab)]
                    fit_archs = [archs[i] for i in fit]
                    adapted = adapt_live(model, fit_archs, y[fit]) if live else model.adapt(fit_archs, y[fit])
                    record(f"{m}/{view}/k{k}", adapted.predict_archs(test_archs), test)
                    choice = getattr(adapted, "transfer_choice_", None)
                    if choice and view == "live":
                        counts = choices.setdefault(f"k{k}", {})
                        counts[choice["chosen"]] = counts.get(choice["chosen"], 0) + 1
                if view == "live":
                    record(f"embedding/live/k{k}", adapt_live(embedding, [archs[i] for i in fit], y[fit]).predict_archs(test_archs), test)
                    record(f"onehot-linear/k{k}", make_linear().fit(X_onehot[fit], y[fit]).predict(X_onehot[test]), test)
                    record(f"onehot-linear-live/k{k}",
                           make_linear().fit(X_onehot_live[fit], y[fit]).predict(X_onehot_live[test]), test)
            # Analysis, not a shipped path: the sources' *measured* latencies of the live-equivalent architecture (exact
            # lookup, no bank), combined by nnls (ms) or ridge on standardized log latency (the quick check).
            for view, src in (("as-given", given), ("live", relabelled)):
                S = src.latency_ms[[row_of[a] for a in archs]]
                fit = train[transfer.suggest_samples(k, S[train], seed)]
                w, b = transfer.combination_weights(S[fit], y[fit], nonnegative=True, alpha=0.0)
                record(f"lookup-nnls/{view}/k{k}", S[test] @ w + b, test)
                Z = (np.log(S) - np.log(src.latency_ms).mean(0)) / np.log(src.latency_ms).std(0)
                w, b = transfer.combination_weights(Z[fit], np.log(y[fit]), nonnegative=False, alpha=1.0)
                record(f"lookup-ridge-log/{view}/k{k}", Z[test] @ w + b, test)
        n_gbdt = min(100, len(train))
        gbdt = GBDTPredictor().fit(X_feats[train[:n_gbdt]], y[train[:n_gbdt]])
        record(f"gbdt/n{n_gbdt}", gbdt.predict(X_feats[test]), test)
        X_live = LiveFeaturizer("nb201", "onehot+counts").transform(archs)
        gbdt = GBDTPredictor().fit(X_live[train[:n_gbdt]], y[train[:n_gbdt]])
        record(f"gbdt-live/n{n_gbdt}", gbdt.predict(X_live[test]), test)
        lin = LinearPredictor(alpha=1.0).fit(X_live[train[:n_gbdt]], y[train[:n_gbdt]])
        record(f"linear-live/n{n_gbdt}", lin.predict(X_live[test]), test)
    summary = {key: {"mean": float(np.mean(v)), "std": float(np.std(v)), "n": len(v)} for key, v in rho.items()}
    for key in sorted(summary):
        print(f"  {key:28s} Spearman {summary[key]['mean']:.3f} +- {summary[key]['std']:.3f}", flush=True)
    print(f"  auto's choice (live): {choices}", flush=True)
    return {"samples": str(samples_path), "n_networks": len(archs), "n_test": n_test,
            "seeds": len(list(seeds)), "table_rows_changed_by_live": changed, "own_networks_changed_by_live": changed_own,
            "views": {"as-given": "specs as measured", "live-table": "bank fitted on the table re-labelled with live(a) rows",
                      "live": "bank on the table as measured; adapted predictor fitted on and predicting live(a) (hwprof adapt --db)"},
            "auto_choice_live": choices, "summary": summary, "per_seed": rho}


def speed(tables: dict[str, Any], quick: bool) -> dict[str, Any]:
    """Seconds to predict 10,000 architecture specs (featurization included), median of 3."""
    from predictors.features.encoding import ArchFeaturizer

    table = tables["nb201"]
    y = np.asarray(table.latency_ms["titanx_1"], dtype=np.float64)
    archs = [table.archs[i] for i in np.random.default_rng(1).choice(len(table.archs), 10_000, replace=False)]
    out: dict[str, Any] = {}
    for name, (fs, make) in model_factories(quick).items():
        f = ArchFeaturizer("nb201", fs)
        model = make().fit(f.transform(table.archs[:N_TRAIN]), y[:N_TRAIN], schema=f.schema)
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            model.predict_archs(archs)
            times.append(time.perf_counter() - t0)
        out[name] = {"seconds_10k": float(np.median(times))}
        print(f"  {name:14s} {out[name]['seconds_10k']:.3f} s / 10,000 networks", flush=True)
    return out


def own_measurements(db: Path | None, quick: bool, device: str = "ort-cpu") -> dict[str, Any]:
    if db is None or not Path(db).is_file():
        why = "no --db given" if db is None else f"store {str(db)!r} not found"
        print(f"  skipped: {why}; run `hwprof profile -n 500` on the local CPU, then pass --db", flush=True)
        return {"skipped": why}
    from hwprof.store import Store
    from predictors.features.encoding import ArchFeaturizer, infer_space
    from predictors.metrics import evaluate_predictions

    with Store(db, create=False) as store:
        views = {"raw": store.latencies(device, None), "calibrated": store.latencies(device, None, corrected=True)}
    if len(views["raw"]) < 50:
        why = f"the store has {len(views['raw'])} {device} architectures; expected a few hundred"
        print(f"  skipped: {why}", flush=True)
        return {"skipped": why}
    archs = sorted(views["raw"])
    space = infer_space(archs)
    order = np.random.default_rng(0).permutation(len(archs))
    n_test = max(1, len(archs) // 5)
    tst, trn = order[:n_test], order[n_test:]
    out: dict[str, Any] = {"device": device, "space": space, "n_train": int(len(trn)), "n_test": int(len(tst))}
    for view, latencies in views.items():
        y = np.array([latencies[a] for a in archs])
        out[view] = {}
        for name, (fs, make) in model_factories(quick).items():
            f = ArchFeaturizer(space, fs)
            X = f.transform(archs)
            model = make().fit(X[trn], y[trn], schema=f.schema)
            m = evaluate_predictions(y[tst], model.predict(X[tst]))
            out[view][name] = m.to_json()
            print(f"  {view:10s} {name:14s} within10 {m.within_10pct:.3f}  within5 {m.within_5pct:.3f}  spearman {m.spearman:.3f}",
                  flush=True)
    return out


def _summary(acc: dict[str, Any]) -> None:
    for space, res in acc.items():
        print(f"\n{space}: median over {len(res['devices'])} devices ({res['n_train']} train / {res['n_test']} test)")
        print(f"  {'model':14s} {'spearman':>9s} {'+-5%':>7s} {'+-10%':>7s} {'rmse_ms':>9s}  beats xgb-onehot (spearman)")
        ref = res["per_device"]["xgb-onehot"]
        for name, med in res["median"].items():
            wins = sum(res["per_device"][name][d]["spearman"] > ref[d]["spearman"] for d in res["devices"])
            print(f"  {name:14s} {med['spearman']:9.3f} {med['within_5pct']:7.3f} {med['within_10pct']:7.3f} {med['rmse_ms']:9.3f}"
                  f"  {wins}/{len(res['devices'])}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 devices, short training, 2 seeds")
    parser.add_argument("--parts", default="accuracy,fewshot,lodo,own,speed,db", help="comma-separated parts to run")
    parser.add_argument("--lodo-methods", default=",".join(LODO_METHODS),
                        help="lodo: comma-separated few-shot methods (embedding and finetune pretrain once per device)")
    parser.add_argument("--spaces", default="nb201,fbnet", help="accuracy part: comma-separated tables (nb201, fbnet)")
    parser.add_argument("--db", type=Path, default=None, help="store with our own ort-cpu measurements")
    parser.add_argument("--data", type=Path, default=DATA, help="folder with nb201.csv.gz and fbnet.csv.gz")
    parser.add_argument("-o", "--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    _setup()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    tables = _tables(args.data)
    previous = json.loads(args.output.read_text()) if args.output.is_file() and not args.quick else {}
    result: dict[str, Any] = {**previous, "quick": args.quick, "python": platform.python_version(),
                              "machine": platform.machine(), "threads": 1}
    spaces = [s.strip() for s in args.spaces.split(",") if s.strip()]
    unknown = [s for s in spaces if s not in tables]
    if unknown:
        parser.error(f"unknown --spaces {unknown}; known: {', '.join(tables)}")
    for part, fn in (("accuracy", lambda: {**result.get("accuracy", {}), **accuracy(tables, args.quick, spaces)}), ("fewshot", lambda: fewshot(tables, args.quick)),
                     ("lodo", lambda: lodo(tables, args.quick, [m.strip() for m in args.lodo_methods.split(",") if m.strip()])),
                     ("own", lambda: own_device(args.quick)),
                     ("speed", lambda: speed(tables, args.quick)), ("db", lambda: own_measurements(args.db, args.quick))):
        if part in parts:
            print(f"[{part}]", flush=True)
            t0 = time.perf_counter()
            result[part] = fn()
            print(f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
    if "accuracy" in result:
        _summary(result["accuracy"])
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
