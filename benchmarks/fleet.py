"""Fleet benchmark, SSH part: a remote device over SSH against the same device measured locally.

An sshd is started on loopback (``hwprof.testing_sshd``: throwaway keys, a free
port), so "remote" is this machine reached through SSH: every difference from
the local figures is the SSH path's (transport, artifact shipping, a worker in
another process). In alternating fresh processes: ``hwprof profile`` locally
(device ``ort-cpu``), then through the configured SSH device (``lab``), N NB201
networks each, ``--again`` after the first; the primary latencies of
consecutive local runs (local-vs-local) and of each remote run against the
local run beside it (remote-vs-local) are compared: Spearman and median
|relative difference|. Overhead: wall time per network, remote minus local.

    python benchmarks/fleet.py            # 100 networks, 2 runs of each
    python benchmarks/fleet.py --quick    # 10 networks

Results go to benchmarks/results/fleet.json. (The Ray part of the fleet issue
is not built yet; this script measures the SSH path only and says so.)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

from hwprof.hostinfo import host_metadata  # noqa: E402
from hwprof.remote import SshTarget, trust_host  # noqa: E402
from hwprof.store import Store  # noqa: E402
from hwprof.testing_sshd import local_sshd  # noqa: E402

CLI = "from hwprof.cli.main import run; run()"


def profile(device: str, indices: list[int], db: Path, cache: Path, config: Path, again: bool) -> tuple[float, dict[str, float]]:
    cmd = [sys.executable, "-c", CLI, "profile", "--device", device, "--space", "nb201", "--config", str(config),
           "--indices", ",".join(map(str, indices)), "--db", str(db), "--cache-dir", str(cache), "--drift-every", "0",
           *(["--again"] if again else [])]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"hwprof profile --device {device} failed: {proc.stderr.strip()[-1500:]}")
    with Store(db, create=False) as store:
        run_id = store.runs(device=device)[-1].id
        rows = store.measurements(device=device, run_id=run_id)
    return wall, {r.arch_id: r.latency_ms for r in rows}


def agreement(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    from scipy.stats import spearmanr

    common = sorted(set(a) & set(b))
    x = np.array([a[k] for k in common])
    y = np.array([b[k] for k in common])
    return {"n": len(common), "spearman": float(spearmanr(x, y).statistic),
            "median_abs_rel_diff": float(np.median(np.abs(x - y) / ((x + y) / 2)))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=100)
    ap.add_argument("--runs", type=int, default=2, help="runs of each (local, remote), alternating")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("-o", type=Path, default=ROOT / "benchmarks" / "results" / "fleet.json")
    args = ap.parse_args(argv)
    if args.quick:
        args.n = 10
    indices = sorted(int(i) for i in np.random.default_rng(args.seed).choice(15625, size=args.n, replace=False))
    with tempfile.TemporaryDirectory(prefix="hwprof-fleet-") as tmp, local_sshd(Path(tmp) / "sshd") as server:
        tmp = Path(tmp)
        known = tmp / "known_hosts"
        target = SshTarget(name="lab", host="127.0.0.1", device="ort-cpu", port=server.port, key=server.key,
                           python=server.python, known_hosts=str(known), remote_cache=str(tmp / "remote-cache"))
        trust_host(target, accept=True)
        config = tmp / "hwprof.toml"
        config.write_text(f'[devices.lab]\ntype = "ssh"\nhost = "127.0.0.1"\nport = {server.port}\nkey = "{server.key}"\n'
                          f'python = "{server.python}"\ndevice = "ort-cpu"\nknown_hosts = "{known}"\n'
                          f'remote_cache = "{tmp / "remote-cache"}"\n')
        db, cache = tmp / "fleet.db", tmp / "cache"
        print(f"exporting {args.n} networks (a first local run) ...", flush=True)
        profile("ort-cpu", indices, db, cache, config, again=False)
        local, remote = [], []
        for i in range(args.runs):
            print(f"run {i + 1}/{args.runs}: local, then over SSH ...", flush=True)
            local.append(profile("ort-cpu", indices, db, cache, config, again=True))
            remote.append(profile("lab", indices, db, cache, config, again=i > 0))
    local_local = [agreement(a[1], b[1]) for a, b in zip(local, local[1:])]
    remote_local = [agreement(r[1], lo[1]) for r, lo in zip(remote, local)]
    ll = float(np.mean([p["median_abs_rel_diff"] for p in local_local])) if local_local else None
    rl = float(np.mean([p["median_abs_rel_diff"] for p in remote_local]))
    overhead = float(np.median([r[0] for r in remote]) - np.median([lo[0] for lo in local])) / args.n
    result = {
        "benchmark": "fleet (SSH part)", "n_networks": args.n, "runs": args.runs, "indices": indices,
        "host": host_metadata(("onnxruntime",)),
        "local_vs_local": local_local, "remote_vs_local": remote_local,
        "median_abs_rel_diff": {"local_vs_local": ll, "remote_vs_local": rl, "ratio": rl / ll if ll else None},
        "spearman_remote_vs_local_min": min(p["spearman"] for p in remote_local),
        "wall_per_network_s": {"local": [lo[0] / args.n for lo in local], "remote": [r[0] / args.n for r in remote]},
        "ssh_overhead_per_network_s": overhead,
        "ray": "not built yet",
    }
    args.o.parent.mkdir(parents=True, exist_ok=True)
    args.o.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nmedian |rel diff|: local-vs-local {ll if ll is None else f'{ll:.2%}'}, remote-vs-local {rl:.2%} "
          f"(ratio {result['median_abs_rel_diff']['ratio'] and round(result['median_abs_rel_diff']['ratio'], 2)}, target <= 1.2)")
    print(f"Spearman remote-vs-local (min over runs) {result['spearman_remote_vs_local_min']:.4f} (target >= 0.98)")
    print(f"SSH overhead per network: {overhead * 1000:.0f} ms; wrote {args.o}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
