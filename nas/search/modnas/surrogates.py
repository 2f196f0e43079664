"""Differentiable objective models that MODNAS optimises through: accuracy and device-conditioned latency.

Both take an architecture *encoding* (the space's one-hot layout; relaxed or
straight-through samples work the same way) so that gradients reach the
hypernetwork. Both are fitted once, then frozen during the search.

- ``AccuracySurrogate``: encoding -> test error (%) of the tabular benchmark.
  Used only in *surrogate mode*; its numbers are a model of the table, not a
  measurement, and every result that depends on it says so.
- ``LatencySurrogate``: [encoding, device embedding] -> log latency minus the
  mean log latency of the reference architectures on that device. One model
  for all training devices; a new device needs only its embedding. It is the
  predictors' ``MLPPredictor`` (wide-and-deep MLP, log target, early
  stopping) on raw features [encoding, embedding], used through its
  differentiable ``as_module()`` and saved with ``predictors.persistence``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import torch
from torch import nn

from hwprof.errors import ConfigError, DataError

if TYPE_CHECKING:
    from hwprof.spaces import SearchSpace
    from predictors.base import FeatureSchema
    from predictors.mlp import MLPPredictor

# fit progress: (epoch done, total epochs)
FitProgress = Callable[[int, int], None]


def mlp(width_in: int, hidden: Sequence[int], width_out: int = 1) -> nn.Sequential:
    layers: list[nn.Module] = []
    w = width_in
    for h in hidden:
        layers += [nn.Linear(w, int(h)), nn.SiLU()]
        w = int(h)
    layers.append(nn.Linear(w, width_out))
    return nn.Sequential(*layers)


def _check_hidden(owner: str, hidden: Sequence[int]) -> tuple[int, ...]:
    try:
        out = tuple(int(h) for h in hidden)
    except (TypeError, ValueError):
        raise ConfigError(f"{owner}: hidden sizes must be positive integers, got {hidden!r}") from None
    if not out or min(out) < 1:
        raise ConfigError(f"{owner}: hidden sizes must be positive integers, got {hidden!r}")
    return out


class AccuracySurrogate(nn.Module):
    """MLP from an architecture encoding to predicted test error (%), trained on a benchmark table."""

    def __init__(self, width: int, hidden: Sequence[int] = (256, 256)) -> None:
        super().__init__()
        self.width = int(width)
        self.hidden = _check_hidden("AccuracySurrogate", hidden)
        self.net = mlp(self.width, self.hidden)
        self.register_buffer("y_mean", torch.zeros(()))
        self.register_buffer("y_std", torch.ones(()))

    def forward(self, enc: torch.Tensor) -> torch.Tensor:
        return self.net(enc).squeeze(-1) * self.y_std + self.y_mean


class LatencySurrogate(nn.Module):
    """[encoding, device embedding] -> log latency relative to the reference architectures' geometric mean.

    A frozen wrapper around the differentiable module of a fitted
    ``predictors.mlp.MLPPredictor`` whose raw features are the encoding
    followed by the embedding and whose target is that relative latency.
    """

    def __init__(self, predictor: "MLPPredictor", width: int, embed_dim: int) -> None:
        super().__init__()
        if predictor.n_features_in_ != width + embed_dim:
            raise DataError(
                f"latency predictor takes {predictor.n_features_in_} features; expected {width} encoding + {embed_dim} embedding columns"
            )
        self.predictor = predictor
        self.width = int(width)
        self.embed_dim = int(embed_dim)
        self.module = predictor.as_module()

    def forward(self, enc: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        lead = enc.shape[:-1]
        if emb.shape[:-1] != lead:
            emb = emb.expand(*lead, emb.shape[-1])
        x = torch.cat([enc, emb.to(enc.dtype)], dim=-1).reshape(-1, self.width + self.embed_dim)
        return torch.log(self.module(x)).reshape(lead)


@dataclass(frozen=True)
class FitReport:
    """Held-out quality of a fitted surrogate (numbers, never strings)."""

    n_train: int
    n_holdout: int
    rmse: float
    spearman: float
    epochs: int

    def to_json(self) -> dict[str, float | int]:
        return {"n_train": self.n_train, "n_holdout": self.n_holdout, "rmse": self.rmse,
                "spearman": self.spearman, "epochs": self.epochs}


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if a.size < 2 or np.all(a == a[0]) or np.all(b == b[0]):
        return float("nan")
    return float(spearmanr(a, b).statistic)


def _train(
    model: nn.Module,
    inputs: Sequence[torch.Tensor],
    y: torch.Tensor,
    epochs: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator,
    progress: FitProgress | None,
) -> None:
    """Adam on MSE of the standardised target, cosine-decayed learning rate."""
    n = y.shape[0]
    steps_per_epoch = max(1, (n + batch_size - 1) // batch_size)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch)
    y_std = (y - model.y_mean) / model.y_std
    model.train()
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=generator)
        for k in range(steps_per_epoch):
            idx = perm[k * batch_size : (k + 1) * batch_size]
            pred = model.net(torch.cat([t[idx] for t in inputs], dim=-1)).squeeze(-1)
            loss = torch.mean((pred - y_std[idx]) ** 2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        if progress is not None:
            progress(epoch + 1, epochs)
    model.eval()


def _split(n: int, holdout_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if not 0.0 <= holdout_fraction < 1.0:
        raise ConfigError(f"holdout_fraction must be in [0, 1), got {holdout_fraction}")
    perm = rng.permutation(n)
    n_hold = int(round(n * holdout_fraction))
    return np.sort(perm[n_hold:]), np.sort(perm[:n_hold])


def fit_accuracy_surrogate(
    enc: np.ndarray,
    error_pct: np.ndarray,
    *,
    hidden: Sequence[int] = (256, 256),
    epochs: int = 150,
    batch_size: int = 256,
    lr: float = 2e-3,
    holdout_fraction: float = 0.05,
    seed: int = 0,
    progress: FitProgress | None = None,
) -> tuple[AccuracySurrogate, FitReport]:
    """Fit error (%) on encodings; ``holdout_fraction`` of the rows are kept out to report RMSE/Spearman."""
    enc = np.asarray(enc, dtype=np.float32)
    y = np.asarray(error_pct, dtype=np.float64)
    if enc.ndim != 2 or y.shape != (enc.shape[0],):
        raise DataError(f"expected encodings (n, w) and n errors, got {enc.shape} and {y.shape}")
    if not np.all(np.isfinite(y)):
        raise DataError("accuracy targets contain non-finite values")
    rng = np.random.default_rng(seed)
    train, hold = _split(enc.shape[0], holdout_fraction, rng)
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AccuracySurrogate(enc.shape[1], hidden)
    model.y_mean.fill_(float(y[train].mean()))
    model.y_std.fill_(float(max(y[train].std(), 1e-8)))
    X = torch.from_numpy(enc)
    Y = torch.from_numpy(y.astype(np.float32))
    _train(model, [X[train]], Y[train], epochs, batch_size, lr, gen, progress)
    return model, _report(model, [X[hold]], y[hold], len(train), epochs)


def latency_schema(space: "SearchSpace", embed_dim: int) -> "FeatureSchema":
    """Raw feature schema of the device-conditioned latency predictor: encoding columns, then embedding columns."""
    from predictors.base import FeatureSchema

    return FeatureSchema("raw", tuple(space.encoding_names()) + tuple(f"ref{i}_log_latency" for i in range(embed_dim)))


def fit_latency_surrogate(
    space: "SearchSpace",
    enc: np.ndarray,
    relative_latency: np.ndarray,
    embeddings: np.ndarray,
    *,
    hidden: Sequence[int] = (256, 256),
    epochs: int = 12,
    holdout_fraction: float = 0.05,
    seed: int = 0,
    progress: FitProgress | None = None,
    extra: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> tuple[LatencySurrogate, FitReport]:
    """One ``MLPPredictor`` over all devices; ``relative_latency`` is (devices, n), ``embeddings`` (devices, e).

    ``holdout_fraction`` of the architectures (the same on every device) are
    kept out to report RMSE (in log latency) and Spearman; the predictor
    early-stops on its own validation split of the rest. ``extra`` = (encodings
    (m, w), relative latencies (m,), embeddings (m, e)): more training rows,
    e.g. the measured networks of a device known only by them (none held out).
    """
    from predictors.mlp import MLPPredictor

    enc = np.asarray(enc, dtype=np.float64)
    Y = np.asarray(relative_latency, dtype=np.float64)
    E = np.asarray(embeddings, dtype=np.float64)
    if enc.ndim != 2 or Y.ndim != 2 or Y.shape[1] != enc.shape[0] or E.shape[0] != Y.shape[0]:
        raise DataError(f"expected enc (n, w), latencies (devices, n), embeddings (devices, e); got {enc.shape}, {Y.shape}, {E.shape}")
    train, hold = _split(enc.shape[0], holdout_fraction, np.random.default_rng(seed))
    n_dev = Y.shape[0]

    def rows(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.concatenate([np.tile(enc[idx], (n_dev, 1)), np.repeat(E, idx.size, axis=0)], axis=1), Y[:, idx].reshape(-1)

    predictor = MLPPredictor(
        hidden_sizes=tuple(int(h) for h in _check_hidden("latency surrogate", hidden)), activation="relu",
        batch_size=512, max_epochs=int(epochs), patience=3, validation_fraction=0.05, refit=False,
        learning_rate=2e-3, weight_decay=0.0, random_state=seed,
    )
    X, y = rows(train)
    if extra is not None:
        x_enc, x_rel, x_emb = (np.asarray(a, dtype=np.float64) for a in extra)
        if x_enc.ndim != 2 or x_enc.shape[1] != enc.shape[1] or x_rel.shape != (x_enc.shape[0],) or x_emb.shape != (x_enc.shape[0], E.shape[1]):
            raise DataError(f"extra rows: expected enc (m, {enc.shape[1]}), latencies (m,), embeddings (m, {E.shape[1]}); "
                            f"got {x_enc.shape}, {x_rel.shape}, {x_emb.shape}")
        X, y = np.concatenate([X, np.concatenate([x_enc, x_emb], axis=1)]), np.concatenate([y, x_rel])
    predictor.fit(X, y, schema=latency_schema(space, E.shape[1]), progress=progress)
    model = LatencySurrogate(predictor, enc.shape[1], E.shape[1])
    Xh, yh = rows(hold)
    if yh.size == 0:
        return model, FitReport(X.shape[0], 0, float("nan"), float("nan"), int(predictor.epochs_))
    with torch.no_grad():
        pred = model(torch.from_numpy(Xh[:, : enc.shape[1]]).float(), torch.from_numpy(Xh[:, enc.shape[1] :]).float()).double().numpy()
    target = np.log(yh)
    return model, FitReport(X.shape[0], int(yh.size), float(np.sqrt(np.mean((pred - target) ** 2))),
                            _spearman(pred, target), int(predictor.epochs_))


def _report(model: nn.Module, inputs: Sequence[torch.Tensor], y: np.ndarray, n_train: int, epochs: int) -> FitReport:
    if y.size == 0:
        return FitReport(n_train, 0, float("nan"), float("nan"), epochs)
    with torch.no_grad():
        pred = model(*inputs).double().numpy()
    return FitReport(n_train, int(y.size), float(np.sqrt(np.mean((pred - y) ** 2))), _spearman(pred, y), epochs)
