"""Straight-through discrete sampling of architectures from logits, and temperature schedules.

Both samplers return a tensor whose *value* is a one-hot architecture (so the
losses are those of a real network) and whose *gradient* with respect to the
logits comes from a relaxation:

- ``gumbel_st`` (GDAS, Dong & Yang 2019): the argmax of logits + Gumbel noise,
  with the gradient of softmax((logits + noise) / tau);
- ``reinmax`` (Liu et al., NeurIPS 2023): a sample from softmax(logits) with a
  second-order (Heun) gradient estimate that is less biased than plain
  straight-through; tau tempers the relaxed half of the estimate.

Logits have the options on the last axis. Padded options (layers with fewer
choices than the widest one) carry ``MASK_LOGIT`` and are never sampled; a
large finite value keeps every intermediate free of NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from hwprof.errors import ConfigError

MASK_LOGIT = -1.0e4
SAMPLERS = ("reinmax", "gdas")


def _categorical(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    flat = probs.reshape(-1, probs.shape[-1])
    idx = torch.multinomial(flat, 1, generator=generator).reshape(probs.shape[:-1])
    return torch.nn.functional.one_hot(idx, probs.shape[-1]).to(probs.dtype)


def gumbel_st(logits: torch.Tensor, tau: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Hard Gumbel-softmax sample with the soft sample's gradient (GDAS)."""
    u = torch.rand(logits.shape, generator=generator, dtype=logits.dtype).clamp_(1e-10, 1.0 - 1e-7)
    gumbel = -torch.log(-torch.log(u))
    soft = torch.softmax((logits + gumbel) / tau, dim=-1)
    hard = torch.nn.functional.one_hot(soft.argmax(dim=-1), logits.shape[-1]).to(logits.dtype)
    return hard - soft.detach() + soft


def reinmax(logits: torch.Tensor, tau: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """ReinMax: a one-hot sample of softmax(logits) with the ReinMax gradient (Algorithm 2 of the paper)."""
    pi0 = torch.softmax(logits, dim=-1)
    hard = _categorical(pi0.detach(), generator)
    pi1 = (hard + torch.softmax(logits / tau, dim=-1)) / 2.0
    pi1 = torch.softmax((torch.log(pi1) - logits).detach() + logits, dim=-1)
    pi2 = 2.0 * pi1 - 0.5 * pi0
    return pi2 - pi2.detach() + hard


def sample(name: str, logits: torch.Tensor, tau: float, generator: torch.Generator | None = None) -> torch.Tensor:
    if name == "reinmax":
        return reinmax(logits, tau, generator)
    if name == "gdas":
        return gumbel_st(logits, tau, generator)
    raise ConfigError(f"unknown sampler {name!r}; expected one of {', '.join(SAMPLERS)}")


@dataclass(frozen=True)
class TemperatureSchedule:
    """tau from ``start`` to ``end`` over a run: ``"exponential"`` (geometric), ``"linear"`` or ``"constant"``."""

    start: float
    end: float
    kind: str = "exponential"

    def __post_init__(self) -> None:
        for name, v in (("start", self.start), ("end", self.end)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ConfigError(f"temperature {name} must be a finite number > 0, got {v!r}")
        if self.kind not in ("exponential", "linear", "constant"):
            raise ConfigError(f"temperature schedule must be 'exponential', 'linear' or 'constant', got {self.kind!r}")

    def __call__(self, step: int, total: int) -> float:
        if self.kind == "constant" or total <= 1:
            return float(self.start)
        frac = min(max(step / (total - 1), 0.0), 1.0)
        if self.kind == "linear":
            return float(self.start + (self.end - self.start) * frac)
        return float(self.start * (self.end / self.start) ** frac)
