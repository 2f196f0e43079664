"""Op-level (kernel) predictor on the local CPU: train on NB201 kernels, predict unseen NB201 and FBNet networks.

Every network is exported to ONNX, profiled node by node with onnxruntime's
profiler (ort-cpu settings: one thread, all graph optimisations) and timed as
a whole with ``OrtCpuDevice`` + ``hwprof.protocol``. The ops predictor learns
per-kernel latencies from the node timings of the training networks and the
network overhead from their whole-network latencies, then predicts

- the held-out NB201 networks (op combinations it never saw), and
- FBNet networks (a space it never saw: depthwise 3x3/5x5 convs, grouped 1x1
  convs, channel shuffles, up to 1504 channels).

Two training sets: NB201 alone, and NB201 plus a generic kernel sweep (random
chains of dense/depthwise/grouped convs, pools and shuffles over a range of
widths and resolutions: nn-Meter's remedy for kernels a space does not
contain). A FLOPs-linear fit on the same NB201 networks is the baseline.

Targets use the fastest run (``min``) by default: on a shared host other
processes inflate medians unevenly across the minutes the collection takes;
``--statistic median`` gives the median-based figures.

    python benchmarks/ops_predictor.py            # 60 NB201 (40 train), 20 FBNet, 40 sweep networks, ~5-8 min
    python benchmarks/ops_predictor.py --quick    # 15 NB201 (10 train), 6 FBNet, 10 sweep networks
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

# benchmarks/predictors.py shares its name with the predictors package: keep this folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402

from devices.export import load_onnx_artifact  # noqa: E402
from hwprof.artifacts import export_module  # noqa: E402
from devices.ort_cpu import OrtCpuDevice  # noqa: E402
from devices.ort_profile import NodeProfile, profile_nodes  # noqa: E402
from hwprof.hostinfo import host_metadata  # noqa: E402
from hwprof.protocol import ProtocolSettings  # noqa: E402
from hwprof.types import stable_hash  # noqa: E402
from predictors.features.graph import graph_features  # noqa: E402
from predictors.metrics import evaluate_predictions  # noqa: E402
from predictors.ops import OpsPredictor, lower_for_ort  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PROTOCOL = ProtocolSettings(min_warmup=3, max_warmup=20, min_runs=20, max_runs=200, max_time_s=2.0)
SWEEP_INPUT = (1, 3, 32, 32)


@dataclass
class Profiled:
    """One network: its exported and optimized graphs, node profile and whole-network latency."""

    group: str
    spec: str
    path: str
    optimized_path: str
    profile: NodeProfile
    latency_median_ms: float
    latency_min_ms: float
    repeat_median_ms: float | None = None  # a second measurement, minutes later: the noise floor
    repeat_min_ms: float | None = None

    def latency_ms(self, statistic: str) -> float:
        return self.latency_min_ms if statistic == "min" else self.latency_median_ms

    def repeat_ms(self, statistic: str) -> float | None:
        return self.repeat_min_ms if statistic == "min" else self.repeat_median_ms

    def to_json(self) -> dict[str, Any]:
        return {
            "group": self.group, "spec": self.spec, "path": self.path, "optimized_path": self.optimized_path,
            "profile": self.profile.to_json(), "latency_median_ms": self.latency_median_ms,
            "latency_min_ms": self.latency_min_ms, "repeat_median_ms": self.repeat_median_ms,
            "repeat_min_ms": self.repeat_min_ms,
        }  # fmt: skip

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Profiled":
        return cls(**{**d, "profile": NodeProfile.from_json(d["profile"])})


# --- the kernel sweep -----------------------------------------------------------------------------


def sweep_spec(rng: np.random.Generator) -> list[dict[str, int | str]]:
    """A random chain of generic kernels: the blocks of one sweep network."""
    blocks: list[dict[str, int | str]] = []
    c = int(rng.choice([16, 24, 32, 48, 64]))
    hw = SWEEP_INPUT[2]
    blocks.append({"op": "conv", "k": 3, "stride": 1, "c_out": c, "act": 1})
    for _ in range(int(rng.integers(4, 8))):
        op = str(rng.choice(["conv", "conv", "dw", "dw", "group", "pool", "shuffle"]))
        stride = int(rng.choice([1, 2])) if hw > 4 and op in ("conv", "dw", "pool") else 1
        if op == "conv":
            k = int(rng.choice([1, 1, 3, 5]))
            c_max = 2048 if k == 1 and hw <= 8 else 512 if hw <= 16 else 192
            c_out = int(rng.choice([x for x in (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 1024, 2048) if x <= c_max]))
            blocks.append({"op": op, "k": k, "stride": stride, "c_out": c_out, "act": int(rng.integers(0, 2))})
            c = c_out
        elif op == "dw":
            blocks.append({"op": op, "k": int(rng.choice([3, 5, 7])), "stride": stride, "c_out": c, "act": int(rng.integers(0, 2))})
        elif op == "group" and c % 2 == 0:
            c_out = int(rng.choice([c, 2 * c])) if c <= 512 else c
            blocks.append({"op": op, "k": 1, "stride": 1, "c_out": c_out, "act": int(rng.integers(0, 2)), "groups": 2})
            c = c_out
        elif op == "pool":
            blocks.append({"op": str(rng.choice(["avgpool", "maxpool"])), "k": 3, "stride": stride, "c_out": c, "act": 0})
        elif op == "shuffle" and c % 2 == 0:
            blocks.append({"op": op, "k": 1, "stride": 1, "c_out": c, "act": 0})
        else:
            continue
        hw = -(-hw // stride)
    return blocks


def build_sweep(blocks: list[dict[str, int | str]], seed: int = 0) -> "Any":
    import torch
    from torch import nn

    class Shuffle(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            n, c, h, w = x.shape
            return x.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)

    class Residual(nn.Module):
        def __init__(self, body: nn.Module) -> None:
            super().__init__()
            self.body = body

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.body(x)

    layers: list[nn.Module] = []
    c = SWEEP_INPUT[1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for b in blocks:
            op, k, s, c_out = b["op"], int(b["k"]), int(b["stride"]), int(b["c_out"])
            if op in ("conv", "dw", "group"):
                groups = c if op == "dw" else int(b.get("groups", 1))
                body = [nn.Conv2d(c, c_out, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(c_out)]
                if b["act"]:
                    body.append(nn.ReLU())
                block = nn.Sequential(*body)
                # stride-1 same-width blocks get a residual, like the inverted residuals of mobile spaces
                layers.append(Residual(block) if s == 1 and c_out == c and op != "group" else block)
            elif op == "avgpool":
                layers.append(nn.AvgPool2d(k, s, k // 2))
            elif op == "maxpool":
                layers.append(nn.MaxPool2d(k, s, k // 2))
            elif op == "shuffle":
                layers.append(Shuffle())
            c = c_out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 100)]
        return nn.Sequential(*layers).eval()


# --- collection ------------------------------------------------------------------------------------


def profile_one(
    group: str, spec: str, key: dict[str, Any], build: Callable[[], Any], input_shape: tuple[int, ...],
    cache: Path, device: OrtCpuDevice, opt_dir: Path, n_profile_runs: int,
) -> Profiled:  # fmt: skip
    art = export_module(build, input_shape, cache, stable_hash(key))
    prof = profile_nodes(art, opt_dir, n_runs=n_profile_runs, n_warmup=10, device=device)
    m = device.measure(art, PROTOCOL)
    return Profiled(
        group=group,
        spec=spec,
        path=art.path,
        optimized_path=prof.optimized_model_path,
        profile=prof.profile,
        latency_median_ms=m.stats.median_ms,
        latency_min_ms=m.stats.min_ms,
    )


def collect(
    n_nb201: int, n_fbnet: int, n_sweep: int, seed: int, cache_dir: Path, n_profile_runs: int,
    log: Callable[[str], None] = lambda s: None,
) -> list[Profiled]:  # fmt: skip
    from nas.spaces.fbnet import FBNetSpace
    from nas.spaces.nb201 import NB201Space


    device = OrtCpuDevice()
    opt_dir = cache_dir / "ops-benchmark-optimized"
    jobs: list[tuple[str, str, dict[str, Any], Callable[[], Any], tuple[int, ...]]] = []
    for space, n in ((NB201Space(), n_nb201), (FBNetSpace(), n_fbnet)):
        for arch in space.sample(n, np.random.default_rng(seed)):
            jobs.append((space.name, arch.spec, arch.to_json(), (lambda s=space, a=arch: s.build(a, seed=0)), space.input_shape))
    rng = np.random.default_rng(seed + 1)
    for i in range(n_sweep):
        blocks = sweep_spec(rng)
        spec = json.dumps(blocks, separators=(",", ":"))
        jobs.append(("sweep", spec, {"space": "kernel-sweep", "spec": spec}, (lambda b=blocks: build_sweep(b)), SWEEP_INPUT))
    out = []
    for i, (group, spec, key, build, shape) in enumerate(jobs, start=1):
        t0 = time.perf_counter()
        out.append(profile_one(group, spec, key, build, shape, cache_dir, device, opt_dir, n_profile_runs))
        log(f"[{i}/{len(jobs)}] {group}: {out[-1].latency_min_ms:.3f} ms (min), {time.perf_counter() - t0:.1f} s")
    return out


def remeasure(records: list[Profiled]) -> None:
    """Measure networks once more: no predictor agrees with the measurements better than they agree with themselves."""
    device = OrtCpuDevice()
    for r in records:
        m = device.measure(load_onnx_artifact(r.path), PROTOCOL)
        r.repeat_median_ms, r.repeat_min_ms = m.stats.median_ms, m.stats.min_ms


def split(records: list[Profiled], n_train: int) -> tuple[list[Profiled], list[Profiled], list[Profiled], list[Profiled]]:
    """(NB201 train, NB201 held out, FBNet, sweep)."""
    nb = [r for r in records if r.group == "nb201"]
    return nb[:n_train], nb[n_train:], [r for r in records if r.group == "fbnet"], [r for r in records if r.group == "sweep"]


# --- evaluation --------------------------------------------------------------------------------------


def _fit(train: list[Profiled], statistic: str, seed: int) -> tuple[OpsPredictor, float]:
    t0 = time.perf_counter()
    model = OpsPredictor(random_state=seed).fit_graphs(
        [r.optimized_path for r in train],
        [r.profile.node_latency_ms(statistic) for r in train],
        [r.latency_ms(statistic) for r in train],
        lowered=True,
    )
    return model, time.perf_counter() - t0


def _global_share(model: OpsPredictor, lowered: list[Any]) -> float:
    """Fraction of the predicted node time that came from kinds never seen in training."""
    total = fallback = 0.0
    for g in lowered:
        for p in model.predict_nodes(g, lowered=True):
            total += p.latency_ms
            fallback += p.latency_ms if p.source == "global" else 0.0
    return fallback / total if total else 0.0


def evaluate(records: list[Profiled], n_train: int, statistic: str, seed: int) -> dict[str, Any]:
    train, test_nb, fb, sweep = split(records, n_train)
    tests = {"nb201_heldout": test_nb, "fbnet": fb}
    out: dict[str, Any] = {"variants": {}}
    # The predictor lowers raw graphs itself; do it once here and time it separately.
    t0 = time.perf_counter()
    lowered = {name: [lower_for_ort(r.path) for r in nets] for name, nets in tests.items()}
    out["lowering_s_per_network"] = (time.perf_counter() - t0) / max(1, len(test_nb) + len(fb))

    # Baseline: latency = a * FLOPs + b on the NB201 training networks.
    flops_train = np.array([graph_features(r.path)["flops"] for r in train])
    a, b = np.polyfit(flops_train, [r.latency_ms(statistic) for r in train], 1)
    baseline = {}
    for name, nets in tests.items():
        if len(nets) >= 2:
            pred = a * np.array([graph_features(r.path)["flops"] for r in nets]) + b
            baseline[name] = evaluate_predictions([r.latency_ms(statistic) for r in nets], np.maximum(pred, 1e-6)).to_json()
    out["variants"]["flops_linear"] = {"train": f"{len(train)} NB201", "metrics": baseline}
    repeat = {}
    for name, nets in tests.items():
        if len(nets) >= 2 and all(r.repeat_ms(statistic) is not None for r in nets):
            repeat[name] = evaluate_predictions([r.latency_ms(statistic) for r in nets], [r.repeat_ms(statistic) for r in nets]).to_json()
    out["variants"]["measurement_repeat"] = {"train": "(second measurement)", "metrics": repeat}

    for variant, train_set in (("ops_nb201", train), ("ops_nb201_sweep", train + sweep)):
        if variant == "ops_nb201_sweep" and not sweep:
            continue
        model, fit_s = _fit(train_set, statistic, seed)
        entry: dict[str, Any] = {
            "train": f"{len(train)} NB201" + (f" + {len(sweep)} sweep" if train_set is not train else ""),
            "n_train_nodes": model.n_train_,
            "kinds": {model.kind_names_.get(k, str(k)): n for k, n in sorted(model.kind_counts_.items())},
            "overhead": {"scale": model.overhead_[0], "o0_ms": model.overhead_[1], "o1_ms_per_node": model.overhead_[2]},
            "fit_s": fit_s,
            "metrics": {},
        }
        for name, nets in tests.items():
            if len(nets) < 2:
                continue
            t0 = time.perf_counter()
            pred = model.predict_graphs(lowered[name], lowered=True)
            entry.setdefault("predict_s_per_network", {})[name] = (time.perf_counter() - t0) / len(nets)
            entry["metrics"][name] = evaluate_predictions([r.latency_ms(statistic) for r in nets], pred).to_json()
            entry.setdefault("unseen_kind_share", {})[name] = _global_share(model, lowered[name])
        out["variants"][variant] = entry

    # The profiler's own view: run total vs sum of node times (with the profiler on).
    prof_fraction = [1 - r.profile.node_sum_median_ms / r.profile.run_median_ms for r in records]
    node_vs_net = [sum(r.profile.node_latency_ms(statistic).values()) / r.latency_ms(statistic) for r in records]
    out["profile_overhead"] = {
        "median_run_overhead_fraction": float(np.median(prof_fraction)),
        "median_node_sum_over_network_latency": float(np.median(node_vs_net)),
    }
    return out


def run_benchmark(
    n_nb201: int = 60, n_train: int = 40, n_fbnet: int = 20, n_sweep: int = 40, seed: int = 0,
    statistics: tuple[str, ...] = ("min", "median"), cache_dir: Path = ROOT / ".hwprof-cache",
    n_profile_runs: int = 30, records_path: str | Path | None = None, log: Callable[[str], None] = lambda s: None,
) -> dict[str, Any]:  # fmt: skip
    if not 3 <= n_train < n_nb201:
        raise ValueError(f"need 3 <= n_train < n_nb201, got n_train={n_train}, n_nb201={n_nb201}")
    t0 = time.perf_counter()
    if records_path is not None and Path(records_path).is_file():
        # Re-evaluate earlier measurements (the graphs must still be in the cache).
        records = [Profiled.from_json(d) for d in json.loads(Path(records_path).read_text())]
        log(f"re-using {len(records)} profiled networks from {records_path}")
    else:
        records = collect(n_nb201, n_fbnet, n_sweep, seed, cache_dir, n_profile_runs, log)
        _, test_nb, fb, _ = split(records, n_train)
        remeasure(test_nb + fb)
        log(f"re-measured the {len(test_nb) + len(fb)} test networks")
        if records_path is not None:
            Path(records_path).parent.mkdir(parents=True, exist_ok=True)
            Path(records_path).write_text(json.dumps([r.to_json() for r in records]))
    collect_s = time.perf_counter() - t0
    result: dict[str, Any] = {
        "settings": {
            "n_nb201": n_nb201, "n_train": n_train, "n_fbnet": n_fbnet, "n_sweep": n_sweep, "seed": seed,
            "n_profile_runs": n_profile_runs, "protocol": PROTOCOL.to_json(), "device": dict(OrtCpuDevice().settings),
            "collect_s": collect_s, "loadavg_after_collect": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        },  # fmt: skip
        "host": host_metadata(("onnxruntime", "xgboost")),
        "by_statistic": {s: evaluate(records, n_train, s, seed) for s in statistics},
    }
    result["settings"]["wall_s"] = time.perf_counter() - t0
    return result


def _table(result: dict[str, Any]) -> "Any":
    from rich.table import Table

    t = Table(title="ops predictor on ort-cpu (1 thread): predicted vs measured network latency")
    for col in ("target", "model", "trained on", "test set", "n", "MAPE", "±5%", "±10%", "Spearman", "Kendall", "unseen-kind share"):
        t.add_column(col, justify="left" if col in ("target", "model", "trained on", "test set") else "right")
    for stat, ev in result["by_statistic"].items():
        for variant, entry in ev["variants"].items():
            for test, m in entry["metrics"].items():
                share = entry.get("unseen_kind_share", {}).get(test)
                t.add_row(
                    stat, variant, entry["train"], test, str(m["n"]), f"{m['mape']:.3f}", f"{m['within_5pct']:.2f}",
                    f"{m['within_10pct']:.2f}", f"{m['spearman']:.3f}", f"{m['kendall_tau']:.3f}",
                    "-" if share is None else f"{share:.2f}",
                )  # fmt: skip
    return t


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="15 NB201 (10 train), 6 FBNet, 10 sweep networks")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--statistic", choices=("min", "median", "both"), default="both")
    p.add_argument("-o", "--out", default=str(Path(__file__).parent / "results" / "ops_predictor.json"))
    p.add_argument("--records", default=None, help="save the profiled networks here, or re-evaluate them if the file exists")
    args = p.parse_args(argv)
    sizes = dict(n_nb201=15, n_train=10, n_fbnet=6, n_sweep=10) if args.quick else {}
    stats = ("min", "median") if args.statistic == "both" else (args.statistic,)
    console = Console(width=max(Console().width, 150))
    result = run_benchmark(seed=args.seed, statistics=stats, records_path=args.records, log=console.log, **sizes)
    result["settings"]["mode"] = "quick" if args.quick else "full"
    console.print(_table(result))
    for stat, ev in result["by_statistic"].items():
        po = ev["profile_overhead"]
        console.print(
            f"[{stat}] profiler: run total - node sum = {po['median_run_overhead_fraction']:.1%} of the run; "
            f"node sum / network latency = {po['median_node_sum_over_network_latency']:.2f}"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    console.print(f"wrote {out} ({result['settings']['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
