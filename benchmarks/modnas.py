"""MODNAS benchmark on NAS-Bench-201: one hypernetwork, 21 devices, 24 preference rays each.

Devices of the bundled nb201.csv.gz (identical to ../shared/data/nb201.csv.gz):
- validation: titanx_1, titanx_32, titanx_256, gold_6240 (as in the MODNAS paper);
- zero-shot test: titan_rtx_32, silver_4210r, pixel3 — one GPU, one server CPU,
  one phone, each with a sibling of its class among the training devices
  (as the paper's titan_rtx_256 / gold_6226 / pixel2), fixed before any run;
- training: the 14 others.

The hypernetwork is trained on the training devices only. Every device is
then given to it through its latencies on the 10 reference architectures
(table values) — the only thing it knows about a validation or test device.
For each device, 24 rays -> 24 architectures; error (100 - cifar10 test
accuracy from the table) and latency (the table's value) are normalised to
[0, 1] with the true min/max over all 15,625 networks on that device;
hypervolume w.r.t. [1, 1] divided by the true Pareto front's.

Every figure of the method is reported for training seeds 0, 1 and 2
(``SEEDS``): per device the HV ratio, the accuracy-end gap (table accuracy
of the most accurate network minus that of the preference-1.0 pick, in
points) and the number of distinct networks among the 24. Each run is
decoded the default way (select by the surrogates, ``nas.search.modnas.decode``)
and, for comparison, by argmax (the decoding before it; ``argmax`` in the JSON).

Baselines per device on the same normalisation: random search with 24 and
100 architectures (mean over 10 seeds) and LayerNAS with 24 and 100
evaluations (multi-objective mode, mean over 3 seeds), both through ``nas.search``.

Ablations (``--ablations``, seed 0, reusing seed 0's set-up): linear
combination of the task gradients instead of MGD, the ReinMax sampler (the
default is GDAS: it scored higher on the validation devices, 0.985 vs
0.979), the weighted sum instead of the (default) Chebyshev scalarisation,
and supernet mode on scikit-learn's digits (16x16): accuracy from a
weight-sharing supernet trained here, latency from the same surrogate.

    python benchmarks/modnas.py               # seeds 0, 1, 2 and the baselines (about 15 minutes on a quiet 2-core host)
    python benchmarks/modnas.py --quick       # seed 0 and the baselines
    python benchmarks/modnas.py --ablations   # also the ablations (about 20 minutes more)
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

# benchmarks/predictors.py shares its name with the predictors package: keep this folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402
import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from nas.cost import LookupCost  # noqa: E402
from nas.evaluators import TabularEvaluator  # noqa: E402
from nas.pareto import modnas_hypervolume  # noqa: E402
from nas.search import search  # noqa: E402
from nas.search.modnas import ARGMAX, DecodeSettings, ModnasConfig, ModnasModel, preference_rays, train_modnas  # noqa: E402
from nas.search.modnas.config import MODE_DEFAULTS  # noqa: E402
from nas.search.modnas.objectives import NormalisedLatency, SurrogateError, scalarise  # noqa: E402
from nas.search.modnas.trainer import reuse_setup  # noqa: E402
from nas.spaces import NB201Space  # noqa: E402
from nas.tabular import load_nb201  # noqa: E402

VALIDATION = ("titanx_1", "titanx_32", "titanx_256", "gold_6240")
ZERO_SHOT = ("titan_rtx_32", "silver_4210r", "pixel3")
DATASET = "cifar10"
N_RAYS = 24
SEEDS = (0, 1, 2)  # every MODNAS figure is reported over these training seeds
RANDOM_SEEDS = range(10)
LAYERNAS_SEEDS = range(3)
BASELINE_BUDGET = 100  # the issue's random-search reference
BASELINE_BUDGETS = (N_RAYS, BASELINE_BUDGET)  # as many networks as the 24-ray front, and 100
HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
RUNS = RESULTS / "modnas_runs"


def split_of(device: str) -> str:
    return "validation" if device in VALIDATION else "zero-shot" if device in ZERO_SHOT else "train"


def train_devices(table) -> tuple[str, ...]:
    return tuple(d for d in table.devices if d not in VALIDATION + ZERO_SHOT)


def bounds(table, device: str) -> tuple[list[float], list[float]]:
    acc, lat = np.asarray(table.accuracy[DATASET]), np.asarray(table.latency_ms[device])
    return [100.0 - float(acc.max()), float(lat.min())], [100.0 - float(acc.min()), float(lat.max())]


def hv_ratio(table, device: str, idx: list[int] | np.ndarray) -> float:
    acc, lat = np.asarray(table.accuracy[DATASET]), np.asarray(table.latency_ms[device])
    lo, hi = bounds(table, device)
    true_hv = modnas_hypervolume(acc, lat, lo, hi)
    idx = np.asarray(idx, dtype=np.int64)
    return modnas_hypervolume(acc[idx], lat[idx], lo, hi) / true_hv


def evaluate_model(model: ModnasModel, table, decode: DecodeSettings | None = None) -> dict[str, dict[str, Any]]:
    """Per device: the 24-ray front from the device's reference latencies, scored on the table.

    ``acc_end_gap_pts``: the table accuracy of the most accurate network the
    table holds (the accuracy surrogate was fitted on all of them) minus that
    of the preference-1.0 pick; ``acc_end_gap_surrogate_best_pts``: the same
    against the network the accuracy surrogate ranks first.
    """
    rays = preference_rays(N_RAYS)
    acc = np.asarray(table.accuracy[DATASET])
    surrogate_best = _surrogate_best(model, table)
    out = {}
    for d in table.devices:
        emb, _ = model.embedding(ref_latencies_ms=model.refs.latencies_from_table(table.archs, table.latency_ms[d]))
        archs = model.architectures(emb, rays, decode)
        idx = [table.index_of(a.spec) for a in archs]
        top = float(acc[idx[0]])
        out[d] = {"split": split_of(d), "hv_ratio": hv_ratio(table, d, idx), "n_distinct": len(set(idx)),
                  "pick_accuracy_pct": top, "acc_end_gap_pts": float(acc.max()) - top,
                  "acc_end_gap_surrogate_best_pts": None if surrogate_best is None else float(acc[surrogate_best]) - top,
                  "archs": [a.spec for a in archs]}
    return out


def _surrogate_best(model: ModnasModel, table) -> int | None:
    """Row of the table network with the lowest surrogate error (None without an accuracy surrogate)."""
    if model.accuracy is None:
        return None
    choices, _ = _choices_and_live(tuple(table.archs))
    with torch.no_grad():
        return int(torch.argmin(model.accuracy(torch.from_numpy(NB201Space().encode_choices(choices)))))


@functools.cache
def _choices_and_live(archs: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The table's networks as NB201 choice rows, and which of them have an output that depends on the input."""
    from nas.search.modnas.refs import nb201_is_live

    space = NB201Space()
    return (np.asarray([space.choices_from_spec(a) for a in archs]),
            np.asarray([nb201_is_live(a) for a in archs]))


