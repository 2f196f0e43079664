"""Few-shot by a device-conditioned network: input = [architecture features, device embedding].

The **device embedding** is the device's standardized log latency on a fixed
set of reference architectures (HELP and MODNAS use the same notion; MODNAS
chooses its references the same way): log, then
zero mean and unit spread over the references, so it describes which
reference networks are relatively fast on the device, not how fast the device
is. The references are chosen once, at pretraining, by farthest-point
sampling over the source devices' standardized log latencies
(:func:`~predictors.transfer.selection.suggest_samples`), so they are the
networks whose relative speed differs most between devices.

One network is trained across all source devices to map
[features, embedding] to the device's standardized log latency. Seventeen
devices are few points to learn a function of the embedding from, so every
epoch adds synthetic devices: log-linear mixtures
``lambda * log L_a + (1 - lambda) * log L_b`` of two random source devices
(a device "between" two real ones), standardized like real ones.

Adapting: when the K measured architectures contain the references, the
embedding is read off directly; otherwise it is fitted to the K samples by
gradient descent from the mean source embedding. Slope and offset in log
space (the device's spread and scale) come from the K samples by least
squares. The result is folded into a plain ``mlp`` predictor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from hwprof.errors import ConfigError, DataError
from predictors.base import FeatureSchema, ProgressCallback, positive_float, positive_int
from predictors.mlp import ACTIVATIONS, MLPPredictor, torch_threads
from predictors.features.encoding import ArchFeaturizer
from predictors.transfer.base import TransferModel
from predictors.transfer.networks import (
    calibrate,
    feature_scaling,
    fold_to_predictor,
    mlp_params,
    new_network,
    predict_network,
    standardize_columns,
)
from predictors.transfer.selection import suggest_samples
from predictors.transfer.sources import SourceLatencies

DEFAULTS: dict[str, Any] = {
    "n_refs": 10,
    "hidden_sizes": (128, 128),
    "activation": "relu",
    "steps": 4000,
    "batch_size": 512,
    "learning_rate": 2e-3,
    "mix_devices": 64,
    "embedding_steps": 300,
    "embedding_prior": 0.1,
}


def reference_embedding(latency_ms: Any) -> np.ndarray:
    """Device embedding from latencies on the references: log, then zero mean and unit std (float64)."""
    lat = np.asarray(latency_ms, dtype=np.float64)
    if lat.ndim != 1 or lat.size < 2:
        raise DataError(f"a device embedding needs a 1-D vector of at least 2 reference latencies, got shape {lat.shape}")
    if not (np.all(np.isfinite(lat)) and np.all(lat > 0)):
        raise DataError("reference latencies must be finite positive milliseconds")
    logs = np.log(lat)
    std = logs.std()
    return (logs - logs.mean()) / (std if std > 1e-12 else 1.0)


class DeviceConditionedModel(TransferModel):
    """One network over (architecture, device embedding); ``adapt`` embeds and calibrates a new device."""

    method = "embedding"
    min_samples = 3
    uses_references = True
    PARAMS = (*DEFAULTS, "reference_pool")
    DEFAULTS = DEFAULTS

    def __init__(self, net: Any, schema: FeatureSchema, devices: tuple[str, ...], references: Sequence[str], *,
                 x_mean: np.ndarray, x_std: np.ndarray, source_embeddings: np.ndarray, settings: Mapping[str, Any]) -> None:
        self.net = net
        self.schema = schema
        self.devices = tuple(devices)
        self.references = tuple(references)
        self.x_mean, self.x_std = x_mean, x_std
        self.source_embeddings = source_embeddings
        self.settings = {**DEFAULTS, **dict(settings)}
        self.settings["hidden_sizes"] = tuple(int(h) for h in self.settings["hidden_sizes"])

    @property
    def reference_archs(self) -> tuple[str, ...]:
        return self.references

    @staticmethod
    def check_settings(settings: Mapping[str, Any]) -> None:
        owner = "embedding"
        hs = settings["hidden_sizes"]
        if not isinstance(hs, (tuple, list)) or not hs or not all(isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in hs):
            raise ConfigError(f"{owner}: hidden_sizes must be a sequence of positive integers, got {hs!r}")
        if settings["activation"] not in ACTIVATIONS:
            raise ConfigError(f"{owner}: activation must be one of {', '.join(ACTIVATIONS)}, got {settings['activation']!r}")
        positive_int(owner, "n_refs", settings["n_refs"], minimum=2)
        for key in ("steps", "batch_size"):
            positive_int(owner, key, settings[key])
        for key in ("mix_devices", "embedding_steps"):
            positive_int(owner, key, settings[key], minimum=0)
        positive_float(owner, "learning_rate", settings["learning_rate"])
        positive_float(owner, "embedding_prior", settings["embedding_prior"], allow_zero=True)

    @classmethod
    def _pretrain(
        cls, sources: SourceLatencies, featurizer: ArchFeaturizer, settings: dict[str, Any], seed: int,
        progress: ProgressCallback | None,
    ) -> "DeviceConditionedModel":
        """Choose the references (``reference_pool``: candidate row indices) and train the conditioned network."""
        settings = dict(settings)
        pool = settings.pop("reference_pool", None)
        X = featurizer.transform(sources.archs)
        logs = np.log(sources.latency_ms)
        refs = suggest_samples(int(settings["n_refs"]), sources.latency_ms, seed, pool=pool, method="farthest")
        x_mean, x_std = feature_scaling(X)
        net = cls._train(X, x_mean, x_std, logs, refs, settings, seed, progress)
        source_embeddings = np.stack([reference_embedding(np.exp(logs[refs, j])) for j in range(logs.shape[1])])
        return cls(net, featurizer.schema, sources.devices, [sources.archs[i] for i in refs], x_mean=x_mean, x_std=x_std,
                   source_embeddings=source_embeddings, settings=settings)

    @staticmethod
    def _train(X: np.ndarray, x_mean: np.ndarray, x_std: np.ndarray, logs: np.ndarray, refs: np.ndarray,
               settings: Mapping[str, Any], seed: int, progress: ProgressCallback | None) -> Any:
        import torch

        rng = np.random.default_rng(seed)
        n_archs, n_dev = logs.shape
        n_refs = len(refs)
        params = mlp_params(settings["hidden_sizes"], settings["activation"], True)
        net = new_network(X.shape[1] + n_refs, params, 1, seed)
        Z = torch.as_tensor((X - x_mean) / x_std, dtype=torch.float32)
        steps, batch = int(settings["steps"]), int(settings["batch_size"])
        opt = torch.optim.AdamW(net.parameters(), lr=float(settings["learning_rate"]), weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
        n_mix = int(settings["mix_devices"])
        refresh = max(1, steps // 20)
        with torch_threads(1), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net.train()
            for step in range(steps):
                if step % refresh == 0:  # a new draw of synthetic devices
                    columns = logs
                    if n_mix > 0 and n_dev > 1:
                        a, b = rng.integers(n_dev, size=n_mix), rng.integers(n_dev, size=n_mix)
                        lam = rng.uniform(size=n_mix)
                        columns = np.hstack([logs, lam * logs[:, a] + (1 - lam) * logs[:, b]])
                    T = torch.as_tensor(standardize_columns(columns)[0], dtype=torch.float32)
                    ref = columns[refs]
                    E = torch.as_tensor(((ref - ref.mean(0)) / np.where(ref.std(0) > 1e-12, ref.std(0), 1.0)).T, dtype=torch.float32)
                rows = torch.as_tensor(rng.integers(n_archs, size=batch))
                devs = torch.as_tensor(rng.integers(T.shape[1], size=batch))
                opt.zero_grad()
                pred = net(torch.cat([Z[rows], E[devs]], dim=1))
                loss = torch.mean((pred - T[rows, devs]) ** 2)
                loss.backward()
                opt.step()
                sched.step()
                if progress is not None and (step + 1) % refresh == 0:
                    progress(step + 1, steps)
        return net.eval()

    # --- adaptation ----------------------------------------------------------------------------
    def _embedding_from_samples(self, Z: np.ndarray, log_y: np.ndarray) -> np.ndarray:
        """Fit the embedding to samples that are not the references (prior: the mean source embedding)."""
        import torch

        prior = torch.as_tensor(self.source_embeddings.mean(axis=0), dtype=torch.float32)
        e = prior.clone().requires_grad_(True)
        Z_t = torch.as_tensor(Z, dtype=torch.float32)
        t = torch.as_tensor(log_y - log_y.mean(), dtype=torch.float32)
        t = t / (t.std() + 1e-8)
        opt = torch.optim.Adam([e], lr=0.05)
        for p in self.net.parameters():
            p.requires_grad_(False)
        with torch_threads(1):
            for _ in range(int(self.settings["embedding_steps"])):
                opt.zero_grad()
                f = self.net(torch.cat([Z_t, e.expand(len(Z_t), -1)], dim=1))
                fc = f - f.mean()
                # Scale-free fit: correlation of prediction and samples, plus the prior.
                loss = -torch.sum(fc * t) / (torch.sqrt(torch.sum(fc**2)) * np.sqrt(len(t)) + 1e-8)
                loss = loss + float(self.settings["embedding_prior"]) * torch.mean((e - prior) ** 2)
                loss.backward()
                opt.step()
        for p in self.net.parameters():
            p.requires_grad_(True)
        return e.detach().double().numpy()

    def embedding_for(self, specs: Sequence[str], y: np.ndarray, Z: np.ndarray) -> tuple[np.ndarray, bool]:
        """(embedding, whether it was read off the references directly)."""
        index = {s: i for i, s in enumerate(specs)}
        if all(r in index for r in self.references):
            return reference_embedding([y[index[r]] for r in self.references]), True
        return self._embedding_from_samples(Z, np.log(y)), False

    def _adapt(self, specs: list[str], X: np.ndarray, y: np.ndarray, progress: ProgressCallback | None) -> MLPPredictor:
        Z = (X - self.x_mean) / self.x_std
        e, direct = self.embedding_for(specs, y, Z)
        single = self._fold_embedding(e)
        scale, offset = calibrate(predict_network(single, Z), np.log(y))
        if progress is not None:
            progress(1, 1)
        params = mlp_params(self.settings["hidden_sizes"], self.settings["activation"], True)
        predictor = fold_to_predictor(single, self.schema, self.x_mean, self.x_std, scale, offset, params, X, y)
        predictor.device_embedding_ = e
        predictor.embedding_from_references_ = direct
        return predictor

    def _fold_embedding(self, e: np.ndarray) -> Any:
        """The conditioned network with the embedding moved into biases: a plain network on the features."""
        import torch

        n_in = len(self.x_mean)
        params = mlp_params(self.settings["hidden_sizes"], self.settings["activation"], True)
        single = new_network(n_in, params, 1, seed=0)
        state = {k: v.clone() for k, v in self.net.state_dict().items()}
        e_t = torch.as_tensor(e, dtype=torch.float32)
        w0 = state["deep.0.weight"]
        state["deep.0.bias"] = state["deep.0.bias"] + w0[:, n_in:] @ e_t
        state["deep.0.weight"] = w0[:, :n_in].contiguous()
        last = f"deep.{len(self.settings['hidden_sizes']) * 2}"
        wide = state["wide.weight"]
        state[f"{last}.bias"] = state[f"{last}.bias"] + wide[:, n_in:] @ e_t
        state["wide.weight"] = wide[:, :n_in].contiguous()
        single.load_state_dict(state)
        return single.eval()

    # --- persistence -------------------------------------------------------------------------
    def _save_state(self, directory: Path) -> dict[str, Any]:
        import torch

        torch.save(self.net.state_dict(), directory / "conditioned_net.pt")
        np.savez(directory / "conditioned.npz", x_mean=self.x_mean, x_std=self.x_std, source_embeddings=self.source_embeddings)
        return {"weights": "conditioned_net.pt", "arrays": "conditioned.npz", "references": list(self.references),
                "settings": {**self.settings, "hidden_sizes": list(self.settings["hidden_sizes"])}}

    @classmethod
    def _load_state(cls, directory: Path, schema: FeatureSchema, devices: tuple[str, ...], state: Mapping[str, Any]) -> "DeviceConditionedModel":
        import torch

        settings = {**DEFAULTS, **dict(state["settings"])}
        settings["hidden_sizes"] = tuple(settings["hidden_sizes"])
        cls.check_settings(settings)
        refs = [str(r) for r in state["references"]]
        with np.load(directory / str(state["arrays"]), allow_pickle=False) as data:
            arrays = {k: data[k] for k in ("x_mean", "x_std", "source_embeddings")}
        if arrays["x_mean"].shape != (schema.width,) or arrays["source_embeddings"].shape != (len(devices), len(refs)):
            raise DataError(f"conditioned arrays do not match {schema.width} features, {len(devices)} devices, {len(refs)} references")
        net = new_network(schema.width + len(refs), mlp_params(settings["hidden_sizes"], settings["activation"], True), 1, 0)
        net.load_state_dict(torch.load(directory / str(state["weights"]), map_location="cpu", weights_only=True))
        return cls(net.eval(), schema, devices, refs, settings=settings, **arrays)
