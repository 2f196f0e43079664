"""A weight-sharing NAS-Bench-201 supernet: every edge holds all five operations.

The cell mixes its edges' operations with per-edge weights (6 x 5) supplied
at call time — in MODNAS a straight-through sample from the hypernetwork, so
the value is one architecture and the gradient reaches every option. With
``full=True`` every operation is computed, giving the exact straight-through
gradient d loss / d w_k = <d loss / d out, op_k(x)>; with ``full=False`` only
the operations with a non-zero weight run (GDAS-style, for weight updates,
where the other operations' parameters would get zero gradient anyway).

Built from the benchmark's own blocks (``nas.spaces.nb201_ops``) and sized
for CPU training with small channel counts.
"""

from __future__ import annotations

import torch
from torch import nn

from nas.spaces.nb201 import EDGES, NUM_NODES, OPS
from nas.spaces.nb201_ops import ResNetBasicBlock, make_op


class MixedEdge(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.ops = nn.ModuleList(nn.Identity() if name == "none" else make_op(name, channels) for name in OPS)
        self.none_index = OPS.index("none")

    def forward(self, x: torch.Tensor, w: torch.Tensor, full: bool) -> torch.Tensor:
        out = None
        for k, op in enumerate(self.ops):
            if k == self.none_index or (not full and float(w[k]) == 0.0):
                continue  # "none" contributes w_k * 0 whatever w_k is
            term = w[k] * op(x)
            out = term if out is None else out + term
        return out if out is not None else x * 0.0


class SuperCell(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(MixedEdge(channels) for _ in EDGES)

    def forward(self, x: torch.Tensor, weights: torch.Tensor, full: bool) -> torch.Tensor:
        nodes = [x]
        for dst in range(1, NUM_NODES):
            out = None
            for e, (d, src) in enumerate(EDGES):
                if d != dst:
                    continue
                term = self.edges[e](nodes[src], weights[e], full)
                out = term if out is None else out + term
            nodes.append(out)
        return nodes[-1]


class NB201Supernet(nn.Module):
    """Stem, three stages of shared cells (C, 2C, 4C) with reduction blocks, classifier."""

    def __init__(self, channels: int = 8, cells_per_stage: int = 1, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        c = channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        blocks: list[nn.Module] = []
        for stage, width in enumerate((c, 2 * c, 4 * c)):
            if stage > 0:
                blocks.append(ResNetBasicBlock(width // 2, width))
            blocks.extend(SuperCell(width) for _ in range(cells_per_stage))
        self.blocks = nn.ModuleList(blocks)
        self.lastact = nn.Sequential(nn.BatchNorm2d(4 * c), nn.ReLU(inplace=False))
        self.classifier = nn.Linear(4 * c, num_classes)

    def forward(self, x: torch.Tensor, weights: torch.Tensor, full: bool = True) -> torch.Tensor:
        """``weights``: (6, 5) per-edge operation weights in ``nas.spaces.nb201.OPS`` order."""
        x = self.stem(x)
        for block in self.blocks:
            x = block(x, weights, full) if isinstance(block, SuperCell) else block(x)
        x = self.lastact(x)
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))
