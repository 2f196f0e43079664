"""MODNAS as a registered search algorithm: ``run_search(SearchRequest(algorithm="modnas", ...))``.

MODNAS has no evaluation budget and no constraint: it trains one
hypernetwork that answers every device and accuracy/latency trade-off, to be
queried afterwards (``ModnasModel.front`` / ``pick``, ``hwprof modnas``). So
it is a ``"request"`` algorithm (see ``nas.search.registry``): it reads the
request's space, accuracy spec, devices, table, seed and output directory,
takes its ``params`` as ``ModnasConfig`` fields, and refuses what it cannot
honour (a budget, the multi-objective switch, cost specs, constraints,
overwriting: like a budgeted search it never replaces another run's results,
and its directory is resumed, not replaced, by the same configuration).
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable

from hwprof.errors import ConfigError
from nas.evaluators.parse import split_evaluator
from nas.search.modnas.config import ModnasConfig
from nas.search.modnas.model import META_FILE
from nas.search.modnas.trainer import ModnasProgress, train_modnas
from nas.search.request import ProgressCallback, SearchOutcome, SearchRequest

# ModnasConfig fields a SearchRequest sets through its own fields, never through params.
FROM_REQUEST = ("out_dir", "mode", "space", "devices", "table", "seed", "dataset")
# Numbers of a training phase worth showing while it runs.
PROGRESS_KEYS = ("loss", "error", "latency", "tau", "supernet_ce")


def accuracy_mode(accuracy: str) -> tuple[str, str]:
    """(mode, dataset): ``tabular:DATASET`` trains in surrogate mode, ``train:digits`` in supernet mode."""
    try:
        kind, arg = split_evaluator(accuracy)
    except ConfigError:
        kind, arg = "", ""
    if kind == "tabular":
        return "surrogate", arg
    if kind == "train":
        return "supernet", "cifar10"
    raise ConfigError(
        f"--algo modnas takes --accuracy tabular:DATASET (surrogate mode) or train:digits (supernet mode), got {accuracy!r}"
    )


def progress_reporter(on_progress: ProgressCallback | None) -> Callable[[ModnasProgress], None] | None:
    """``train_modnas``'s progress events as ``on_progress(phase, done, total, info)`` calls."""
    if on_progress is None:
        return None

    def report(p: ModnasProgress) -> None:
        if p.phase != "done":
            info = " ".join(f"{k} {p.info[k]:.3f}" for k in PROGRESS_KEYS if k in p.info)
            on_progress(p.phase, p.done, p.total, info)

    return report


def training_summary(out: Path) -> tuple[str, ...]:
    """What a finished training directory holds: where, which mode, how long; the accuracy source; per store device
    the setting used and the latency surrogate's fit on its measured networks."""
    meta = json.loads((out / META_FILE).read_text(encoding="utf-8"))
    lines = [
        f"hypernetwork saved in {out} ({meta['mode']} mode, {meta['training']['wall_s']:.0f} s)",
        f"accuracy objective: {meta['accuracy_source']}",
    ]
    for name, info in meta.get("store_devices", {}).items():
        fit = info["fit_in_sample"]
        lines.append(
            f"store device {name}: {info['n_networks']} measured networks from {info['db']} ({info['precision']}, "
            f"settings hash {info['settings_hash']}); latency surrogate on them (seen in the fit): "
            f"Spearman {fit['spearman']:.3f}, RMSE {fit['rmse_log']:.3f} in log latency"
        )
        if info.get("note"):
            lines.append(info["note"])
    return tuple(lines)


def run(request: SearchRequest, on_progress: ProgressCallback | None = None) -> SearchOutcome:
    """Train (or resume, or find finished) the hypernetwork the request describes, in ``request.out``."""
    if request.budget is not None or request.multi_objective:
        raise ConfigError(
            "--algo modnas always learns the whole accuracy/latency front and trains for a number of steps; "
            "drop --budget/--multi-objective (set the length with --param steps=N)"
        )
    if request.costs or request.constraints:
        raise ConfigError(
            "--algo modnas learns every accuracy/latency trade-off of the --devices at once; it takes no "
            "--cost/--constraint/--max-latency-ms (pick a trade-off later with `hwprof modnas pick`)"
        )
    if request.overwrite:
        raise ConfigError(
            "--algo modnas never replaces a training run: it resumes the same configuration in --out and refuses "
            "another; drop --overwrite and choose another output directory"
        )
    mode, dataset = accuracy_mode(request.accuracy)
    for name in FROM_REQUEST:
        if name in request.params:
            raise ConfigError(f"--param {name}=... is set through its own option for --algo modnas")
    config = ModnasConfig.create(
        str(request.out), mode, space=request.space, dataset=dataset,
        table=str(request.table) if request.table is not None else None,
        devices=request.devices, seed=request.seed, **request.params,
    )
    out = train_modnas(config, progress_reporter(on_progress))
    return SearchOutcome(request.algorithm, out, (out / META_FILE,), None, training_summary(out))


def _settings() -> dict[str, Any]:
    defaults = {f.name: f.default for f in fields(ModnasConfig) if f.name not in FROM_REQUEST}
    return dict(sorted(defaults.items()))


run.kind = "request"  # type: ignore[attr-defined]
run.params = _settings()  # type: ignore[attr-defined]
