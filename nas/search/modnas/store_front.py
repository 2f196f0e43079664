"""A MODNAS front for a device you profiled, and a check of it by measuring its networks.

``store_device_embedding``: the hypernetwork's reference networks, read from
the store (profiled first when asked), give the device's embedding and its
absolute latency level. ``check_front``: the front's distinct networks are
measured on the device (through the Profiler, into the store) and the
hypervolume of the measured front is put beside the predicted one's.

Both fronts are scored as MODNAS scores a device (``nas.pareto.modnas_hypervolume``:
error and latency scaled to [0, 1], reference point [1, 1]) with the same
bounds: error over the NB201 table's networks (for the hypernetwork's
dataset), latency over the latency surrogate's predictions for the whole space
on this device, each widened to hold every predicted and measured value of the
front. The *predicted* front is (the accuracy surrogate's error, or the table's
in supernet mode; predicted latency); the *measured* front is (the table's
error; measured latency): what the device and the benchmark say about the
same networks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import torch

from hwprof.errors import DataError
from nas.search.modnas.store_devices import ProfileProgress, StoreDevice, profile_networks

if TYPE_CHECKING:
    from nas.search.modnas.model import FrontEntry, ModnasModel


def missing_references_error(target: StoreDevice, refs: Sequence[str], what: str, remedy: str) -> DataError:
    """The one-line error for a device that lacks some of the reference networks."""
    missing = target.missing(refs)
    return DataError(
        f"{target.device} ({target.settings_text}) lacks {len(missing)} of the {len(refs)} reference networks "
        f"{what} in {target.db} (first missing: {missing[0]!r}); {remedy}"
    )


def store_reference_latencies(
    target: StoreDevice,
    refs: Sequence[str],
    what: str,
    profile_missing: bool = False,
    protocol: Any | None = None,
    on_progress: ProfileProgress | None = None,
    command: str = "",
) -> tuple[np.ndarray, StoreDevice]:
    """(latencies of ``refs`` in ms, the store device re-read): profiled first when ``profile_missing``."""
    if target.missing(refs):
        if not profile_missing:
            raise missing_references_error(
                target, refs, what, "add --profile-missing to measure them (stored, resumable), or profile them with `hwprof profile`"
            )
        target = profile_networks(target, refs, protocol, on_progress, command)
    return target.latencies_of(refs), target


def store_device_embedding(
    model: "ModnasModel",
    target: StoreDevice,
    profile_missing: bool = False,
    protocol: Any | None = None,
    on_progress: ProfileProgress | None = None,
    command: str = "",
) -> tuple[np.ndarray, np.ndarray, StoreDevice]:
    """(embedding, reference latencies in ms, the store device re-read) of a profiled device for ``model``."""
    lat, target = store_reference_latencies(
        target, model.refs.specs, "of this hypernetwork", profile_missing, protocol, on_progress, command
    )
    return model.refs.embedding(lat), lat, target


@dataclass(frozen=True)
class CheckedNetwork:
    """One distinct network of the front: what the model predicted and what the device and the table say."""

    spec: str
    preference: tuple[float, ...]  # of the first ray that gave it
    predicted_latency_ms: float
    measured_latency_ms: float
    predicted_error_pct: float
    table_error_pct: float

    @property
    def latency_ratio(self) -> float:
        """measured / predicted latency."""
        return self.measured_latency_ms / self.predicted_latency_ms

    def to_json(self) -> dict[str, Any]:
        return {"arch": self.spec, "preference": list(self.preference), "predicted_latency_ms": self.predicted_latency_ms,
                "measured_latency_ms": self.measured_latency_ms, "predicted_error_pct": self.predicted_error_pct,
                "table_error_pct": self.table_error_pct}


@dataclass(frozen=True)
class FrontCheck:
    """The front's networks measured: both hypervolumes with the same bounds, and per-network figures."""

    device: str
    settings: Mapping[str, Any]
    precision: str
    networks: tuple[CheckedNetwork, ...]
    hv_predicted: float
    hv_measured: float
    error_bounds_pct: tuple[float, float]
    latency_bounds_ms: tuple[float, float]
    n_profiled: int  # measured by this check; the rest were already in the store
    predicted_error_source: str

    @property
    def hv_ratio(self) -> float:
        """measured / predicted hypervolume (nan when the predicted one is 0)."""
        return self.hv_measured / self.hv_predicted if self.hv_predicted > 0 else float("nan")

    @property
    def latency_spearman(self) -> float:
        """Rank correlation of predicted and measured latency over the distinct networks (nan for fewer than 3)."""
        from scipy.stats import spearmanr

        pred = [n.predicted_latency_ms for n in self.networks]
        meas = [n.measured_latency_ms for n in self.networks]
        if len(pred) < 3 or len(set(pred)) < 2 or len(set(meas)) < 2:
            return float("nan")
        return float(spearmanr(pred, meas).statistic)

    @property
    def median_abs_latency_error(self) -> float:
        """Median of |measured / predicted - 1| over the distinct networks."""
        return float(np.median([abs(n.latency_ratio - 1.0) for n in self.networks]))

    def to_json(self) -> dict[str, Any]:
        def num(x: float) -> float | None:
            return None if not np.isfinite(x) else float(x)

        return {"device": self.device, "settings": dict(self.settings), "precision": self.precision,
                "hv_predicted": self.hv_predicted, "hv_measured": self.hv_measured, "hv_ratio": num(self.hv_ratio),
                "error_bounds_pct": list(self.error_bounds_pct), "latency_bounds_ms": list(self.latency_bounds_ms),
                "reference_point": [1.0, 1.0], "latency_spearman": num(self.latency_spearman),
                "median_abs_latency_error": self.median_abs_latency_error, "n_profiled": self.n_profiled,
                "predicted_error_source": self.predicted_error_source,
                "networks": [n.to_json() for n in self.networks]}


