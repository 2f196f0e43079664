"""Parameter count and multiply-accumulates, counted on the built torch module."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from hwprof.types import Architecture

if TYPE_CHECKING:
    import torch

    from hwprof.spaces import SearchSpace


def count_params(model: "torch.nn.Module") -> int:
    return int(sum(p.numel() for p in model.parameters()))


def count_macs(model: "torch.nn.Module", input_shape: Sequence[int]) -> int:
    """MACs of one forward pass on a zero input of ``input_shape`` (batch included).

    Forward hooks count Conv2d (out elements x in-channels/groups x kernel area)
    and Linear (out elements x in-features); other layers (norms, pooling,
    activations, additions) are not multiply-accumulates of weights and are
    ignored, as in the usual FLOPs counters.
    """
    import torch

    total = 0

    def conv_hook(module: torch.nn.Conv2d, inputs, output) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        total += output.numel() * (module.in_channels // module.groups) * kh * kw

    def linear_hook(module: torch.nn.Linear, inputs, output) -> None:
        nonlocal total
        total += output.numel() * module.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, torch.nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(*input_shape))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return int(total)


class _BuiltCount:
    """Counts something on the built network, cached per architecture (building is the slow part)."""

    cheap = False
    name = ""
    unit = "count"

    def __init__(self, space: "SearchSpace") -> None:
        self.space = space
        self._cache: dict[Architecture, float] = {}

    def _count(self, model: "torch.nn.Module") -> int:
        raise NotImplementedError

    def describe(self) -> str:
        return f"{self.name} of {self.space.name} networks as built (input {tuple(self.space.input_shape)})"

    def cost(self, arch: Architecture) -> float:
        value = self._cache.get(arch)
        if value is None:
            value = float(self._count(self.space.build(arch, seed=0)))
            self._cache[arch] = value
        return value

    def costs(self, archs: Sequence[Architecture]) -> np.ndarray:
        return np.array([self.cost(a) for a in archs], dtype=np.float64)


class ParamsCost(_BuiltCount):
    """Number of parameters of the built network."""

    name = "params"

    def _count(self, model: "torch.nn.Module") -> int:
        return count_params(model)


class MacsCost(_BuiltCount):
    """Multiply-accumulates of one forward pass at the space's input shape, batch 1."""

    name = "macs"

    def _count(self, model: "torch.nn.Module") -> int:
        shape = (1, *tuple(self.space.input_shape)[1:])
        return count_macs(model, shape)