def _unit(values: np.ndarray, scale: str, rows: np.ndarray) -> np.ndarray:
    """Min/max-normalise (the log of, for ``scale="log"``) ``values`` by their range over ``rows``."""
    t = np.log(values) if scale == "log" else np.asarray(values, dtype=np.float64)
    lo, hi = t[rows].min(), t[rows].max()
    return (t - lo) / (hi - lo)


def surrogate_ceiling(model: ModnasModel, table) -> dict[str, dict[str, float]]:
    """Per device: HV ratios of the exact per-ray optimum over all networks, and the latency surrogate's Spearman.

    ``surrogates``: the frozen surrogates, normalised as in training — the best
    any hypernetwork could do with them (the gap to it is the hypernetwork's;
    the gap from it to 1 the surrogates' and, with the weighted sum, the
    scalarisation's, which misses concave parts of the front).
    ``true_latency``: the accuracy surrogate with the device's true table
    latencies; ``true_both``: the table's error and latency — what the rays'
    scalarisation itself allows. True values are normalised over the networks
    whose output depends on their input (some runtimes prune the others to
    ~0 ms, which would set a log scale's range).
    """
    if model.accuracy is None:
        return {}
    from scipy.stats import spearmanr

    choices, live = _choices_and_live(tuple(table.archs))
    enc = torch.from_numpy(NB201Space().encode_choices(choices))
    scale = model.meta["config"]["objective_scale"]
    kind = model.meta["config"].get("scalarisation", "weighted_sum")  # models trained before the option: weighted sum
    with torch.no_grad():
        err = SurrogateError(model.accuracy, enc, scale).normalise(model.accuracy(enc)).double().numpy()
    true_err = _unit(100.0 - np.asarray(table.accuracy[DATASET]), scale, np.ones_like(live))
    rays = torch.from_numpy(preference_rays(N_RAYS))

    def ceiling(device: str, e: np.ndarray, lat: np.ndarray) -> float:
        obj = torch.from_numpy(np.stack([e, lat], axis=1))
        return hv_ratio(table, device, [int(torch.argmin(scalarise(obj, r, kind))) for r in rays])

    out = {}
    for d in table.devices:
        emb, _ = model.embedding(ref_latencies_ms=model.refs.latencies_from_table(table.archs, table.latency_ms[d]))
        with torch.no_grad():
            z = model.latency(enc, torch.from_numpy(emb)[None]).double()
        lat = NormalisedLatency.normalise(z, z.min(), z.max(), scale).numpy()  # as in training
        true_lat = _unit(np.asarray(table.latency_ms[d]), scale, live)
        out[d] = {"surrogates": ceiling(d, err, lat), "true_latency": ceiling(d, err, true_lat),
                  "true_both": ceiling(d, true_err, true_lat),
                  "latency_spearman_live": float(spearmanr(z.numpy()[live], np.log(table.latency_ms[d][live])).statistic)}
    return out


