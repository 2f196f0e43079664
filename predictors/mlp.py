"""A torch MLP latency predictor that doubles as a differentiable cost for gradient-based search.

Inputs are standardized, the target is standardized log-latency, training
stops early on an internal validation split (best weights restored), and the
network has a linear skip path next to its hidden layers ("wide and deep"):
latency is close to a sum of per-layer costs, which the linear part gets at
once, so the hidden layers only learn the interactions. With ``refit=True``
the model is retrained on all samples for the number of epochs early stopping
found. Everything is seeded; two fits with the same seed are identical.

:meth:`MLPPredictor.as_module` returns a frozen ``torch.nn.Module`` mapping a
(relaxed, e.g. softmax) architecture encoding of shape (batch, width) to
latency in ms, with gradients flowing to the encoding.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from hwprof.errors import ConfigError, DataError, PersistenceError
from predictors.base import Predictor, ProgressCallback, check_bool, finite_values, positive_float, positive_int

if TYPE_CHECKING:
    import torch

ACTIVATIONS = ("relu", "silu", "tanh")


def _torch() -> Any:
    import torch

    return torch


def build_network(
    n_in: int, hidden_sizes: Sequence[int], activation: str, linear_skip: bool, n_out: int = 1
) -> "torch.nn.Module":
    """MLP (n_in -> hidden... -> n_out) plus an optional linear path; output (batch,) or (batch, n_out)."""
    from torch import nn

    act = {"relu": nn.ReLU, "silu": nn.SiLU, "tanh": nn.Tanh}[activation]

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layers: list[nn.Module] = []
            width = n_in
            for h in hidden_sizes:
                layers += [nn.Linear(width, int(h)), act()]
                width = int(h)
            layers.append(nn.Linear(width, n_out))
            self.deep = nn.Sequential(*layers)
            self.wide = nn.Linear(n_in, n_out, bias=False) if linear_skip else None

        def forward(self, x: "torch.Tensor") -> "torch.Tensor":
            out = self.deep(x)
            if self.wide is not None:
                out = out + self.wide(x)
            return out.squeeze(-1) if n_out == 1 else out

    return Net()


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run torch with ``n`` intra-op threads, then restore the previous setting.

    Small networks train fastest on one thread; on a shared machine more
    threads mostly spin against each other.
    """
    torch = _torch()
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def train_network(
    net: "torch.nn.Module",
    Z: np.ndarray,
    t: np.ndarray,
    Zv: np.ndarray | None,
    tv: np.ndarray | None,
    *,
    epochs: int,
    learning_rate: float,
    weight_decay: float,
    batch_size: int,
    patience: int,
    seed: int,
    on_epoch: Callable[[int], None] | None = None,
) -> tuple["torch.nn.Module", int, int, float]:
    """AdamW on shuffled minibatches, MSE; with a validation set, early stopping restores the best weights.

    Returns (network, best epoch, last epoch run, best validation RMSE in target units; NaN without validation).
    """
    torch = _torch()
    opt = torch.optim.AdamW(net.parameters(), lr=learning_rate, weight_decay=weight_decay)
    X_t = torch.as_tensor(Z, dtype=torch.float32)
    y_t = torch.as_tensor(t, dtype=torch.float32)
    Xv_t = torch.as_tensor(Zv, dtype=torch.float32) if Zv is not None else None
    yv_t = torch.as_tensor(tv, dtype=torch.float32) if tv is not None else None
    gen = torch.Generator().manual_seed(seed)
    n = X_t.shape[0]
    bs = min(batch_size, n)
    best = (math.inf, 0, copy.deepcopy(net.state_dict()))
    epoch = 0
    for epoch in range(1, epochs + 1):
        net.train()
        perm = torch.randperm(n, generator=gen)
        for start in range(0, n, bs):
            idx = perm[start : start + bs]
            opt.zero_grad()
            loss = torch.mean((net(X_t[idx]) - y_t[idx]) ** 2)
            loss.backward()
            opt.step()
        if on_epoch is not None:
            on_epoch(epoch)
        if Xv_t is None:
            continue
        net.eval()
        with torch.no_grad():
            val = float(torch.sqrt(torch.mean((net(Xv_t) - yv_t) ** 2)))
        if val < best[0] - 1e-6:
            best = (val, epoch, copy.deepcopy(net.state_dict()))
        elif epoch - best[1] >= patience:
            break
    net.eval()
    if Xv_t is None:
        return net, epochs, epoch, math.nan
    net.load_state_dict(best[2])
    return net, max(best[1], 1), epoch, best[0]


