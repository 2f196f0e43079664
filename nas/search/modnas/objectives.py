"""The two objectives of a MODNAS step, each normalised to about [0, 1] so a preference weights like with like.

- error: from the accuracy surrogate (surrogate mode) scaled by the
  surrogate's own minimum and maximum over the space, or the supernet's
  cross-entropy divided by ln(classes) (supernet mode; 1 = chance level);
- latency: the frozen latency surrogate's prediction for the device, scaled to
  [0, 1] by its own minimum and maximum over the space *on that device* — the
  per-device normalisation the MODNAS evaluation uses (min/max over the
  space), so one preference means the same trade-off on a fast GPU and a slow
  phone.

``scale="log"`` min/max-normalises the logarithm of the predicted error and
latency instead of the values. Both orders (and so the Pareto front) are
unchanged, but the ends of the front are stretched: between the most accurate
networks error differs by tenths of a percent of a 90-point range, and between
the fastest ones latency by a few percent of its range, so on the linear scale
the rays near (1, 0) and (0, 1) see differences too small to steer by.

A task's loss is its preference r applied to the two normalised objectives
(``scalarise``): the weighted sum r . L, or the (augmented) Chebyshev
scalarisation max_i r_i L_i + rho * sum_i L_i. The weighted sum's optima lie on
the convex hull of the front only, so on a front with concave stretches many
rays share a few corner networks; each Chebyshev ray reaches the front where
it crosses the line r_1 L_1 = r_2 L_2, concave parts included. The small
augmentation keeps weakly dominated networks out (and gives the inactive
objective a gradient).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from nas.search.modnas.supernet import NB201Supernet
from nas.search.modnas.surrogates import AccuracySurrogate, LatencySurrogate

SCALARISATIONS = ("weighted_sum", "chebyshev")
CHEBYSHEV_AUGMENT = 0.01  # rho of the augmented Chebyshev scalarisation

BATCH = 4096  # rows per no-grad pass when scoring a whole space


def predict_in_batches(fn, enc: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        parts = [fn(enc[i : i + BATCH], *(e.expand(min(BATCH, enc.shape[0] - i), -1) for e in extra))
                 for i in range(0, enc.shape[0], BATCH)]
    return torch.cat(parts)


ERROR_FLOOR_PCT = 0.1  # predicted error is clipped here before a log: a surrogate may overshoot below 0 %


def scalarise(objectives: torch.Tensor, preference: torch.Tensor, kind: str) -> torch.Tensor:
    """The loss of preference ``preference`` (..., 2) on normalised ``objectives`` (..., 2); see the module docstring."""
    weighted = objectives * preference
    if kind == "weighted_sum":
        return weighted.sum(dim=-1)
    if kind == "chebyshev":
        return weighted.amax(dim=-1) + CHEBYSHEV_AUGMENT * objectives.sum(dim=-1)
    raise ValueError(f"unknown scalarisation {kind!r}; known: {', '.join(SCALARISATIONS)}")


class SurrogateError:
    """Normalised predicted error of the accuracy surrogate (surrogate mode)."""

    label = "surrogate"

    def __init__(self, model: AccuracySurrogate, space_enc: torch.Tensor, scale: str = "linear") -> None:
        self.model = model
        self.scale = scale
        pred = self._transform(predict_in_batches(model, space_enc))
        self.lo, self.hi = float(pred.min()), float(pred.max())

    def _transform(self, err_pct: torch.Tensor) -> torch.Tensor:
        return torch.log(err_pct.clamp_min(ERROR_FLOOR_PCT)) if self.scale == "log" else err_pct

    def normalise(self, err_pct: torch.Tensor) -> torch.Tensor:
        return (self._transform(err_pct) - self.lo) / (self.hi - self.lo)

    def __call__(self, enc: torch.Tensor, onehot: torch.Tensor, batch: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        return self.normalise(self.model(enc))


class SupernetError:
    """Cross-entropy of the weight-sharing supernet on a batch, / ln(classes) (supernet mode)."""

    label = "supernet"

    def __init__(self, supernet: NB201Supernet, num_classes: int) -> None:
        self.supernet = supernet
        self.scale = math.log(num_classes)

    def __call__(self, enc: torch.Tensor, onehot: torch.Tensor, batch: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        assert batch is not None
        x, y = batch
        losses = [torch.nn.functional.cross_entropy(self.supernet(x, w, full=True), y) for w in onehot]
        return torch.stack(losses) / self.scale


class NormalisedLatency:
    """Latency surrogate output mapped to [0, 1] per device by its range over the space."""

    def __init__(self, model: LatencySurrogate, space_enc: torch.Tensor, embeddings: torch.Tensor, scale: str = "linear") -> None:
        self.model = model
        self.scale = scale
        lo, hi = [], []
        for e in embeddings:
            z = predict_in_batches(model, space_enc, e[None])
            lo.append(float(z.min()))
            hi.append(float(z.max()))
        self.z_min = torch.tensor(lo)
        self.z_max = torch.tensor(hi)

    @staticmethod
    def normalise(z: torch.Tensor, lo: torch.Tensor | float, hi: torch.Tensor | float, scale: str) -> torch.Tensor:
        """Log latency ``z`` -> [0, 1] given the device's range [lo, hi] of ``z``."""
        if scale == "log":
            return (z - lo) / (hi - lo)
        return torch.expm1(z - lo) / torch.expm1(torch.as_tensor(hi - lo))

    def __call__(self, enc: torch.Tensor, emb: torch.Tensor, device_rows: torch.Tensor) -> torch.Tensor:
        return self.normalise(self.model(enc, emb), self.z_min[device_rows], self.z_max[device_rows], self.scale)

    def ranges(self) -> np.ndarray:
        return torch.stack([self.z_min, self.z_max], 1).numpy()
