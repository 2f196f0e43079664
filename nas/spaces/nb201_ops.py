"""Torch modules of the NAS-Bench-201 network (imported only by ``NB201Space.build``).

Mirrors the benchmark's ``TinyNetwork`` / ``InferCell`` / ``ResNetBasicblock`` so that
parameter counts and layer shapes match the published ones.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

# One cell: for node j = 1..3, the live incoming edges as (op name, input node).
Genotype = Sequence[Sequence[tuple[str, int]]]


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
        )


def make_op(name: str, channels: int) -> nn.Module:
    """A live (non-``none``) edge operation; cells keep the channel count, stride 1."""
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    if name == "skip_connect":
        return nn.Identity()
    raise ValueError(f"no module for NAS-Bench-201 op {name!r}")


class Cell(nn.Module):
    """node0 = input; node j = sum of op(node i) over live edges i -> j; output = node 3.

    A ``none`` edge contributes zero, so it is left out of the sum. A node without
    any live input is a real zero tensor (``x * 0.0``), which exports to ONNX.
    """

    def __init__(self, genotype: Genotype, channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList()
        self.plan: list[list[tuple[int, int]]] = []  # per node: (edge module index, input node)
        for node in genotype:
            inputs = []
            for op, src in node:
                inputs.append((len(self.edges), src))
                self.edges.append(make_op(op, channels))
            self.plan.append(inputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for inputs in self.plan:
            if not inputs:
                nodes.append(x * 0.0)
                continue
            out = self.edges[inputs[0][0]](nodes[inputs[0][1]])
            for e, src in inputs[1:]:
                out = out + self.edges[e](nodes[src])
            nodes.append(out)
        return nodes[-1]


class ResNetBasicBlock(nn.Module):
    """The stride-2 reduction block between stages."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class TinyNetwork(nn.Module):
    """Stem, three stages of cells (C, 2C, 4C) joined by reduction blocks, BN-ReLU, pool, linear."""

    def __init__(self, genotype: Genotype, channels: int, cells_per_stage: int, num_classes: int) -> None:
        super().__init__()
        c = channels
        self.stem = nn.Sequential(nn.Conv2d(3, c, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(c))
        cells: list[nn.Module] = []
        for stage, width in enumerate((c, 2 * c, 4 * c)):
            if stage > 0:
                cells.append(ResNetBasicBlock(width // 2, width))
            cells.extend(Cell(genotype, width) for _ in range(cells_per_stage))
        self.cells = nn.Sequential(*cells)
        self.lastact = nn.Sequential(nn.BatchNorm2d(4 * c), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4 * c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lastact(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.global_pooling(x), 1))