class MLPPredictor(Predictor):
    """Multi-layer perceptron on standardized features, log-latency target, early stopping."""

    name = "mlp"
    min_samples = 10

    def __init__(
        self,
        hidden_sizes: tuple[int, ...] = (128, 128),
        activation: str = "relu",
        linear_skip: bool = True,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-4,
        batch_size: int = 64,
        max_epochs: int = 400,
        patience: int = 40,
        validation_fraction: float = 0.15,
        refit: bool = True,
        log_target: bool = True,
        n_threads: int = 1,
        random_state: int = 0,
    ) -> None:
        self.hidden_sizes = hidden_sizes
        self.activation = activation
        self.linear_skip = linear_skip
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.refit = refit
        self.log_target = log_target
        self.n_threads = n_threads
        self.random_state = random_state

    def _check_params(self) -> None:
        owner = "MLPPredictor"
        if isinstance(self.hidden_sizes, (int, np.integer)) and not isinstance(self.hidden_sizes, bool):
            self.hidden_sizes = (int(self.hidden_sizes),)  # one hidden layer given as its width (`--param hidden_sizes=64`)
        if not isinstance(self.hidden_sizes, (tuple, list)) or not all(
            isinstance(h, (int, np.integer)) and not isinstance(h, bool) and h >= 1 for h in self.hidden_sizes
        ):
            raise ConfigError(f"{owner}: hidden_sizes must be a sequence of positive integers, got {self.hidden_sizes!r}")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"{owner}: activation must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}")
        positive_float(owner, "learning_rate", self.learning_rate)
        positive_float(owner, "weight_decay", self.weight_decay, allow_zero=True)
        positive_int(owner, "batch_size", self.batch_size)
        positive_int(owner, "max_epochs", self.max_epochs)
        positive_int(owner, "patience", self.patience)
        positive_int(owner, "random_state", self.random_state, minimum=0)
        positive_int(owner, "n_threads", self.n_threads)
        positive_float(owner, "validation_fraction", self.validation_fraction, maximum=0.5)
        for name in ("linear_skip", "refit", "log_target"):
            check_bool(owner, name, getattr(self, name))

    # --- training --------------------------------------------------------------------------
    def _network(self) -> "torch.nn.Module":
        return build_network(self.n_in_, tuple(int(h) for h in self.hidden_sizes), self.activation, bool(self.linear_skip))

    def _fit(self, X: np.ndarray, y: np.ndarray, progress: ProgressCallback | None) -> None:
        self.n_in_ = X.shape[1]
        self.x_mean_ = X.mean(axis=0)
        std = X.std(axis=0)
        self.x_std_ = np.where(std > 1e-12, std, 1.0)
        target = np.log(y) if self.log_target else y
        self.y_mean_ = float(target.mean())
        self.y_std_ = float(target.std()) or 1.0
        Z = (X - self.x_mean_) / self.x_std_
        t = (target - self.y_mean_) / self.y_std_

        rng = np.random.default_rng(self.random_state)
        order = rng.permutation(X.shape[0])
        n_val = max(1, int(round(self.validation_fraction * X.shape[0])))
        val, trn = order[:n_val], order[n_val:]
        planned = int(self.max_epochs) * (2 if self.refit else 1)

        def report(done: int, total: int) -> None:
            if progress is not None:
                progress(done, total)

        net, best_epoch, stopped, val_rmse = self._train_network(
            Z[trn], t[trn], Z[val], t[val], int(self.max_epochs), lambda e: report(e, planned)
        )
        if self.refit:
            total = stopped + best_epoch
            net, _, _, _ = self._train_network(Z, t, None, None, best_epoch, lambda e: report(stopped + e, total))
        else:
            report(stopped, stopped)
        self.epochs_ = best_epoch
        self.val_rmse_ = val_rmse * self.y_std_
        self.net_ = net.eval()

    def _train_network(
        self,
        Z: np.ndarray,
        t: np.ndarray,
        Zv: np.ndarray | None,
        tv: np.ndarray | None,
        epochs: int,
        on_epoch: Callable[[int], None],
    ) -> tuple["torch.nn.Module", int, int, float]:
        """Seeded training of a fresh network (one output per column of a 2-D t)."""
        torch = _torch()
        n_out = 1 if t.ndim == 1 else t.shape[1]
        with torch_threads(int(self.n_threads)), torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(self.random_state))
            net = build_network(Z.shape[1], tuple(int(h) for h in self.hidden_sizes), self.activation,
                                bool(self.linear_skip), n_out)
            return train_network(
                net, Z, t, Zv, tv, epochs=epochs, learning_rate=float(self.learning_rate),
                weight_decay=float(self.weight_decay), batch_size=int(self.batch_size),
                patience=int(self.patience), seed=int(self.random_state), on_epoch=on_epoch,
            )

    def _predict(self, X: np.ndarray) -> np.ndarray:
        torch = _torch()
        Z = (X - self.x_mean_) / self.x_std_
        with torch_threads(int(self.n_threads)), torch.no_grad():
            out = self.net_(torch.as_tensor(Z, dtype=torch.float32)).double().numpy()
        out = out * self.y_std_ + self.y_mean_
        return np.exp(out) if self.log_target else out

    @classmethod
    def from_network(
        cls,
        net: "torch.nn.Module",
        schema: Any,
        *,
        x_mean: np.ndarray,
        x_std: np.ndarray,
        y_mean: float,
        y_std: float,
        params: Mapping[str, Any],
        n_train: int = 0,
        train_hash: str = "",
        floor_ms: float = 0.0,
    ) -> "MLPPredictor":
        """A fitted predictor around a trained single-output network (e.g. one adapted to a new device).

        ``params`` must describe the network (hidden sizes, activation, skip path)
        so that ``load`` rebuilds the same module; the target is log-latency.
        """
        pred = cls(**{**dict(params), "log_target": True})
        pred._check_params()
        x_mean = np.asarray(x_mean, dtype=np.float64).reshape(-1)
        if x_mean.shape[0] != schema.width:
            raise DataError(f"network scaling is for {x_mean.shape[0]} features; the schema has {schema.width}")
        pred._restore_common(schema, n_train, train_hash, floor_ms)
        pred.n_in_ = schema.width
        pred.x_mean_ = x_mean
        pred.x_std_ = np.asarray(x_std, dtype=np.float64).reshape(-1)
        pred.y_mean_, pred.y_std_ = float(y_mean), float(y_std)
        reference = pred._network()
        try:
            reference.load_state_dict(net.state_dict())
        except RuntimeError as exc:
            raise DataError(f"network does not match MLPPredictor{tuple(pred.hidden_sizes)}: {str(exc).splitlines()[0]}") from None
        pred.net_ = reference.eval()
        pred.epochs_ = 0
        return pred

    # --- differentiable module --------------------------------------------------------------
    def as_module(self) -> "torch.nn.Module":
        """Frozen module: architecture encoding (batch, width) -> latency (batch,) in ms, differentiable in the input.

        For architecture feature schemas the input is the space's one-hot
        encoding (relaxed values allowed); for raw schemas it is the feature matrix.
        """
        self._check_fitted()
        torch = _torch()
        if self.schema_.kind == "raw":
            matrix, offset = np.eye(self.n_features_in_), np.zeros(self.n_features_in_)
        else:
            featurizer = self.featurizer
            if not hasattr(featurizer, "matrix"):
                raise ConfigError(f"features of kind {self.schema_.kind!r} are not a linear map of an encoding; no differentiable module")
            matrix, offset = featurizer.matrix, featurizer.offset
        return _module_class()(
            copy.deepcopy(self.net_),
            matrix=torch.as_tensor(matrix, dtype=torch.float32),
            offset=torch.as_tensor(offset, dtype=torch.float32),
            x_mean=torch.as_tensor(self.x_mean_, dtype=torch.float32),
            x_std=torch.as_tensor(self.x_std_, dtype=torch.float32),
            y_mean=self.y_mean_,
            y_std=self.y_std_,
            log_target=bool(self.log_target),
        ).eval()

    # --- persistence ------------------------------------------------------------------------
    def _save_state(self, directory: Path) -> dict[str, Any]:
        torch = _torch()
        torch.save(self.net_.state_dict(), directory / "mlp.pt")
        np.savez(directory / "scaling.npz", x_mean=self.x_mean_, x_std=self.x_std_,
                 y=np.array([self.y_mean_, self.y_std_]))
        return {"weights": "mlp.pt", "scaling": "scaling.npz", "epochs": int(self.epochs_)}

    def _load_state(self, directory: Path, state: Mapping[str, Any]) -> None:
        torch = _torch()
        self.n_in_ = self.n_features_in_
        from predictors.persistence import read_npz

        path = directory / str(state["scaling"])
        arrays = read_npz(path, ("x_mean", "x_std", "y"))
        self.x_mean_, self.x_std_, yy = (np.asarray(arrays[k], dtype=np.float64) for k in ("x_mean", "x_std", "y"))
        if self.x_mean_.shape != (self.n_in_,) or self.x_std_.shape != (self.n_in_,) or yy.shape != (2,):
            raise PersistenceError(
                f"{path} is corrupt: x_mean {self.x_mean_.shape}, x_std {self.x_std_.shape}, y {yy.shape}; "
                f"expected ({self.n_in_},), ({self.n_in_},) and (2,) for the schema's {self.n_in_} features"
            )
        finite_values("scaling.npz", np.concatenate([np.ravel(self.x_mean_), np.ravel(self.x_std_), np.ravel(yy)]))
        scales = np.append(self.x_std_, yy[1])  # divided by (x_std) or multiplied into every prediction (y std)
        if np.any(scales <= 0):
            bad = "the y scale" if yy[1] <= 0 else f"x_std[{int(np.flatnonzero(self.x_std_ <= 0)[0])}]"
            raise PersistenceError(f"{path} is corrupt: {bad} is {scales[scales <= 0][0]:g}; expected scales > 0")
        self.y_mean_, self.y_std_ = float(yy[0]), float(yy[1])
        net = self._network()
        weights = torch.load(directory / str(state["weights"]), map_location="cpu", weights_only=True)
        net.load_state_dict(weights)
        for name, tensor in net.state_dict().items():
            finite_values(f"mlp.pt tensor {name!r}", tensor.detach().cpu().double().numpy())
        self.net_ = net.eval()
        self.epochs_ = int(state.get("epochs", 0))


