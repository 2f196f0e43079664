"""Which latency predictor for how many measured networks? (issue 16, part 4: few measurements, right tool)

On this machine's own ort-cpu profiles (``benchmarks/data/ort-cpu-nb201.csv``,
made with ``hwprof profile``), a fixed set of held-out networks per seed and
training sets of n networks drawn from the rest, for every n of ``--sizes``:

- ``gbdt``, ``mlp``, ``linear``: ``hwprof train``'s models with their default
  features and parameters, fitted on the n networks;
- ``adapt``: ``hwprof adapt``'s default (``auto``) from the 21 bundled NB201
  devices, with the n networks as its K samples (live-equivalent specs, as
  ``hwprof adapt --db`` does for a device profiled through hwprof:
  ``predictors.transfer.live.adapt_live``).

Spearman and within-10% on the held-out networks, mean over seeds. The
quickstart picks its predictor and the number of networks it profiles from
this table, and ``hwprof train`` warns below the size where a model trails
the best method by a wide margin (``predictors.training.FEW_NETWORKS``).

    python benchmarks/few_networks.py            # -> benchmarks/results/few_networks.json
    python benchmarks/few_networks.py --seeds 2 --sizes 10,50
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SAMPLES = ROOT / "benchmarks" / "data" / "ort-cpu-nb201.csv"
N_TEST = 100
METHODS = ("gbdt", "mlp", "linear", "adapt")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=Path, default=SAMPLES)
    ap.add_argument("--sizes", default="10,20,30,50,75,100,150,200,300")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "few_networks.json")
    args = ap.parse_args(argv)

    from scipy import stats

    from nas.tabular import load_nb201
    from predictors import transfer
    from predictors.data import read_latency_samples
    from predictors.metrics import evaluate_predictions
    from predictors.transfer.live import adapt_live
    from predictors.training import make_featurizer, make_predictor

    own = read_latency_samples(args.samples)
    archs, y = list(own.archs), np.asarray(own.latency_ms, dtype=float)
    sizes = [int(s) for s in args.sizes.split(",")]
    if max(sizes) > len(archs) - N_TEST:
        ap.error(f"the largest size {max(sizes)} leaves fewer than {N_TEST} held-out networks of {len(archs)}")
    table = load_nb201()
    sources = transfer.SourceLatencies.from_columns(table.archs, table.latency_ms)
    t0 = time.time()
    auto = transfer.pretrain("auto", sources, seed=0)
    pretrain_s = time.time() - t0

    rows: dict[str, dict[str, list[Any]]] = {}
    fit_s: dict[str, list[float]] = {}
    for seed in range(args.seeds):
        order = np.random.default_rng(seed).permutation(len(archs))
        test, pool = order[:N_TEST], order[N_TEST:]
        for n in sizes:
            train = pool[:n]
            for method in METHODS:
                t0 = time.time()
                if method == "adapt":  # what `hwprof adapt --db` does: live equivalents of the networks
                    model = adapt_live(auto, [archs[i] for i in train], y[train])
                    pred = model.predict_archs([archs[i] for i in test])
                else:
                    if n < make_predictor(method).min_training_archs():
                        continue
                    model = make_predictor(method, None, seed)
                    model.fit_archs([archs[i] for i in train], y[train], featurizer=make_featurizer("nb201"))
                    pred = model.predict_archs([archs[i] for i in test])
                fit_s.setdefault(method, []).append(time.time() - t0)
                m = evaluate_predictions(y[test], pred)
                rho = float(stats.spearmanr(y[test], pred)[0])
                cell = rows.setdefault(method, {}).setdefault(str(n), [])
                cell.append({"spearman": rho, "within_10pct": float(m.within_10pct), "mape": float(m.mape)})
            print(f"seed {seed} n {n:4d}: " + "  ".join(
                f"{meth} {rows[meth][str(n)][-1]['spearman']:.3f}" for meth in METHODS if str(n) in rows.get(meth, {})
            ), flush=True)

    summary = {
        meth: {n: {k: float(np.mean([c[k] for c in cells])) for k in ("spearman", "within_10pct", "mape")}
               for n, cells in by_n.items()}
        for meth, by_n in rows.items()
    }
    best = {n: max(summary, key=lambda meth: summary[meth].get(str(n), {}).get("spearman", -1.0)) for n in sizes}
    result = {
        "samples": str(args.samples.relative_to(ROOT)) if args.samples.is_relative_to(ROOT) else str(args.samples),
        "n_networks": len(archs), "n_test": N_TEST, "seeds": args.seeds, "sizes": sizes,
        "summary": summary, "best_by_spearman": {str(n): best[n] for n in sizes},
        "fit_seconds_median": {meth: float(np.median(v)) for meth, v in fit_s.items()},
        "adapt_pretrain_seconds": pretrain_s, "per_seed": rows,
    }
    print(f"\nheld-out Spearman / within 10% (mean of {args.seeds} seeds, {N_TEST} held-out networks)")
    print(f"{'n':>5} " + " ".join(f"{meth:>15}" for meth in METHODS) + "  best")
    for n in sizes:
        cells = [summary.get(meth, {}).get(str(n)) for meth in METHODS]
        print(f"{n:>5} " + " ".join(f"{c['spearman']:6.3f} / {c['within_10pct']:5.2f}" if c else f"{'-':>15}" for c in cells)
              + f"  {best[n]}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