def _space_latency_range_ms(model: "ModnasModel", embedding: np.ndarray, level_ms: float) -> tuple[float, float]:
    """Min and max of the latency surrogate's predictions over the whole space for this device, in ms."""
    from nas.search.modnas.decode import all_choices
    from nas.search.modnas.objectives import predict_in_batches

    enc = torch.from_numpy(model.space.encode_choices(all_choices(model.hypernet.layer_sizes)))
    z = predict_in_batches(model.latency, enc, torch.from_numpy(np.asarray(embedding, dtype=np.float32))[None])
    return level_ms * float(np.exp(float(z.min()))), level_ms * float(np.exp(float(z.max())))


def check_front(
    model: "ModnasModel",
    entries: Sequence["FrontEntry"],
    embedding: np.ndarray,
    target: StoreDevice,
    protocol: Any | None = None,
    on_progress: ProfileProgress | None = None,
    command: str = "",
) -> FrontCheck:
    """Measure the front's distinct networks on ``target`` (those not stored yet) and score both fronts alike."""
    from nas.pareto import modnas_hypervolume
    from nas.tabular import load_nb201

    if not entries:
        raise DataError("the front is empty; nothing to measure")
    if any(e.predicted_latency_ms is None for e in entries):
        raise DataError("the front has no latencies in ms (the device's reference latencies were not given)")
    first: dict[str, "FrontEntry"] = {}
    for e in entries:
        first.setdefault(e.spec, e)
    specs = list(first)
    before = len(target.missing(specs))
    target = profile_networks(target, specs, protocol, on_progress, command)
    measured = target.latencies_of(specs)
    cfg = model.meta["config"]
    table = load_nb201(cfg.get("table"))
    acc = table.accuracy[cfg.get("dataset") or "cifar10"]
    table_err = np.asarray([100.0 - float(acc[table.index_of(s)]) for s in specs])
    surrogate = model.accuracy is not None
    pred_err = np.asarray([first[s].surrogate_error_pct for s in specs], dtype=np.float64) if surrogate else table_err
    pred_lat = np.asarray([first[s].predicted_latency_ms for s in specs], dtype=np.float64)
    all_err = 100.0 - np.asarray(acc, dtype=np.float64)
    err_lo = float(min(all_err.min(), pred_err.min(), table_err.min()))
    err_hi = float(max(all_err.max(), pred_err.max(), table_err.max()))
    level = pred_lat[0] / first[specs[0]].predicted_latency_rel
    lat_lo, lat_hi = _space_latency_range_ms(model, embedding, level)
    lat_lo = float(min(lat_lo, pred_lat.min(), measured.min()))
    lat_hi = float(max(lat_hi, pred_lat.max(), measured.max()))
    lower, upper = [err_lo, lat_lo], [err_hi, lat_hi]
    hv_pred = modnas_hypervolume(100.0 - pred_err, pred_lat, lower, upper)
    hv_meas = modnas_hypervolume(100.0 - table_err, measured, lower, upper)
    networks = tuple(
        CheckedNetwork(s, first[s].preference, float(p), float(m), float(pe), float(te))
        for s, p, m, pe, te in zip(specs, pred_lat, measured, pred_err, table_err)
    )
    source = "accuracy surrogate" if surrogate else "NB201 table (supernet mode has no accuracy surrogate)"
    return FrontCheck(target.device, dict(target.settings), target.precision, networks, hv_pred, hv_meas,
                      (err_lo, err_hi), (lat_lo, lat_hi), before, source)
