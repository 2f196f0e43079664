"""Devices you profiled, from the store, as MODNAS training devices beside the table's columns.

How training uses a device's latencies, and what a store device supplies instead:
- *reference networks*: chosen over the **table** devices' full columns (a
  store device has no full column), so a store device must have every one of
  the ``n_refs`` references measured: they are its embedding and its absolute
  level. Fewer is refused in one line (``--profile-missing`` measures them).
- *latency surrogate*: a table device gives every table row; a store device
  gives its measured networks (the references included), as extra rows of the
  same fit. Its latency on the networks it never ran, which the training
  objective and its normalisation over the space need, is the surrogate's
  prediction from its embedding: the surrogate is the predictor fitted on its
  measurements (and the table devices'). The fit's in-sample error on the
  device's networks is kept in ``modnas.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from hwprof.errors import ConfigError
from nas.search.modnas.store_devices import StoreDevice, read_store_device
from nas.search.modnas.store_front import store_reference_latencies

STORE_PROGRESS_PHASE = "profiling references"


@dataclass(frozen=True)
class StoreTrainingDevice:
    """A store device as training sees it: its reference latencies and every measured network."""

    target: StoreDevice
    reference_latencies_ms: np.ndarray
    specs: tuple[str, ...]  # measured networks, references included
    latency_ms: np.ndarray  # aligned to specs

    @property
    def name(self) -> str:
        return self.target.device

    @property
    def relative_latency(self) -> np.ndarray:
        """Latency / geometric mean of the reference latencies: the latency surrogate's target."""
        return self.latency_ms / float(np.exp(np.mean(np.log(self.reference_latencies_ms))))

    def to_json(self) -> dict[str, Any]:
        return {**self.target.to_json(), "reference_latencies_ms": [float(x) for x in self.reference_latencies_ms],
                "n_networks": len(self.specs), "note": self.target.note}


def store_training_devices(
    db: str,
    names: Sequence[str],
    table_devices: Sequence[str],
    refs: Sequence[str],
    profile_missing: bool = False,
    protocol: Any | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> list[StoreTrainingDevice]:
    """Each named device read from ``db`` (one setting each; see ``read_store_device``), references profiled when asked."""
    clash = sorted(set(names) & set(table_devices))
    if clash:
        raise ConfigError(f"modnas: {clash[0]!r} is both a table column and a store device; drop it from one list")
    out = []
    for name in names:
        progress = None if on_progress is None else (lambda done, total, n=name: on_progress(f"{STORE_PROGRESS_PHASE} ({n})", done, total))
        target = read_store_device(db, name)
        ref_lat, target = store_reference_latencies(
            target, refs, f"that training chose over the table devices ({len(refs)} are needed for its embedding)",
            profile_missing, protocol, progress,
        )
        specs = tuple(target.latencies_ms)
        out.append(StoreTrainingDevice(target, ref_lat, specs, np.asarray([target.latencies_ms[s] for s in specs])))
    return out


def latency_rows(
    space: Any, devices: Sequence[StoreTrainingDevice], embeddings: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(encodings, relative latencies, embeddings): one row per measured network of each device (``embeddings`` aligned
    to ``devices``), the extra rows of the latency surrogate's fit."""
    enc = [space.encode_choices(np.asarray([space.choices_from_spec(s) for s in d.specs], dtype=np.int64)) for d in devices]
    emb = [np.repeat(np.asarray(e)[None], len(d.specs), axis=0) for d, e in zip(devices, embeddings)]
    return np.concatenate(enc), np.concatenate([d.relative_latency for d in devices]), np.concatenate(emb)


def in_sample_fit(latency_surrogate: Any, space: Any, device: StoreTrainingDevice, embedding: np.ndarray) -> dict[str, float]:
    """RMSE (log latency) and Spearman of the fitted surrogate on the device's own measured networks (seen in the fit)."""
    import torch
    from scipy.stats import spearmanr

    choices = np.asarray([space.choices_from_spec(s) for s in device.specs], dtype=np.int64)
    enc = torch.from_numpy(space.encode_choices(choices))
    with torch.no_grad():
        z = latency_surrogate(enc, torch.from_numpy(np.asarray(embedding, dtype=np.float32))[None]).double().numpy()
    target = np.log(device.relative_latency)
    rho = float(spearmanr(z, target).statistic) if len(z) >= 3 and np.ptp(target) > 0 else float("nan")
    return {"n": len(z), "rmse_log": float(np.sqrt(np.mean((z - target) ** 2))), "spearman": rho}