def device_properties(table, train: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """What sets a device apart, from the table alone (networks whose output depends on their input).

    ``best_train_spearman``: the highest Spearman of its latencies with a
    training device's (itself excluded); ``conv3x3_per_conv1x1`` and
    ``none_minus_skip_per_conv1x1``: from a least-squares fit of latency on
    the counts of each operation (plus a constant), the cost of a 3x3
    convolution and of a ``none`` edge instead of a skip, in units of a 1x1
    convolution's cost.
    """
    from scipy.stats import spearmanr

    from nas.spaces.nb201 import OPS

    all_choices, live = _choices_and_live(tuple(table.archs))
    choices = all_choices[live]
    counts = np.stack([(choices == k).sum(axis=1) for k in range(len(OPS))] + [np.ones(len(choices))], axis=1).astype(np.float64)
    col = {op: i for i, op in enumerate(OPS)}
    out = {}
    for d in table.devices:
        lat = np.asarray(table.latency_ms[d])[live]
        w, *_ = np.linalg.lstsq(counts, lat, rcond=None)
        conv1 = w[col["nor_conv_1x1"]]
        out[d] = {
            "best_train_spearman": max(float(spearmanr(lat, np.asarray(table.latency_ms[t])[live]).statistic)
                                       for t in train if t != d),
            "conv3x3_per_conv1x1": float(w[col["nor_conv_3x3"]] / conv1),
            "none_minus_skip_per_conv1x1": float((w[col["none"]] - w[col["skip_connect"]]) / conv1),
        }
    return out


def baselines(table, devices, on_line=None) -> dict[str, dict[str, Any]]:
    space = NB201Space()
    ev = TabularEvaluator(table, DATASET)
    out: dict[str, dict[str, Any]] = {}
    for d in devices:
        cost = LookupCost.from_nb201(table, d)
        t0 = time.perf_counter()
        out[d] = {}
        for algo, seeds in (("random", RANDOM_SEEDS), ("layernas", LAYERNAS_SEEDS)):
            for budget in BASELINE_BUDGETS:
                hv = []
                for s in seeds:
                    res = search(algo, space, ev, [cost], None, budget=budget, seed=s, multi_objective=True)
                    hv.append(hv_ratio(table, d, [table.index_of(e.spec) for e in res.history]))
                out[d].update({f"{algo}{budget}_mean": float(np.mean(hv)), f"{algo}{budget}_std": float(np.std(hv)),
                               f"{algo}{budget}": hv})
        if on_line:
            on_line(f"baselines {d}: " + ", ".join(f"{k} {v:.4f}" for k, v in out[d].items() if k.endswith("_mean"))
                    + f" ({time.perf_counter() - t0:.0f} s)")
    return out


def run_modnas(name: str, config: ModnasConfig, table, on_line=None, reuse_from: Path | None = None) -> dict[str, Any]:
    t0 = time.perf_counter()
    last = {"t": t0}

    def progress(p) -> None:
        if on_line and p.phase == "hypernetwork" and (p.done % max(1, p.total // 5) == 0):
            on_line(f"{name}: step {p.done}/{p.total} loss {p.info.get('loss', float('nan')):.4f} ({time.perf_counter() - t0:.0f} s)")
        last["t"] = time.perf_counter()

    if reuse_from is not None and reuse_setup(reuse_from, config) and on_line:
        on_line(f"{name}: surrogates and references reused from {reuse_from}")
    out = train_modnas(config, progress)
    wall = time.perf_counter() - t0
    model = ModnasModel.load(out)
    per_device = evaluate_model(model, table)
    for d, c in surrogate_ceiling(model, table).items():
        per_device[d]["surrogate_ceiling_hv_ratio"] = c.pop("surrogates")
        per_device[d]["latency_spearman_live"] = c.pop("latency_spearman_live")
        per_device[d]["ceiling_hv_ratio"] = c
    result = {"name": name, "config": config.to_json(), "wall_s_this_process": wall,
              "wall_s_training": model.meta["training"]["wall_s"], "accuracy_source": model.accuracy_source,
              "references": list(model.refs.specs), "surrogate_fit": {
                  "latency": model.meta["latency_surrogate"]["fit"],
                  "accuracy": (model.meta.get("accuracy_surrogate") or {}).get("fit")},
              "decode": "select" if model.accuracy is not None else "argmax",
              "summary": summarize_split(per_device), "devices": per_device}
    if model.accuracy is not None:  # the same hypernetwork decoded by argmax (the decoding before the select step)
        plain = evaluate_model(model, table, ARGMAX)
        result["argmax"] = {"summary": summarize_split(plain),
                            "devices": {d: {k: v for k, v in r.items() if k != "archs"} for d, r in plain.items()}}
    return result


def summarize_split(per_device: dict[str, dict[str, Any]]) -> dict[str, float]:
    s: dict[str, float] = {}
    groups = {"train": ("train",), "validation": ("validation",), "zero-shot": ("zero-shot",),
              "train+validation": ("train", "validation")}
    for key, splits in groups.items():
        rows = [r for r in per_device.values() if r["split"] in splits]
        s[f"{key}_mean"] = float(np.mean([r["hv_ratio"] for r in rows]))
        s[f"{key}_min"] = float(np.min([r["hv_ratio"] for r in rows]))
    s["acc_end_gap_max_pts"] = float(max(r["acc_end_gap_pts"] for r in per_device.values()))
    s["acc_end_gap_mean_pts"] = float(np.mean([r["acc_end_gap_pts"] for r in per_device.values()]))
    s["n_distinct_mean"] = float(np.mean([r["n_distinct"] for r in per_device.values()]))
    s["n_distinct_min"] = int(min(r["n_distinct"] for r in per_device.values()))
    ceiling = [r["surrogate_ceiling_hv_ratio"] for r in per_device.values() if "surrogate_ceiling_hv_ratio" in r]
    if ceiling:
        s["surrogate_ceiling_mean"] = float(np.mean(ceiling))
    return s


def supernet_accuracy(model_dir: Path, config: ModnasConfig, archs: list[str]) -> dict[str, float]:
    """Weight-sharing validation accuracy (%) on digits of the given architectures (batch-statistics BN)."""
    from nas.evaluators.data import load_digits_data
    from nas.search.modnas.model import load_state
    from nas.search.modnas.supernet import NB201Supernet

    s = config.supernet_input_size
    data = load_digits_data((3, s, s), seed=config.seed)
    net = NB201Supernet(config.supernet_channels, config.supernet_cells, data.num_classes)
    net.load_state_dict(load_state(model_dir / "supernet.pt"))
    net.train()  # batch statistics, as during the search
    space = NB201Space()
    out = {}
    with torch.no_grad():
        for spec in dict.fromkeys(archs):
            w = torch.nn.functional.one_hot(torch.tensor(space.choices_from_spec(spec)), 5).float()
            pred = torch.cat([net(data.x_val[i : i + 256], w).argmax(1) for i in range(0, data.x_val.shape[0], 256)])
            out[spec] = float((pred == data.y_val).float().mean() * 100)
    return out


def seed_targets(run: dict[str, Any], base_res: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The issue's MODNAS targets for one run (one seed)."""
    s, devs = run["summary"], run["devices"]
    behind = sorted(d for d, r in devs.items() if r["hv_ratio"] <= base_res[d]["random100_mean"])
    return {
        "train+validation_mean>=0.985": s["train+validation_mean"] >= 0.985,
        "zero-shot_mean>=0.98": s["zero-shot_mean"] >= 0.98,
        "beats_random100_on_every_device": not behind, "behind_random100": behind,
        "acc_end_gap_max_pts<=0.3": s["acc_end_gap_max_pts"] <= 0.3,
        "one_search_under_30_min": run["wall_s_training"] < 1800,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="seed 0 of the method and the baselines only")
    ap.add_argument("--ablations", action="store_true",
                    help="also the ablations on seed 0 (MGD off, ReinMax, weighted sum) and supernet mode")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (the target is stated for 2 cores)")
    ap.add_argument("--out", type=Path, default=RESULTS / "modnas.json")
    ap.add_argument("--steps", type=int, default=None, help="hypernetwork steps (default: ModnasConfig's)")
    ap.add_argument("--objective-scale", choices=("linear", "log"), default=None,
                    help="normalisation of the objectives during training (default: ModnasConfig's)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    console = Console(width=220)
    say = lambda line: console.print(line, highlight=False)  # noqa: E731
    table = load_nb201()
    train = train_devices(table)
    say(f"train devices ({len(train)}): {', '.join(train)}")
    say(f"validation: {', '.join(VALIDATION)}; zero-shot: {', '.join(ZERO_SHOT)}")

    overrides = {k: v for k, v in (("objective_scale", args.objective_scale), ("steps", args.steps)) if v is not None}
    runs_dir = RUNS.joinpath(*(f"{k}-{v}" for k, v in overrides.items()))
    seeds = SEEDS[:1] if args.quick else SEEDS
    method = {f"surrogate_mgd_s{s}": ModnasConfig(out_dir=str(runs_dir / f"surrogate_mgd_s{s}"), devices=train, seed=s, **overrides)
              for s in seeds}
    base = method["surrogate_mgd_s0"]
    runs = dict(method)
    if args.ablations:
        runs["surrogate_linear"] = replace(base, out_dir=str(runs_dir / "surrogate_linear"), combine="linear")
        # ReinMax's tau tempers only the relaxed half of its estimate; it is run at the tau_end it does best with
        # (0.3: 0.981 train+validation, against 0.944 at GDAS's 0.1).
        runs["surrogate_reinmax"] = replace(base, out_dir=str(runs_dir / "surrogate_reinmax"), sampler="reinmax", tau_end=0.3)
        runs["surrogate_weighted_sum"] = replace(base, out_dir=str(runs_dir / "surrogate_weighted_sum"), scalarisation="weighted_sum")
        runs["supernet_mgd"] = replace(
            base, out_dir=str(runs_dir / "supernet_mgd"), mode="supernet", steps=1000, supernet_warmup_steps=300,
            **MODE_DEFAULTS["supernet"],
        )
    results: dict[str, Any] = {}
    for name, cfg in runs.items():
        say(f"[bold]{name}[/bold]")
        results[name] = run_modnas(name, cfg, table, say, None if name in method else Path(base.out_dir))
        if cfg.mode == "supernet":
            archs = [a for r in results[name]["devices"].values() for a in r["archs"]]
            acc = supernet_accuracy(Path(cfg.out_dir), cfg, archs)
            results[name]["supernet_val_accuracy_pct"] = {"mean_over_front_archs": float(np.mean(list(acc.values()))),
                                                         "max": float(np.max(list(acc.values()))), "per_arch": acc}
        say(f"{name}: {results[name]['summary']} ({results[name]['wall_s_training']:.0f} s training)")
    base_res = baselines(table, table.devices, say)

    targets: dict[str, Any] = {name: seed_targets(results[name], base_res) for name in method}
    issue = ("train+validation_mean>=0.985", "zero-shot_mean>=0.98", "beats_random100_on_every_device", "acc_end_gap_max_pts<=0.3")
    targets["all_seeds_meet_the_issue_15_targets"] = all(all(t[k] for k in issue) for t in targets.values())
    targets["note"] = "one_search_under_30_min is wall time: on a host shared with other jobs it measures the load"
    report = {
        "settings": {
            "dataset": DATASET, "rays": N_RAYS, "seeds": list(seeds), "train_devices": list(train),
            "validation_devices": list(VALIDATION), "zero_shot_devices": list(ZERO_SHOT),
            "baseline_budgets": list(BASELINE_BUDGETS), "random_seeds": list(RANDOM_SEEDS),
            "layernas_seeds": list(LAYERNAS_SEEDS), "torch_threads": args.threads,
            "decode": "select (nas.search.modnas.decode.DecodeSettings defaults); each run's 'argmax' holds the same "
                      "hypernetwork decoded by argmax",
            "hv_normalisation": "error=100-accuracy and latency scaled by the true min/max over all 15625 archs per device; reference [1,1]; ratio to the true front's HV",
            "acc_end_gap": "table accuracy of the most accurate table network minus that of the preference-1.0 pick (points)",
            "python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine(),
            "processor": platform.processor(),
        },
        "runs": results,
        "baselines": base_res,
        "device_properties": device_properties(table, train),
        "targets": targets,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")

    t = Table(title="MODNAS on NB201 (cifar10): HV ratio to the true front / accuracy-end gap (points) / distinct networks, 24 rays")
    t.add_column("device")
    t.add_column("split")
    for name in results:
        t.add_column(name, justify="right")
    cols = [f"{a}{b}" for a in ("random", "layernas") for b in BASELINE_BUDGETS]
    for c in cols:
        t.add_column(c, justify="right")

    def cell(r: dict[str, Any]) -> str:
        return f"{r['hv_ratio']:.4f} / {r['acc_end_gap_pts']:.2f} / {r['n_distinct']}"

    for d in table.devices:
        t.add_row(d, split_of(d), *(cell(results[n]["devices"][d]) for n in results),
                  *(f"{base_res[d][c + '_mean']:.4f}" for c in cols))
    for key, splits in (("train+validation", ("train", "validation")), ("zero-shot", ("zero-shot",))):
        devs = [d for d in table.devices if split_of(d) in splits]
        t.add_row(f"[bold]{key}_mean[/bold]", "", *(f"{results[n]['summary'][key + '_mean']:.4f}" for n in results),
                  *(f"{np.mean([base_res[d][c + '_mean'] for d in devs]):.4f}" for c in cols))
    t.add_row("[bold]argmax decoding[/bold]", "", *(
        f"{r['argmax']['summary']['train+validation_mean']:.4f} / {r['argmax']['summary']['acc_end_gap_max_pts']:.2f} / "
        f"{r['argmax']['summary']['n_distinct_mean']:.1f}" if "argmax" in r else "" for r in results.values()), *("" for _ in cols))
    console.print(t)
    props, mgd = report["device_properties"], results["surrogate_mgd_s0"]["devices"]
    say("what sets the held-out devices apart (see device_properties, ceiling_hv_ratio in the JSON):")
    for d in VALIDATION + ZERO_SHOT:
        p, r = props[d], mgd[d]
        say(f"  {d}: best Spearman with a training device {p['best_train_spearman']:.3f}, conv3x3/conv1x1 cost "
            f"{p['conv3x3_per_conv1x1']:.2f}, none-skip {p['none_minus_skip_per_conv1x1']:+.2f} conv1x1; latency "
            f"surrogate Spearman {r.get('latency_spearman_live', float('nan')):.3f}; ceiling with surrogates "
            f"{r.get('surrogate_ceiling_hv_ratio', float('nan')):.4f}, with true latency "
            f"{r.get('ceiling_hv_ratio', {}).get('true_latency', float('nan')):.4f}")
    for k, v in report["targets"].items():
        say(f"{k}: {v}")
    say(f"saved {args.out}")


if __name__ == "__main__":
    main()
