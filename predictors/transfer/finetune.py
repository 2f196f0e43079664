"""Few-shot by fine-tuning a network pretrained on the source devices.

Pretraining fits one wide-and-deep MLP with one output per source device
(standardized log latency) on the whole source table. Adapting to a new device
starts the single output head as the non-negative combination of the source
heads that best fits the K samples in log space (so before any gradient step it
is already "this device behaves like a mix of those"), then fine-tunes all
weights for a few full-batch steps with an L2 pull towards the pretrained
weights. ``steps=0`` keeps just the combination.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from hwprof.errors import DataError
from predictors.base import FeatureSchema, ProgressCallback, positive_float, positive_int
from predictors.mlp import ACTIVATIONS, MLPPredictor
from predictors.features.encoding import ArchFeaturizer
from predictors.transfer.base import TransferModel
from predictors.transfer.combination import combination_weights
from predictors.transfer.networks import (
    calibrate,
    feature_scaling,
    fine_tune,
    fold_to_predictor,
    mlp_params,
    predict_network,
    standardize_columns,
)
from predictors.transfer.sources import SourceLatencies

DEFAULTS: dict[str, Any] = {
    "hidden_sizes": (128, 128),
    "activation": "relu",
    "max_epochs": 100,
    "patience": 10,
    "steps": 30,
    "learning_rate": 3e-4,
    "anchor": 1e-3,
}


class FineTuneModel(TransferModel):
    """Multi-output source network; ``adapt`` = combination head + anchored fine-tuning on the K samples."""

    method = "finetune"
    min_samples = 3
    PARAMS = tuple(DEFAULTS)
    DEFAULTS = DEFAULTS

    def __init__(self, net: Any, schema: FeatureSchema, devices: tuple[str, ...], *, x_mean: np.ndarray, x_std: np.ndarray,
                 log_mean: np.ndarray, log_std: np.ndarray, settings: Mapping[str, Any]) -> None:
        self.net = net
        self.schema = schema
        self.devices = tuple(devices)
        self.x_mean, self.x_std = x_mean, x_std
        self.log_mean, self.log_std = log_mean, log_std
        self.settings = {**DEFAULTS, **dict(settings)}
        self.settings["hidden_sizes"] = tuple(int(h) for h in self.settings["hidden_sizes"])

    @staticmethod
    def check_settings(settings: Mapping[str, Any]) -> None:
        owner = "finetune"
        hs = settings["hidden_sizes"]
        if not isinstance(hs, (tuple, list)) or not hs or not all(isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in hs):
            raise DataError(f"{owner}: hidden_sizes must be a sequence of positive integers, got {hs!r}")
        if settings["activation"] not in ACTIVATIONS:
            raise DataError(f"{owner}: activation must be one of {', '.join(ACTIVATIONS)}, got {settings['activation']!r}")
        positive_int(owner, "max_epochs", settings["max_epochs"])
        positive_int(owner, "patience", settings["patience"])
        positive_int(owner, "steps", settings["steps"], minimum=0)
        positive_float(owner, "learning_rate", settings["learning_rate"])
        positive_float(owner, "anchor", settings["anchor"], allow_zero=True)

    @classmethod
    def _pretrain(
        cls, sources: SourceLatencies, featurizer: ArchFeaturizer, settings: dict[str, Any], seed: int,
        progress: ProgressCallback | None,
    ) -> "FineTuneModel":
        """Train the multi-output source network (early stopping on 10% of the source architectures)."""
        X = featurizer.transform(sources.archs)
        x_mean, x_std = feature_scaling(X)
        T, log_mean, log_std = standardize_columns(np.log(sources.latency_ms))
        trainer = MLPPredictor(
            hidden_sizes=tuple(settings["hidden_sizes"]), activation=settings["activation"], batch_size=256,
            max_epochs=int(settings["max_epochs"]), patience=int(settings["patience"]), random_state=seed,
        )
        order = np.random.default_rng(seed).permutation(len(X))
        n_val = max(1, len(X) // 10)
        Z = (X - x_mean) / x_std
        val, trn = order[:n_val], order[n_val:]
        epochs = int(settings["max_epochs"])
        report = (lambda e: progress(e, epochs)) if progress is not None else (lambda e: None)
        net, _, _, _ = trainer._train_network(Z[trn], T[trn], Z[val], T[val], epochs, report)
        return cls(net, featurizer.schema, sources.devices, x_mean=x_mean, x_std=x_std,
                   log_mean=log_mean, log_std=log_std, settings=settings)

    def source_log_latency(self, X: np.ndarray) -> np.ndarray:
        """Predicted log latency (n, n_sources) of feature rows X."""
        return predict_network(self.net, (X - self.x_mean) / self.x_std) * self.log_std + self.log_mean

    def _head(self, weights: np.ndarray, intercept: float) -> Any:
        """Single-output copy of the source network computing intercept + sum_j w_j * log latency_j."""
        import torch

        from predictors.transfer.networks import new_network

        params = mlp_params(self.settings["hidden_sizes"], self.settings["activation"], True)
        single = new_network(len(self.x_mean), params, 1, seed=0)
        state = {k: v.clone() for k, v in self.net.state_dict().items()}
        scale = torch.as_tensor(weights * self.log_std, dtype=torch.float32)
        last = f"deep.{len(self.settings['hidden_sizes']) * 2}"
        state[f"{last}.weight"] = (scale @ state[f"{last}.weight"]).unsqueeze(0)
        bias = scale @ state[f"{last}.bias"] + float(weights @ self.log_mean) + intercept
        state[f"{last}.bias"] = bias.reshape(1).to(torch.float32)
        state["wide.weight"] = (scale @ state["wide.weight"]).unsqueeze(0)
        single.load_state_dict(state)
        return single.eval()

    def _adapt(self, specs: list[str], X: np.ndarray, y: np.ndarray, progress: ProgressCallback | None) -> MLPPredictor:
        log_y = np.log(y)
        w, b = combination_weights(self.source_log_latency(X), log_y, nonnegative=True, alpha=0.0)
        net = self._head(w, b)
        Z = (X - self.x_mean) / self.x_std
        if int(self.settings["steps"]) > 0 and float(np.sum(w)) > 0:
            net = fine_tune(net, Z, log_y, steps=int(self.settings["steps"]),
                            learning_rate=float(self.settings["learning_rate"]), anchor=float(self.settings["anchor"]))
        scale, offset = calibrate(predict_network(net, Z), log_y)
        if progress is not None:
            progress(1, 1)
        params = mlp_params(self.settings["hidden_sizes"], self.settings["activation"], True)
        predictor = fold_to_predictor(net, self.schema, self.x_mean, self.x_std, scale, offset, params, X, y)
        predictor.source_weights_ = dict(zip(self.devices, (float(v) for v in w)))
        return predictor

    # --- persistence -------------------------------------------------------------------------
    def _save_state(self, directory: Path) -> dict[str, Any]:
        import torch

        torch.save(self.net.state_dict(), directory / "source_net.pt")
        np.savez(directory / "source_scaling.npz", x_mean=self.x_mean, x_std=self.x_std,
                 log_mean=self.log_mean, log_std=self.log_std)
        return {"weights": "source_net.pt", "scaling": "source_scaling.npz",
                "settings": {**self.settings, "hidden_sizes": list(self.settings["hidden_sizes"])}}

    @classmethod
    def _load_state(cls, directory: Path, schema: FeatureSchema, devices: tuple[str, ...], state: Mapping[str, Any]) -> "FineTuneModel":
        import torch

        from predictors.transfer.networks import new_network

        settings = {**DEFAULTS, **dict(state["settings"])}
        settings["hidden_sizes"] = tuple(settings["hidden_sizes"])
        cls.check_settings(settings)
        with np.load(directory / str(state["scaling"]), allow_pickle=False) as data:
            arrays = {k: data[k] for k in ("x_mean", "x_std", "log_mean", "log_std")}
        if arrays["x_mean"].shape != (schema.width,) or arrays["log_mean"].shape != (len(devices),):
            raise DataError(f"source scaling does not match {schema.width} features x {len(devices)} devices")
        net = new_network(schema.width, mlp_params(settings["hidden_sizes"], settings["activation"], True), len(devices), 0)
        net.load_state_dict(torch.load(directory / str(state["weights"]), map_location="cpu", weights_only=True))
        return cls(net.eval(), schema, devices, settings=settings, **arrays)
