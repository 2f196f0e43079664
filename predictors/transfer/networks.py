"""Torch pieces shared by the neural few-shot methods: source targets, training loops, folding.

Targets are per-device standardized log latencies: devices then differ in
*shape* only (which networks are relatively fast), while scale and spread are
two numbers that the K samples of a new device pin down (``calibrate``).
An adapted network is folded into a plain single-output
:class:`~predictors.mlp.MLPPredictor`, so it is saved, loaded and used as a
differentiable module like any MLP.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from predictors.base import FeatureSchema, data_hash, latency_floor
from predictors.mlp import MLPPredictor, build_network, torch_threads

if TYPE_CHECKING:
    import torch

MIN_SCALE = 1e-3  # smallest calibrated slope, as a fraction of the samples' log spread


def standardize_columns(logs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(z, mean, std) of each column."""
    mean = logs.mean(axis=0)
    std = logs.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    return (logs - mean) / std, mean, std


def feature_scaling(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    std = X.std(axis=0)
    return X.mean(axis=0), np.where(std > 1e-12, std, 1.0)


def calibrate(f: np.ndarray, log_y: np.ndarray) -> tuple[float, float]:
    """Slope a > 0 and offset b with log_y ~ a * f + b (least squares; a floored to stay rank-preserving)."""
    fc = f - f.mean()
    denom = float(fc @ fc)
    spread = float(np.std(log_y)) or 1.0
    a = float(fc @ (log_y - log_y.mean())) / denom if denom > 1e-12 else spread
    a = max(a, MIN_SCALE * spread)
    return a, float(log_y.mean() - a * f.mean())


def mlp_params(hidden_sizes: tuple[int, ...], activation: str, linear_skip: bool) -> dict[str, Any]:
    return {"hidden_sizes": tuple(int(h) for h in hidden_sizes), "activation": activation, "linear_skip": bool(linear_skip)}


def fold_to_predictor(
    net: "torch.nn.Module",
    schema: FeatureSchema,
    x_mean: np.ndarray,
    x_std: np.ndarray,
    scale: float,
    offset: float,
    params: Mapping[str, Any],
    X: np.ndarray,
    y: np.ndarray,
) -> MLPPredictor:
    """A fitted MLPPredictor computing exp(scale * net(standardized x) + offset)."""
    return MLPPredictor.from_network(
        net, schema, x_mean=x_mean, x_std=x_std, y_mean=offset, y_std=scale, params=params,
        n_train=len(y), train_hash=data_hash(X, y), floor_ms=latency_floor(y),
    )


def new_network(n_in: int, params: Mapping[str, Any], n_out: int, seed: int) -> "torch.nn.Module":
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_network(n_in, params["hidden_sizes"], params["activation"], params["linear_skip"], n_out)


def copy_network(net: "torch.nn.Module") -> "torch.nn.Module":
    return copy.deepcopy(net)


def fine_tune(
    net: "torch.nn.Module",
    Z: np.ndarray,
    target: np.ndarray,
    *,
    steps: int,
    learning_rate: float,
    anchor: float,
    n_threads: int = 1,
) -> "torch.nn.Module":
    """Full-batch Adam on few samples, with an L2 pull towards the starting weights (L2-SP).

    With ten samples, unconstrained fine-tuning forgets what the sources
    taught; the anchor keeps the network near its pretrained solution.
    """
    import torch

    net = copy.deepcopy(net)
    start = [p.detach().clone() for p in net.parameters()]
    opt = torch.optim.Adam(net.parameters(), lr=learning_rate)
    Z_t = torch.as_tensor(Z, dtype=torch.float32)
    t_t = torch.as_tensor(target, dtype=torch.float32)
    with torch_threads(n_threads):
        net.train()
        for _ in range(steps):
            opt.zero_grad()
            loss = torch.mean((net(Z_t) - t_t) ** 2)
            loss = loss + anchor * sum(torch.sum((p - p0) ** 2) for p, p0 in zip(net.parameters(), start))
            loss.backward()
            opt.step()
    return net.eval()


def predict_network(net: "torch.nn.Module", Z: np.ndarray, n_threads: int = 1) -> np.ndarray:
    import torch

    with torch_threads(n_threads), torch.no_grad():
        return net(torch.as_tensor(Z, dtype=torch.float32)).double().numpy()
