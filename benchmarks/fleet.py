"""Fleet benchmark: a remote device over SSH, and a Ray fleet of two device nodes, each against local runs.

SSH part (``--parts ssh``). An sshd is started on loopback
(``hwprof.testing_sshd``: throwaway keys, a free port), so "remote" is this
machine reached through SSH: every difference from the local figures is the
SSH path's (transport, artifact shipping, a worker in another process). In
alternating fresh processes: ``hwprof profile`` locally (device ``ort-cpu``),
then through the configured SSH device (``lab``), N NB201 networks each,
``--again`` after the first; the primary latencies of consecutive local runs
(local-vs-local) and of each remote run against the local run beside it
(remote-vs-local) are compared: Spearman and median |relative difference|.
Overhead: wall time per network, remote minus local.

Ray part (``--parts ray``). A local Ray cluster (``hwprof.testing_fleet``)
with two simulated device nodes advertising ``dev:ort-cpu``, each pinned to
its own core (``--cores``, node setting cpu_affinity), against one local
runner pinned to the first of those cores, all through ``hwprof profile`` in
fresh processes with cold export caches (exporting is part of profiling):
local, then ``--ray`` on the fleet, then local again (``--again``, for the
local-vs-local agreement). Networks per minute of wall time (fleet / local,
target >= 1.7) and per-network agreement of the fleet with the first local
run (Spearman, median |relative difference|) next to local-vs-local.

    python benchmarks/fleet.py                     # both parts: 100 networks over SSH, 200 on Ray
    python benchmarks/fleet.py --parts ray -n-ray 20
    python benchmarks/fleet.py --quick             # 10 networks each

Results go to benchmarks/results/fleet.json (one key per part).
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


def profile(
    device: str, indices: list[int], db: Path, cache: Path, config: Path, again: bool, extra: list[str] | None = None
) -> tuple[float, dict[str, float]]:
    """``hwprof profile`` in a fresh process: its wall time and the primary latency per architecture of its run."""
    cmd = [sys.executable, "-c", CLI, "profile", "--device", device, "--space", "nb201", "--config", str(config),
           "--indices", ",".join(map(str, indices)), "--db", str(db), "--cache-dir", str(cache), "--drift-every", "0",
           *(["--again"] if again else []), *(extra or [])]  # fmt: skip
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


def ssh_part(args: argparse.Namespace) -> dict:
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
        print(f"[ssh] exporting {args.n} networks (a first local run) ...", flush=True)
        profile("ort-cpu", indices, db, cache, config, again=False)
        local, remote = [], []
        for i in range(args.runs):
            print(f"[ssh] run {i + 1}/{args.runs}: local, then over SSH ...", flush=True)
            local.append(profile("ort-cpu", indices, db, cache, config, again=True))
            remote.append(profile("lab", indices, db, cache, config, again=i > 0))
    local_local = [agreement(a[1], b[1]) for a, b in zip(local, local[1:])]
    remote_local = [agreement(r[1], lo[1]) for r, lo in zip(remote, local)]
    ll = float(np.mean([p["median_abs_rel_diff"] for p in local_local])) if local_local else None
    rl = float(np.mean([p["median_abs_rel_diff"] for p in remote_local]))
    overhead = float(np.median([r[0] for r in remote]) - np.median([lo[0] for lo in local])) / args.n
    result = {
        "n_networks": args.n, "runs": args.runs, "indices": indices,
        "local_vs_local": local_local, "remote_vs_local": remote_local,
        "median_abs_rel_diff": {"local_vs_local": ll, "remote_vs_local": rl, "ratio": rl / ll if ll else None},
        "spearman_remote_vs_local_min": min(p["spearman"] for p in remote_local),
        "wall_per_network_s": {"local": [lo[0] / args.n for lo in local], "remote": [r[0] / args.n for r in remote]},
        "ssh_overhead_per_network_s": overhead,
    }
    print(f"\n[ssh] median |rel diff|: local-vs-local {ll if ll is None else f'{ll:.2%}'}, remote-vs-local {rl:.2%} "
          f"(ratio {result['median_abs_rel_diff']['ratio'] and round(result['median_abs_rel_diff']['ratio'], 2)}, target <= 1.2)")
    print(f"[ssh] Spearman remote-vs-local (min over runs) {result['spearman_remote_vs_local_min']:.4f} (target >= 0.98)")
    print(f"[ssh] SSH overhead per network: {overhead * 1000:.0f} ms")
    return result


def ray_part(args: argparse.Namespace) -> dict:
    """Two simulated device nodes (one core each) vs one local runner on one of those cores; see the module docstring."""
    from hwprof.fleet import NodeDevice
    from hwprof.testing_fleet import local_fleet

    n = args.n_ray
    indices = sorted(int(i) for i in np.random.default_rng(args.seed + 1).choice(15625, size=n, replace=False))
    cores = [c.strip() for c in args.cores.split(",")]
    if len(cores) != 2:
        raise SystemExit(f"--cores names the two cores of the two device nodes, e.g. 0,1; got {args.cores!r}")
    extra = [*(["--interleave", str(args.interleave)] if args.interleave else [])]
    with tempfile.TemporaryDirectory(prefix="hwprof-ray-") as tmp:
        tmp = Path(tmp)
        nodes = [[NodeDevice("ort-cpu", "ort-cpu", {"cpu_affinity": core})] for core in cores]
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # the helper's loopback cluster; the CLI processes inherit it
        with local_fleet(nodes, tmp / "nodes", connect=False) as fleet:
            config = tmp / "hwprof.toml"
            config.write_text("")  # no remote devices (and no ./hwprof.toml of the caller's)
            print(f"[ray] {n} networks: local runner on core {cores[0]} (cold cache) ...", flush=True)
            local = profile("ort-cpu", indices, tmp / "local.db", tmp / "local-cache", config, again=False,
                            extra=["--set", f"cpu_affinity={cores[0]}", *extra])
            print(f"[ray] {n} networks: Ray fleet of 2 nodes (cores {', '.join(cores)}; cold node caches) ...", flush=True)
            ray = profile("ort-cpu", indices, tmp / "ray.db", tmp / "driver-cache", config, again=False,
                          extra=["--ray", fleet.address, *extra])
            print(f"[ray] {n} networks: local runner again (--again, for local-vs-local) ...", flush=True)
            local2 = profile("ort-cpu", indices, tmp / "local.db", tmp / "local-cache", config, again=True,
                             extra=["--set", f"cpu_affinity={cores[0]}", *extra])
            with Store(tmp / "ray.db", create=False) as store:
                per_node = {}
                for r in store.measurements(device="ort-cpu"):
                    node = str(r.host.get("fleet", {}).get("node_id", "?"))[:8]
                    per_node[node] = per_node.get(node, 0) + 1
    rate = {"local": n * 60.0 / local[0], "ray": n * 60.0 / ray[0]}
    result = {
        "n_networks": n, "indices": indices, "cores": cores, "interleave": args.interleave or "default",
        "wall_s": {"local": local[0], "ray": ray[0], "local_again": local2[0]},
        "networks_per_min": rate, "throughput_ratio": rate["ray"] / rate["local"],
        "ray_vs_local": agreement(ray[1], local[1]), "local_vs_local": agreement(local2[1], local[1]),
        "networks_per_node": per_node,
    }
    print(f"\n{'[ray]':<8}{'networks':>10}{'wall s':>10}{'nets/min':>10}")
    for name in ("local", "ray"):
        print(f"{name:<8}{n:>10}{result['wall_s'][name]:>10.1f}{rate[name]:>10.1f}")
    print(f"[ray] throughput ray/local {result['throughput_ratio']:.2f}x (target >= 1.7); networks per node {per_node}")
    for name in ("ray_vs_local", "local_vs_local"):
        a = result[name]
        print(f"[ray] {name}: Spearman {a['spearman']:.4f}, median |rel diff| {a['median_abs_rel_diff']:.2%} (n={a['n']})")
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", default="ssh,ray", help="comma-separated: ssh, ray")
    ap.add_argument("-n", type=int, default=100, help="networks of the SSH part")
    ap.add_argument("-n-ray", dest="n_ray", type=int, default=200, help="networks of the Ray part")
    ap.add_argument("--runs", type=int, default=2, help="runs of each (local, remote) in the SSH part, alternating")
    ap.add_argument("--cores", default="0,1", help="the cores of the Ray part's two device nodes (the local runner uses the first)")
    ap.add_argument("--interleave", type=int, default=0, help="networks per group in the Ray part (0: hwprof profile's default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("-o", type=Path, default=ROOT / "benchmarks" / "results" / "fleet.json")
    args = ap.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - {"ssh", "ray"})
    if unknown or not parts:
        raise SystemExit(f"--parts: expected ssh and/or ray, got {args.parts!r}")
    if args.quick:
        args.n, args.n_ray = 10, 10
    result: dict = {"benchmark": "fleet", "parts": parts, "host": host_metadata(("onnxruntime", "ray"))}
    if "ssh" in parts:
        result["ssh"] = ssh_part(args)
    if "ray" in parts:
        result["ray"] = ray_part(args)
    args.o.parent.mkdir(parents=True, exist_ok=True)
    args.o.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.o}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
