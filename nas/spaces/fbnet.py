"""The FBNet layer-wise search space as benchmarked by HW-NAS-Bench and HELP.

22 searchable layers in a chain, each one of nine blocks. The spec string is
the 22 block names joined by ``|`` (first layer first), the format of the
``ops`` column of the bundled ``fbnet.csv.gz`` (HELP's 5,000 measured
networks), so a network can be looked up in that table unchanged.

The network follows HW-NAS-Bench's CIFAR setting, repository GATECH-EIC
(formerly RICE-EIC)/HW-NAS-Bench, commit 6c67e04375d0b9016846cce627f67804235f5e9e,
``hw_nas_bench_api/fbnet_models/model_infer.py`` (``FBNet_Infer``, ``ConvBlock``,
``Skip``); HELP (HayeonLee/HELP, ``data/fbnet``) measured those networks:

- stem: 3x3 conv 3->16, stride 1, BN, ReLU;
- seven stages of 1, 4, 4, 4, 4, 4, 1 layers with 16, 24, 32, 64, 112, 184,
  352 output channels; the first layer of a stage has the stage's stride
  (1, 1, 2, 2, 1, 2, 1 for CIFAR), the other layers stride 1;
- head: 1x1 conv 352->1504, BN, ReLU; global average pool; linear 1504->classes.

A ``k{k}_e{e}`` block is an inverted residual: 1x1 conv C_in->e*C_in, BN, ReLU;
kxk depthwise conv (the layer's stride), BN, ReLU; 1x1 conv e*C_in->C_out, BN;
plus the input when the stride is 1 and C_in == C_out. The expansion is on the
*input* width. In ``_g2`` blocks both 1x1 convs have 2 groups and the channels
are shuffled between the first 1x1 conv and the depthwise conv. ``skip`` is
the identity where shapes match; in the six layers that change width or
resolution (layer1, 5, 9, 13, 17, 21) it is a 1x1 conv (with the stride), BN,
ReLU, so ``skip`` is allowed in every layer. Weights are initialised as in
HW-NAS-Bench (Kaiming-normal fan-out convs, BN 1/0, linear N(0, 0.001)).

torch is imported only by ``build``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple, Sequence

from hwprof.errors import InvalidArchitecture
from hwprof.types import Architecture
from hwprof.spaces import ImageSpace

if TYPE_CHECKING:
    import torch

# The option order of every layer (HW-NAS-Bench's PRIMITIVES, alphabetical).
OPS = ("k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip")
# (output channels, layers, stride of the first layer) per stage, CIFAR setting.
STAGES = ((16, 1, 1), (24, 4, 1), (32, 4, 2), (64, 4, 2), (112, 4, 1), (184, 4, 2), (352, 1, 1))
STEM_CHANNELS = 16
HEAD_CHANNELS = 1504
NUM_LAYERS = sum(n for _, n, _ in STAGES)


class LayerPlan(NamedTuple):
    """Fixed shape of one searchable layer; the chosen block only fills it in."""

    c_in: int
    c_out: int
    stride: int


def layer_plans() -> tuple[LayerPlan, ...]:
    """Input width, output width and stride of the 22 layers, first layer first."""
    plans, c_in = [], STEM_CHANNELS
    for c_out, n, stride in STAGES:
        for i in range(n):
            plans.append(LayerPlan(c_in, c_out, stride if i == 0 else 1))
            c_in = c_out
    return tuple(plans)


def block_config(op: str) -> tuple[int, int, int] | None:
    """(kernel, expansion, groups) of a block name, None for ``skip``."""
    if op == "skip":
        return None
    parts = op.split("_")
    return int(parts[0][1:]), int(parts[1][1:]), int(parts[2][1:]) if len(parts) == 3 else 1


class FBNetSpace(ImageSpace):
    """FBNet (HW-NAS-Bench/HELP): 22 layers ``layer0``..``layer21``, nine blocks each.

    Every layer offers, in this order: k3_e1, k3_e1_g2, k3_e3, k3_e6, k5_e1,
    k5_e1_g2, k5_e3, k5_e6, skip. The macro architecture is fixed to the
    benchmark's CIFAR setting whatever ``input_size`` is, so latencies stay
    comparable with the published table; ``input_size`` only changes the input.
    """

    name = "fbnet"
    _LAYERS = tuple((f"layer{i}", OPS) for i in range(NUM_LAYERS))

    def __init__(self, num_classes: int = 100, input_size: int = 32, batch_size: int = 1) -> None:
        super().__init__(num_classes=num_classes, input_size=input_size, batch_size=batch_size)

    # --- conversions -------------------------------------------------------------
    def spec_from_choices(self, choices: Sequence[int]) -> str:
        self._check_choices(choices)
        return "|".join(OPS[int(c)] for c in choices)

    def choices_from_spec(self, spec: str) -> tuple[int, ...]:
        if not isinstance(spec, str):
            raise InvalidArchitecture(
                f"fbnet: spec must be a string of {NUM_LAYERS} ops joined by '|', got {type(spec).__name__}"
            )
        ops = spec.split("|")
        if len(ops) != NUM_LAYERS:
            raise InvalidArchitecture(
                f"fbnet: expected {NUM_LAYERS} ops joined by '|', got {len(ops)} in {spec!r}"
            )
        choices = []
        for i, op in enumerate(ops):
            if op not in OPS:
                raise InvalidArchitecture(
                    f"fbnet: unknown op {op!r} at position {i} (layer{i}); allowed: {', '.join(OPS)}"
                )
            choices.append(OPS.index(op))
        return tuple(choices)

    # --- networks -----------------------------------------------------------------
    def build(self, arch: Architecture, seed: int | None = None) -> "torch.nn.Module":
        ops = [OPS[c] for c in self.to_choices(arch)]  # validate before paying for the torch import
        import torch

        network = _torch_modules()["FBNetNetwork"]

        if seed is None:
            model = network(ops, self.num_classes)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = network(ops, self.num_classes)
        return model.eval()


@lru_cache(maxsize=1)
def _torch_modules() -> dict[str, Any]:
    """The network's torch classes, defined on first use so that importing this module needs no torch."""
    import torch
    from torch import nn

    def conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, relu: bool = True) -> list[nn.Module]:
        layers: list[nn.Module] = [
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(c_out),
        ]
        if relu:
            layers.append(nn.ReLU(inplace=False))
        return layers

    class ChannelShuffle(nn.Module):
        """[N, g*c, H, W] -> [N, c*g, H, W]: channel i of group j moves to position i*g + j."""

        def __init__(self, groups: int) -> None:
            super().__init__()
            self.groups = groups

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.unflatten(1, (self.groups, -1)).transpose(1, 2).flatten(1, 2)

    class InvertedResidual(nn.Module):
        def __init__(self, plan: LayerPlan, kernel: int, expansion: int, groups: int) -> None:
            super().__init__()
            mid = plan.c_in * expansion
            body = conv_bn(plan.c_in, mid, 1, groups=groups)
            if groups > 1:
                body.append(ChannelShuffle(groups))
            body += conv_bn(mid, mid, kernel, stride=plan.stride, groups=mid)
            body += conv_bn(mid, plan.c_out, 1, groups=groups, relu=False)
            self.body = nn.Sequential(*body)
            self.residual = plan.stride == 1 and plan.c_in == plan.c_out

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.body(x)
            return out + x if self.residual else out

    def make_layer(op: str, plan: LayerPlan) -> nn.Module:
        cfg = block_config(op)
        if cfg is not None:
            return InvertedResidual(plan, *cfg)
        if plan.stride == 1 and plan.c_in == plan.c_out:
            return nn.Identity()
        return nn.Sequential(*conv_bn(plan.c_in, plan.c_out, 1, stride=plan.stride))

    class FBNetNetwork(nn.Module):
        """Stem, 22 chosen layers, 1x1 head conv, global pool, linear."""

        def __init__(self, ops: Sequence[str], num_classes: int) -> None:
            super().__init__()
            self.stem = nn.Sequential(*conv_bn(3, STEM_CHANNELS, 3))
            self.layers = nn.Sequential(*(make_layer(op, plan) for op, plan in zip(ops, layer_plans(), strict=True)))
            self.head = nn.Sequential(*conv_bn(STAGES[-1][0], HEAD_CHANNELS, 1))
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Linear(HEAD_CHANNELS, num_classes)
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out")
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
                elif isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, std=0.001)
                    nn.init.zeros_(m.bias)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.head(self.layers(self.stem(x)))
            return self.classifier(torch.flatten(self.pool(x), 1))

    return {"FBNetNetwork": FBNetNetwork, "InvertedResidual": InvertedResidual, "ChannelShuffle": ChannelShuffle}
