"""The NAS-Bench-201 cell search space (15,625 architectures).

Specs are the benchmark's own strings, so an architecture can be looked up in
the published tables unchanged. torch is imported only by ``build``.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Sequence

from hwprof.errors import ConfigError, InvalidArchitecture
from hwprof.types import Architecture
from hwprof.spaces import ImageSpace
from nas.tabular import load_nb201

if TYPE_CHECKING:
    import torch

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# (destination node, source node) of each edge, in the order of the spec string.
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
NUM_NODES = 4
EXAMPLE_SPEC = "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
NUM_ARCHS = len(OPS) ** len(EDGES)


def live_choices(choices: Sequence[int]) -> tuple[int, ...]:
    """The choices with every edge into a dead node set to ``none``.

    A node is dead when its output reaches the cell output (node 3) through no
    live edge; the operations computing it feed nothing, and an exported graph
    (``build`` + ONNX) drops them. The published tables were measured on
    networks that keep them, so the same spec names different work there.
    """
    ops = list(choices)
    edge = {pair: k for k, pair in enumerate(EDGES)}
    live = {NUM_NODES - 1}
    for node in range(NUM_NODES - 2, 0, -1):  # 2, then 1: a node lives if a live edge leads to a live node
        if any(ops[edge[(dst, node)]] != 0 and dst in live for dst in range(node + 1, NUM_NODES)):
            live.add(node)
    for k, (dst, _src) in enumerate(EDGES):
        if dst not in live:
            ops[k] = 0
    return tuple(ops)


class NB201Space(ImageSpace):
    """NAS-Bench-201: six edges of a 4-node cell, each one of five operations.

    ``index``/``from_index`` use the benchmark's official numbering (from the
    bundled table), which is *not* the order of ``enumerate``.
    """

    name = "nb201"
    _LAYERS = tuple((f"{dst}<-{src}", OPS) for dst, src in EDGES)

    def __init__(
        self,
        num_classes: int = 10,
        channels: int = 16,
        cells_per_stage: int = 5,
        input_size: int = 32,
        batch_size: int = 1,
    ) -> None:
        super().__init__(
            num_classes=num_classes,
            input_size=input_size,
            batch_size=batch_size,
            channels=channels,
            cells_per_stage=cells_per_stage,
        )
        if input_size % 4:
            raise ConfigError(
                f"NB201Space: input_size must be a multiple of 4 (two stride-2 reductions), got {input_size}"
            )

    # --- conversions -------------------------------------------------------------
    def spec_from_choices(self, choices: Sequence[int]) -> str:
        self._check_choices(choices)
        ops = [OPS[int(c)] for c in choices]
        nodes, k = [], 0
        for dst in range(1, NUM_NODES):
            nodes.append("|" + "|".join(f"{ops[k + src]}~{src}" for src in range(dst)) + "|")
            k += dst
        return "+".join(nodes)

    def choices_from_spec(self, spec: str) -> tuple[int, ...]:
        def bad(problem: str) -> InvalidArchitecture:
            return InvalidArchitecture(f"nb201: {problem} in {spec!r}; expected the format {EXAMPLE_SPEC!r}")

        if not isinstance(spec, str):
            raise InvalidArchitecture(f"nb201: spec must be a string like {EXAMPLE_SPEC!r}, got {type(spec).__name__}")
        nodes = spec.split("+")
        if len(nodes) != NUM_NODES - 1:
            raise bad(f"{len(nodes)} node(s) separated by '+', expected {NUM_NODES - 1}")
        choices: list[int] = []
        for dst, node in enumerate(nodes, start=1):
            if len(node) < 2 or node[0] != "|" or node[-1] != "|":
                raise bad(f"node {dst} {node!r} is not enclosed in '|'")
            edges = node[1:-1].split("|")
            if len(edges) != dst:
                raise bad(f"node {dst} has {len(edges)} edge(s), expected {dst}")
            for src, edge in enumerate(edges):
                op, sep, given_src = edge.partition("~")
                if not sep:
                    raise bad(f"edge {edge!r} lacks '~<input node>'")
                if given_src != str(src):
                    raise bad(f"edge {edge!r} of node {dst} has input {given_src!r}, expected ~{src}")
                if op not in OPS:
                    raise bad(f"unknown operation {op!r} (known: {', '.join(OPS)})")
                choices.append(OPS.index(op))
        return tuple(choices)

    def genotype(self, arch: Architecture) -> tuple[tuple[tuple[str, int], ...], ...]:
        """Per node 1..3, its incoming edges as (operation, input node), ``none`` included."""
        ops = [OPS[c] for c in self.to_choices(arch)]
        out, k = [], 0
        for dst in range(1, NUM_NODES):
            out.append(tuple((ops[k + src], src) for src in range(dst)))
            k += dst
        return tuple(out)

    def live_equivalent(self, arch: Architecture) -> Architecture:
        """The architecture of the work its exported network really does: edges into dead nodes set to ``none``."""
        return self.from_choices(live_choices(self.to_choices(arch)))

    # --- benchmark index ----------------------------------------------------------
    def index(self, arch: Architecture) -> int:
        """The architecture's official NAS-Bench-201 index (0..15624)."""
        self.to_choices(arch)  # the parser is strict, so a valid spec is already canonical
        return load_nb201().index_of(arch.spec)

    def from_index(self, i: int) -> Architecture:
        try:
            i = operator.index(i)
        except TypeError:
            raise InvalidArchitecture(f"nb201: index must be an integer in 0..{NUM_ARCHS - 1}, got {i!r}") from None
        if not 0 <= i < NUM_ARCHS:
            raise InvalidArchitecture(f"nb201: index must be in 0..{NUM_ARCHS - 1}, got {i}")
        return Architecture(self.name, load_nb201().archs[i])

    # --- networks -----------------------------------------------------------------
    def build(self, arch: Architecture, seed: int | None = None) -> "torch.nn.Module":
        import torch

        from nas.spaces.nb201_ops import TinyNetwork

        live = [tuple((op, src) for op, src in node if op != "none") for node in self.genotype(arch)]

        def make() -> torch.nn.Module:
            return TinyNetwork(live, self.channels, self.cells_per_stage, self.num_classes)

        if seed is None:
            model = make()
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = make()
        return model.eval()
