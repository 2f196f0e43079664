"""MODNAS training: one hypernetwork for many devices and every accuracy/latency trade-off.

Set-up (once per output directory, kept there so a resumed run skips it):
reference architectures, device embeddings, the frozen latency surrogate and,
in surrogate mode, the accuracy surrogate (supernet mode builds the supernet
and its data instead).

Each step samples ``tasks_per_step`` tasks — a training device and a
preference r ~ Dirichlet(alpha) each — asks the hypernetwork for their logits,
draws ``samples_per_task`` straight-through architecture samples per task and
computes both normalised objectives. Task t's loss is its preference r_t applied
to them, per sample, by the configured scalarisation (Chebyshev by default, or
the weighted sum r_t . L_t; see ``objectives``), averaged over the samples. With ``combine="mgd"`` the tasks' gradients with respect to the
hypernetwork are normalised and joined at their min-norm point (Frank-Wolfe),
the update that does not make any sampled (device, preference) task worse — as
in the reference implementation of MODNAS; ``combine="linear"`` averages them.
The preference enters through the scalarisation: it decides *which* point of
the front a task pulls towards, MGD decides how conflicting pulls are
reconciled in the shared weights.

Supernet mode alternates this with SGD steps of the supernet weights on
architectures sampled from the hypernetwork (after a warm-up on uniformly
random architectures).

Checkpoints (``checkpoint.pt`` + ``checkpoint.json``) are written every
``checkpoint_every`` steps and the run resumes from them bit-for-bit:
every random draw comes from generators whose state is checkpointed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from hwprof import __version__
from hwprof.errors import ConfigError, PersistenceError, UnknownNameError
from nas.search.modnas.config import ModnasConfig
from nas.search.modnas.hypernet import HyperNetwork
from nas.search.modnas.mgd import min_norm_weights
from nas.search.modnas.model import (
    CHECKPOINT_META,
    FORMAT,
    FORMAT_VERSION,
    LATENCY_DIR,
    META_FILE,
    ModnasModel,
    _atomic_torch_save,
    _atomic_write_text,
    load_latency_surrogate,
    load_state,
)
from nas.search.modnas.objectives import NormalisedLatency, SupernetError, SurrogateError, scalarise
from nas.search.modnas.refs import nb201_references
from nas.search.modnas.sampling import sample
from nas.search.modnas.supernet import NB201Supernet
from nas.search.modnas.surrogates import AccuracySurrogate, FitReport, fit_accuracy_surrogate, fit_latency_surrogate
from predictors.persistence import save as save_predictor

SETUP_META = "setup.json"
CHECKPOINT_FILE = "checkpoint.pt"


@dataclass(frozen=True)
class ModnasProgress:
    """Sent to ``on_progress``: a phase ("accuracy surrogate", "latency surrogate", "hypernetwork", "done"),
    how far it is, and the latest numbers of that phase."""

    phase: str
    done: int
    total: int
    info: dict[str, float] = field(default_factory=dict)


Progress = Callable[[ModnasProgress], None]


SETUP_FILES = (SETUP_META, "accuracy_surrogate.pt", LATENCY_DIR)


def reuse_setup(source: str | Path, config: ModnasConfig) -> bool:
    """Seed ``config.out_dir`` with the set-up of the run in ``source`` when both runs need the same one.

    Saves refitting the surrogates for an ablation of the search itself. Returns
    False (and copies nothing) when the set-ups differ, ``source`` has none, or
    the output directory already holds one.
    """
    import shutil

    src, out = Path(source), Path(config.out_dir)
    try:
        same = json.loads((src / SETUP_META).read_text(encoding="utf-8")).get("setup_hash") == config.setup_hash()
    except (OSError, ValueError):
        return False
    if not same or (out / SETUP_META).exists():
        return False
    out.mkdir(parents=True, exist_ok=True)
    for name in SETUP_FILES[1:]:
        if (src / name).is_dir():
            shutil.copytree(src / name, out / name)
        elif (src / name).is_file():
            shutil.copy2(src / name, out / name)
    shutil.copy2(src / SETUP_META, out / SETUP_META)  # last: a half-copied set-up is never taken for a whole one
    return True


# --- set-up -------------------------------------------------------------------------------
class _Setup:
    """What every step needs, built once (or read back from the output directory)."""

    def __init__(
        self, config: ModnasConfig, out: Path, on_progress: Progress | None, profile_missing: bool = False,
        profile_protocol: Any | None = None,
    ) -> None:
        from nas.spaces.nb201 import NB201Space
        from nas.tabular import load_nb201

        self.config = config
        self.supernet: NB201Supernet | None = None
        table = load_nb201(config.table)
        if config.dataset not in table.accuracy:
            raise UnknownNameError(f"modnas: unknown dataset {config.dataset!r}; known: {', '.join(table.accuracy)}")
        devices = list(config.devices) if config.devices is not None else table.devices
        unknown = [d for d in devices if d not in table.latency_ms]
        if unknown:
            raise UnknownNameError(f"modnas: no latency column for device(s) {unknown} in the table; known: {', '.join(table.devices)}")
        self.table_devices = devices
        self.devices = devices + list(config.store_devices or ())  # store devices last
        self.store_refs: dict[str, np.ndarray] = {}  # store device -> its reference latencies (ms)
        self.store_meta: dict[str, Any] = {}
        self.space = NB201Space()
        archs = table.archs
        rows = np.arange(len(archs))
        if config.max_table_archs is not None and config.max_table_archs < len(archs):
            rows = np.sort(np.random.default_rng(config.seed).choice(len(archs), config.max_table_archs, replace=False))
        self.rows = rows
        choices = np.asarray([self.space.choices_from_spec(a) for a in archs], dtype=np.int64)
        self.enc_all = torch.from_numpy(self.space.encode_choices(choices))
        self.layer_sizes = [len(opts) for _, opts in self.space.layers]

        setup_path = out / SETUP_META
        if setup_path.is_file():
            self._read(out, table)
        else:
            self._build(out, table, on_progress, profile_missing, profile_protocol)
        if config.mode == "surrogate":
            assert self.accuracy is not None
            self.error = SurrogateError(self.accuracy, self.enc_all, config.objective_scale)
        else:
            self._build_supernet(out)
        self.latency_obj = NormalisedLatency(self.latency, self.enc_all, self.embeddings, config.objective_scale)

    def _reference_latencies(self, table, device: str) -> np.ndarray:
        if device in self.store_refs:
            return self.store_refs[device]
        return self.refs.latencies_from_table(table.archs, table.latency_ms[device])

    def _embeddings(self, table) -> torch.Tensor:
        return torch.from_numpy(np.stack([self.refs.embedding(self._reference_latencies(table, d)) for d in self.devices]))

    def _build(
        self, out: Path, table, on_progress: Progress | None, profile_missing: bool, profile_protocol: Any | None,
    ) -> None:
        cfg = self.config
        self.refs = nb201_references(table, self.table_devices, cfg.n_refs, cfg.seed)
        stored = []
        if cfg.store_devices:
            from nas.search.modnas.store_training import store_training_devices

            stored = store_training_devices(
                cfg.store_db, cfg.store_devices, self.table_devices, self.refs.specs, profile_missing, profile_protocol,
                None if on_progress is None else (lambda phase, done, total: on_progress(ModnasProgress(phase, done, total))),
            )
            self.store_refs = {d.name: d.reference_latencies_ms for d in stored}
        self.embeddings = self._embeddings(table)
        enc = self.enc_all.numpy()[self.rows]
        relative = []
        for d in self.table_devices:
            ref_lat = self.refs.latencies_from_table(table.archs, table.latency_ms[d])
            relative.append(table.latency_ms[d][self.rows] / np.exp(np.log(ref_lat).mean()))
        n_table = len(self.table_devices)
        store_embeddings = self.embeddings.numpy()[n_table:]
        extra = None
        if stored:
            from nas.search.modnas.store_training import in_sample_fit, latency_rows

            extra = latency_rows(self.space, stored, store_embeddings)

        def prog(phase: str) -> Callable[[int, int], None] | None:
            if on_progress is None:
                return None
            return lambda done, total: on_progress(ModnasProgress(phase, done, total))

        self.latency, lat_report = fit_latency_surrogate(
            self.space, enc, np.stack(relative), self.embeddings.numpy()[:n_table], hidden=cfg.surrogate_hidden,
            epochs=cfg.latency_epochs, seed=cfg.seed, progress=prog("latency surrogate"), extra=extra,
        )
        self.store_meta = {d.name: {**d.to_json(), "fit_in_sample": in_sample_fit(self.latency, self.space, d, e)}
                           for d, e in zip(stored, store_embeddings)}
        self.accuracy: AccuracySurrogate | None = None
        acc_report: FitReport | None = None
        if cfg.mode == "surrogate":
            error = 100.0 - table.accuracy[cfg.dataset][self.rows]
            self.accuracy, acc_report = fit_accuracy_surrogate(
                enc, error, hidden=cfg.surrogate_hidden, epochs=cfg.accuracy_epochs, seed=cfg.seed,
                progress=prog("accuracy surrogate"),
            )
            _atomic_torch_save(self.accuracy.state_dict(), out / "accuracy_surrogate.pt")
        save_predictor(self.latency.predictor, out / LATENCY_DIR, extra={"role": "MODNAS device-conditioned latency surrogate"})
        self.reports = {"latency_surrogate": lat_report.to_json(),
                        "accuracy_surrogate": acc_report.to_json() if acc_report else None}
        _atomic_write_text(out / SETUP_META, json.dumps({
            "setup_hash": cfg.setup_hash(), "config": cfg.to_json(), "references": self.refs.to_json(), "devices": self.devices,
            "reports": self.reports, **({"store_devices": self.store_meta} if self.store_meta else {}),
        }, indent=1) + "\n")

    def _read(self, out: Path, table) -> None:
        from nas.search.modnas.refs import ReferenceSet

        try:
            meta = json.loads((out / SETUP_META).read_text(encoding="utf-8"))
            if meta["setup_hash"] != self.config.setup_hash():
                raise ConfigError(
                    f"modnas: {str(out)!r} holds the set-up of a different configuration"
                    f"{_naming(self.config.differences(meta.get('config'), setup_only=True))}; use another output directory"
                )
            self.refs = ReferenceSet.from_json(meta["references"])
            self.reports = meta["reports"]
            self.store_meta = meta.get("store_devices", {})
            self.store_refs = {d: np.asarray(self.store_meta[d]["reference_latencies_ms"], dtype=np.float64)
                               for d in self.config.store_devices or ()}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise PersistenceError(f"cannot read {str(out / SETUP_META)!r} ({exc}); delete the directory to start over") from None
        self.embeddings = self._embeddings(table)
        width = self.enc_all.shape[1]
        self.latency = load_latency_surrogate(out / LATENCY_DIR, width, len(self.refs))
        self.accuracy = None
        if self.config.mode == "surrogate":
            self.accuracy = AccuracySurrogate(width, self.config.surrogate_hidden)
            self.accuracy.load_state_dict(load_state(out / "accuracy_surrogate.pt"))
            self.accuracy.eval()

    def _build_supernet(self, out: Path) -> None:
        from nas.evaluators.data import load_digits_data

        cfg = self.config
        s = cfg.supernet_input_size
        self.data = load_digits_data((3, s, s), seed=cfg.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.supernet = NB201Supernet(cfg.supernet_channels, cfg.supernet_cells, self.data.num_classes)
        self.error = SupernetError(self.supernet, self.data.num_classes)


# --- gradients ------------------------------------------------------------------------------
def per_task_gradients(hypernet: HyperNetwork, emb: torch.Tensor, pref: torch.Tensor, cotangent: torch.Tensor) -> torch.Tensor:
    """(tasks, parameters): each task's gradient J_t^T c_t, where c_t = d loss_t / d logits_t.

    One batched forward, then one vector-Jacobian product per task (the
    hypernetwork has no batch coupling, so row t of its output depends only on
    task t). A loop of small backward passes: cheaper here than ``torch.func.vmap``,
    whose first call costs seconds.
    """
    params = list(hypernet.parameters())
    logits = hypernet(emb, pref)
    rows = []
    for t in range(emb.shape[0]):
        grads = torch.autograd.grad(logits[t], params, cotangent[t], retain_graph=t < emb.shape[0] - 1, allow_unused=True)
        rows.append(torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(params, grads)]))
    return torch.stack(rows)


def mgd_direction(grads: torch.Tensor) -> tuple[torch.Tensor, np.ndarray]:
    """Min-norm point of the normalised non-zero rows of ``grads``, and the weights of all rows."""
    norms = grads.norm(dim=1)
    keep = torch.nonzero(norms > 0).flatten()
    weights = np.zeros(grads.shape[0])
    if keep.numel() == 0:
        return torch.zeros(grads.shape[1]), weights
    unit = grads[keep] / norms[keep, None]
    gram = (unit.double() @ unit.double().T).numpy()
    w = min_norm_weights(gram)
    weights[keep.numpy()] = w
    return torch.from_numpy(w).to(unit.dtype) @ unit, weights


def _assign_flat_grad(module: torch.nn.Module, flat: torch.Tensor) -> None:
    offset = 0
    for p in module.parameters():
        n = p.numel()
        p.grad = flat[offset : offset + n].view_as(p).clone()
        offset += n


# --- the run ----------------------------------------------------------------------------------
class _Run:
    def __init__(self, config: ModnasConfig, setup: _Setup) -> None:
        cfg = config
        self.cfg = cfg
        self.setup = setup
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed + 1)
            self.hypernet = HyperNetwork(len(setup.refs), setup.layer_sizes, 2, cfg.hidden)
        self.opt = torch.optim.Adam(self.hypernet.parameters(), lr=cfg.lr)
        self.rng = np.random.default_rng(cfg.seed)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.step = 0
        self.last: dict[str, float] = {}
        self.supernet_opt = None
        if cfg.mode == "supernet":
            self.supernet_opt = torch.optim.SGD(setup.supernet.parameters(), lr=cfg.supernet_lr, momentum=0.9, weight_decay=3e-4)

    # --- checkpoints ---------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        s: dict[str, Any] = {"hypernet": self.hypernet.state_dict(), "opt": self.opt.state_dict(),
                             "gen": self.gen.get_state()}
        if self.supernet_opt is not None:
            s["supernet"] = self.setup.supernet.state_dict()
            s["supernet_opt"] = self.supernet_opt.state_dict()
        return s

    def save_checkpoint(self, out: Path, wall_s: float) -> None:
        _atomic_torch_save(self.state(), out / CHECKPOINT_FILE)
        _atomic_write_text(out / CHECKPOINT_META, json.dumps({
            "run_hash": self.cfg.run_hash(), "config": self.cfg.to_json(), "step": self.step, "steps": self.cfg.steps,
            "numpy_rng": self.rng.bit_generator.state, "wall_s": wall_s, "last": self.last,
        }) + "\n")

    def load_checkpoint(self, out: Path) -> float:
        try:
            meta = json.loads((out / CHECKPOINT_META).read_text(encoding="utf-8"))
            if meta["run_hash"] != self.cfg.run_hash():
                raise ConfigError(
                    f"modnas: {str(out)!r} holds a checkpoint of a different configuration"
                    f"{_naming(self.cfg.differences(meta.get('config')))}; use another output directory"
                )
            step, rng_state, wall_s = int(meta["step"]), meta["numpy_rng"], float(meta["wall_s"])
            self.last = {k: float(v) for k, v in meta.get("last", {}).items()}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise PersistenceError(f"cannot read {str(out / CHECKPOINT_META)!r} ({exc}); delete the directory to start over") from None
        state = load_state(out / CHECKPOINT_FILE)
        self.hypernet.load_state_dict(state["hypernet"])
        self.opt.load_state_dict(state["opt"])
        self.gen.set_state(state["gen"])
        if self.supernet_opt is not None:
            self.setup.supernet.load_state_dict(state["supernet"])
            self.supernet_opt.load_state_dict(state["supernet_opt"])
        self.rng.bit_generator.state = rng_state
        self.step = step
        return wall_s

    # --- one step ------------------------------------------------------------------------
    def _tasks(self, n: int) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
        rows = self.rng.integers(len(self.setup.devices), size=n)
        prefs = self.rng.dirichlet(np.asarray(self.cfg.dirichlet_alpha, dtype=np.float64), size=n)
        return rows, self.setup.embeddings[rows], torch.from_numpy(prefs.astype(np.float32))

    def _minibatch(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(0, x.shape[0], (self.cfg.supernet_batch_size,), generator=self.gen)
        return x[idx], y[idx]

    def supernet_step(self, warmup: bool) -> float:
        """One SGD step of the supernet weights on one architecture (uniform during warm-up)."""
        data = self.setup.data
        net = self.setup.supernet
        if warmup:
            logits = torch.zeros(len(self.setup.layer_sizes), self.hypernet.width)
        else:
            _, emb, pref = self._tasks(1)
            with torch.no_grad():
                logits = self.hypernet(emb, pref)[0]
        with torch.no_grad():
            w = sample("gdas", logits, 1.0, self.gen)  # a hard one-hot architecture
        x, y = self._minibatch(data.x_train, data.y_train)
        net.train()
        loss = torch.nn.functional.cross_entropy(net(x, w, full=False), y)
        self.supernet_opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        self.supernet_opt.step()
        return float(loss.detach())

    def hypernet_step(self, tau: float, entropy_weight: float = 0.0) -> dict[str, float]:
        cfg, setup = self.cfg, self.setup
        B, S = cfg.tasks_per_step, cfg.samples_per_task
        rows, emb, pref = self._tasks(B)
        logits = self.hypernet(emb, pref)
        lg = logits.detach().requires_grad_(True)
        L, K = lg.shape[1], lg.shape[2]
        y = sample(cfg.sampler, lg[:, None].expand(B, S, L, K), tau, self.gen)
        flat_y = y.reshape(B * S, L, K)
        enc = self.hypernet.encoding(flat_y)
        batch = None
        if cfg.mode == "supernet":
            setup.supernet.train()
            batch = self._minibatch(setup.data.x_val, setup.data.y_val)
        err = setup.error(enc, flat_y, batch).reshape(B, S)
        dev_rows = torch.from_numpy(np.repeat(rows, S))
        lat = setup.latency_obj(enc, emb.repeat_interleave(S, 0), dev_rows).reshape(B, S)
        per_sample = torch.stack([err, lat], dim=-1)  # (B, S, 2)
        scalar = scalarise(per_sample, pref[:, None], cfg.scalarisation).mean(dim=1)  # (B,)
        obj = per_sample.mean(dim=1)  # (B, 2)
        task_loss = scalar
        if entropy_weight > 0:
            logp = torch.log_softmax(lg, dim=-1)
            # mean normalised entropy per layer (1 = uniform); masked options have p = 0
            ent = -(logp.exp() * logp).sum(-1) / torch.log(torch.tensor(setup.layer_sizes, dtype=lg.dtype).clamp_min(2.0))
            task_loss = task_loss - entropy_weight * ent.mean(-1)
        self.opt.zero_grad(set_to_none=True)
        d = obj.detach()
        info = {"error": float(d[:, 0].mean()), "latency": float(d[:, 1].mean()), "loss": float(scalar.detach().mean())}
        if cfg.combine == "linear":
            (c,) = torch.autograd.grad(task_loss.mean(), lg)
            logits.backward(c)
        else:
            (c,) = torch.autograd.grad(task_loss.sum(), lg)
            grads = per_task_gradients(self.hypernet, emb, pref, c)
            direction, weights = mgd_direction(grads)
            _assign_flat_grad(self.hypernet, direction)
            info["mgd_active"] = float((weights > 1e-6).sum())
        self.opt.step()
        return info


def _check_out_dir(out: Path, config: ModnasConfig) -> bool:
    """True when ``out`` already holds this very run, finished."""
    meta_path = out / META_FILE
    if not meta_path.is_file():
        return False
    meta: Any = None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        same = meta.get("run_hash") == config.run_hash()
    except (OSError, ValueError, AttributeError):
        same = False
    if not same:
        recorded = meta.get("config") if isinstance(meta, dict) else None
        raise ConfigError(
            f"modnas: {str(out)!r} already holds a trained hypernetwork of a different configuration"
            f"{_naming(config.differences(recorded))}; choose another output directory"
        )
    return True


def _naming(differences: str) -> str:
    return f" ({differences})" if differences else ""


def train_modnas(
    config: ModnasConfig,
    on_progress: Progress | None = None,
    *,
    profile_missing: bool = False,
    profile_protocol: Any | None = None,
) -> Path:
    """Train (or resume, or find finished) the hypernetwork of ``config`` in ``config.out_dir``; returns that directory.

    ``profile_missing``: measure the reference networks a store device lacks
    (``config.store_devices``) before the set-up, through hwprof's Profiler
    (``profile_protocol``, default ``hwprof profile``'s); otherwise such a device is refused.
    """
    out = Path(config.out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"modnas: output path {str(out)!r} exists and is not a directory")
    if _check_out_dir(out, config):
        return out
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    setup = _Setup(config, out, on_progress, profile_missing, profile_protocol)
    run = _Run(config, setup)
    spent = 0.0
    if (out / CHECKPOINT_META).is_file():
        spent = run.load_checkpoint(out)
    schedule = config.temperature
    total = config.steps
    while run.step < total:
        if config.mode == "supernet":
            warm = run.step < config.supernet_warmup_steps
            run.last["supernet_ce"] = run.supernet_step(warmup=warm)
            if not warm:
                run.last.update(run.hypernet_step(schedule(run.step, total), config.entropy_at(run.step, total)))
        else:
            run.last = run.hypernet_step(schedule(run.step, total), config.entropy_at(run.step, total))
        run.step += 1
        if run.step % config.checkpoint_every == 0 or run.step == total:
            run.save_checkpoint(out, spent + time.perf_counter() - start)
        if on_progress is not None:
            on_progress(ModnasProgress("hypernetwork", run.step, total, dict(run.last, tau=schedule(run.step - 1, total))))
    wall_s = spent + time.perf_counter() - start
    _finish(out, config, setup, run, wall_s)
    if on_progress is not None:
        on_progress(ModnasProgress("done", total, total, {"wall_s": wall_s}))
    return out


def _finish(out: Path, config: ModnasConfig, setup: _Setup, run: _Run, wall_s: float) -> None:
    meta: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "hwprof_version": __version__,
        "status": "trained",
        "run_hash": config.run_hash(),
        "config": config.to_json(),
        "space": setup.space.name,
        "mode": config.mode,
        "objectives": ["accuracy", "latency"],
        "accuracy_source": (
            f"surrogate: MLP fitted on the {config.dataset} test accuracies of the NB201 table (a model, not a measurement)"
            if config.mode == "surrogate"
            else f"supernet: weight-sharing NB201 supernet trained on digits ({config.supernet_input_size}x{config.supernet_input_size})"
        ),
        "references": setup.refs.to_json(),
        "train_devices": list(setup.devices),
        "train_embeddings": {d: [float(v) for v in e] for d, e in zip(setup.devices, setup.embeddings.numpy())},
        "latency_normalisation": {d: [float(a), float(b)] for d, (a, b) in zip(setup.devices, setup.latency_obj.ranges())},
        "hypernet": run.hypernet.config(),
        "latency_surrogate": {"width": setup.latency.width, "embed_dim": setup.latency.embed_dim,
                              "predictor": f"predictors.mlp.MLPPredictor in {LATENCY_DIR}/",
                              "target": "latency / geometric mean of the reference latencies (log scale)",
                              "fit": setup.reports["latency_surrogate"]},
        "accuracy_surrogate": None if setup.accuracy is None else {
            "width": setup.accuracy.width, "hidden": list(setup.accuracy.hidden), "target": "test error (%)",
            "fit": setup.reports["accuracy_surrogate"]},
        "training": {"steps": config.steps, "wall_s": wall_s, "final": run.last},
    }
    if setup.store_meta:  # devices read from the store: which settings, their reference latencies, the fit on them
        meta["store_devices"] = setup.store_meta
    model = ModnasModel(meta, run.hypernet, setup.latency, setup.accuracy)
    model.save(out, {"supernet.pt": setup.supernet.state_dict()} if setup.supernet is not None else None)
    for name in (CHECKPOINT_FILE, CHECKPOINT_META):
        (out / name).unlink(missing_ok=True)