@functools.lru_cache(maxsize=1)
def _module_class() -> type:
    torch = _torch()

    class LatencyModule(torch.nn.Module):
        """encoding -> features (linear) -> standardize -> MLP -> ms."""

        def __init__(self, net: Any, *, matrix: Any, offset: Any, x_mean: Any, x_std: Any,
                     y_mean: float, y_std: float, log_target: bool) -> None:
            super().__init__()
            self.net = net.eval()
            for p in self.net.parameters():
                p.requires_grad_(False)
            self.register_buffer("matrix", matrix)
            self.register_buffer("offset", offset)
            self.register_buffer("x_mean", x_mean)
            self.register_buffer("x_std", x_std)
            self.y_mean = y_mean
            self.y_std = y_std
            self.log_target = log_target

        @property
        def encoding_width(self) -> int:
            return int(self.matrix.shape[0])

        def forward(self, encoding: "torch.Tensor") -> "torch.Tensor":
            if encoding.dim() != 2 or encoding.shape[1] != self.matrix.shape[0]:
                raise DataError(f"expected encodings of shape (batch, {self.matrix.shape[0]}), got {tuple(encoding.shape)}")
            x = encoding.to(self.matrix.dtype) @ self.matrix + self.offset
            out = self.net((x - self.x_mean) / self.x_std) * self.y_std + self.y_mean
            return torch.exp(out) if self.log_target else out

    return LatencyModule
