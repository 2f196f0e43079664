"""MACs and parameter counts of every (layer, option) of a space, from the space's own networks.

Rather than re-deriving each space's macro-architecture by hand, the table is
measured: build the reference network and, for every layer and option, the
network that differs only there; count multiply-accumulates of Conv2d/Linear
modules with forward hooks and parameters with ``numel``. For spaces where
each layer's cost does not depend on the other layers' choices (chain spaces
with fixed shapes such as FBNet, and NAS-Bench-201 whose cell is repeated)
the cost of any network is then ``base + sum of per-layer deltas`` — linear in
the one-hot encoding. ``layer_cost_table`` checks that on a few random
networks and refuses spaces where it does not hold.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from hwprof.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from hwprof.spaces import SearchSpace


@dataclass(frozen=True)
class LayerCostTable:
    """Per (layer, option) deltas in the space's one-hot column order, plus the constant part."""

    macs: np.ndarray  # (encoding_width,), per sample (batch 1)
    params: np.ndarray  # (encoding_width,)
    base_macs: float
    base_params: float


def count_macs_params(model: "torch.nn.Module", input_shape: Sequence[int]) -> tuple[int, int]:
    """Multiply-accumulates of Conv2d and Linear layers for one sample, and the parameter count."""
    import torch
    from torch import nn

    total = [0]

    def conv_hook(module: nn.Conv2d, inputs: Any, output: torch.Tensor) -> None:
        kh, kw = module.kernel_size
        total[0] += int(output[0].numel()) * (module.in_channels // module.groups) * kh * kw

    def linear_hook(module: nn.Linear, inputs: Any, output: torch.Tensor) -> None:
        total[0] += int(output[0].numel()) * module.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    try:
        with torch.no_grad():
            model(torch.zeros((1, *tuple(input_shape)[1:])))
    finally:
        for h in handles:
            h.remove()
    return total[0], int(sum(p.numel() for p in model.parameters()))


@functools.lru_cache(maxsize=8)
def _cached_table(space_key: str, space: "SearchSpace") -> LayerCostTable:
    def cost(choices: Sequence[int]) -> np.ndarray:
        model = space.build(space.from_choices(choices), seed=0)
        return np.array(count_macs_params(model, space.input_shape), dtype=np.float64)

    reference = list(space.to_choices(space.reference_architecture()))
    ref_cost = cost(reference)
    deltas = np.zeros((space.encoding_width, 2))
    col = 0
    for layer, (_, options) in enumerate(space.layers):
        for option in range(len(options)):
            if option != reference[layer]:
                choices = list(reference)
                choices[layer] = option
                deltas[col] = cost(choices) - ref_cost
            col += 1
    base = ref_cost.copy()  # cost of the reference network = base + its own (zero) deltas
    # Check additivity on random networks: exact counts must match base + sum of deltas.
    rng = np.random.default_rng(0)
    sizes = [len(opts) for _, opts in space.layers]
    offsets = np.cumsum([0, *sizes[:-1]])
    for _ in range(3):
        choices = [int(rng.integers(s)) for s in sizes]
        expected = base + deltas[offsets + np.array(choices)].sum(axis=0)
        actual = cost(choices)
        if not np.allclose(actual, expected, rtol=1e-9, atol=0.5):
            raise ConfigError(
                f"space {space.name!r}: MACs/params of a network are not the sum of per-layer costs "
                f"(got {actual.tolist()}, additive model says {expected.tolist()}); the flops features need a layer-additive space"
            )
    return LayerCostTable(macs=deltas[:, 0], params=deltas[:, 1], base_macs=float(base[0]), base_params=float(base[1]))


def layer_cost_table(space: "SearchSpace") -> LayerCostTable:
    """MACs/params per (layer, option), measured once per space configuration and cached."""
    return _cached_table(repr(space), space)
