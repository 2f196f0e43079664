"""Architecture encodings for any layer-wise search space.

Every feature here is a *linear* function of the per-layer one-hot encoding,
``features = onehot @ matrix + offset``. That keeps them honest (computed from
the choices alone, nothing tuned to a device) and lets a gradient-based search
feed a relaxed (softmax) encoding through the same map
(:meth:`ArchFeaturizer.from_encoding`).

Feature sets (the schema kind is ``"<set>:<space>"``):

- ``onehot``: one column per (layer, option), layer blocks in order;
- ``onehot+counts``: plus how many layers chose each option name (e.g. the
  number of 3x3 convolutions) — the per-op totals that latency is mostly made
  of, which trees otherwise have to assemble from many one-hot columns;
- ``flops``: the network's MACs in millions, one column (the FLOPs baseline),
  measured per (layer, option) from the space's own networks
  (:mod:`predictors.features.layer_costs`).

Spaces are found by name through the ``hwprof.spaces`` entry points, so a
third-party space gets these encodings for free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from hwprof import registry
from hwprof.errors import DataError, HwprofError, UnknownNameError
from hwprof.types import Architecture
from predictors.schema import FeatureSchema

if TYPE_CHECKING:
    from hwprof.spaces import SearchSpace

class ArchitectureError(DataError):
    """A DataError about the architecture at ``index`` of a list (``spec``, ``reason``): a caller that read
    the list from a file turns the index into the file's line, so the message names the row that is wrong."""

    def __init__(self, index: int, spec: str, reason: str, message: str | None = None) -> None:
        super().__init__(message if message is not None else f"architecture {index}: {reason}")
        self.index, self.spec, self.reason = index, spec, reason

    def at_line(self, line: int) -> str:
        """The same error, the row named by its ``line`` in a file."""
        return f"line {line} {self.spec!r}: {self.reason}"


FEATURE_SETS = ("onehot", "onehot+counts", "flops")
DEFAULT_FEATURE_SET = "onehot+counts"
ENCODING_VERSION = 1


def option_names(space: "SearchSpace") -> list[str]:
    """Distinct option names over all layers, in first-seen order."""
    seen: dict[str, None] = {}
    for _, options in space.layers:
        for opt in options:
            seen.setdefault(opt, None)
    return list(seen)


def count_matrix(space: "SearchSpace") -> np.ndarray:
    """(encoding_width, n_option_names) 0/1 map: onehot @ M = per-option-name layer counts."""
    names = option_names(space)
    out = np.zeros((space.encoding_width, len(names)))
    col = 0
    for _, options in space.layers:
        for opt in options:
            out[col, names.index(opt)] = 1.0
            col += 1
    return out


class ArchFeaturizer:
    """Architecture specs of one space -> linear features of their one-hot encoding."""

    def __init__(self, space: "str | SearchSpace" = "nb201", feature_set: str = DEFAULT_FEATURE_SET) -> None:
        if feature_set not in FEATURE_SETS:
            raise UnknownNameError(f"unknown feature set {feature_set!r}; known: {', '.join(FEATURE_SETS)}")
        self.space = registry.get_space(space) if isinstance(space, str) else space
        self.feature_set = feature_set
        width = self.space.encoding_width
        if feature_set == "flops":
            from predictors.features.layer_costs import layer_cost_table

            table = layer_cost_table(self.space)
            self.matrix = (table.macs / 1e6)[:, None]
            self.offset = np.array([table.base_macs / 1e6])
            names = ["macs_m"]
        else:
            blocks = [np.eye(width)]
            names = list(self.space.encoding_names())
            if feature_set == "onehot+counts":
                blocks.append(count_matrix(self.space))
                names += [f"count:{opt}" for opt in option_names(self.space)]
            self.matrix = np.hstack(blocks)
            self.offset = np.zeros(self.matrix.shape[1])
        self.schema = FeatureSchema(f"{feature_set}:{self.space.name}", tuple(names), ENCODING_VERSION)

    @classmethod
    def from_kind(cls, kind: str) -> "ArchFeaturizer":
        feature_set, sep, space = kind.partition(":")
        if not sep or not space:
            raise UnknownNameError(f"feature kind {kind!r} lacks a space; expected e.g. 'onehot+counts:nb201'")
        return cls(space, feature_set)

    def __repr__(self) -> str:
        return f"ArchFeaturizer({self.space.name!r}, {self.feature_set!r})"

    @property
    def encoding_width(self) -> int:
        return self.space.encoding_width

    def choices(self, archs: Sequence[str | Architecture]) -> np.ndarray:
        """(n, num_layers) option indices; DataError naming the first bad architecture."""
        out = np.empty((len(archs), self.space.num_layers), dtype=np.int64)
        parse = self.space.choices_from_spec
        for i, a in enumerate(archs):
            spec = a.spec if isinstance(a, Architecture) else a
            if isinstance(a, Architecture) and a.space != self.space.name:
                raise DataError(f"architecture {i} belongs to space {a.space!r}, not {self.space.name!r}")
            try:
                out[i] = parse(spec.strip() if isinstance(spec, str) else spec)
            except HwprofError as exc:
                raise ArchitectureError(i, str(spec), str(exc)) from None
        return out

    def encode(self, archs: Sequence[str | Architecture]) -> np.ndarray:
        """One-hot encoding (n, encoding_width), float64."""
        return self.space.encode_choices(self.choices(archs)).astype(np.float64)

    def from_encoding(self, encoding: Any) -> np.ndarray:
        """Features of (possibly relaxed) encodings of shape (n, encoding_width)."""
        enc = np.asarray(encoding, dtype=np.float64)
        if enc.ndim != 2 or enc.shape[1] != self.encoding_width:
            raise DataError(f"expected encodings of shape (n, {self.encoding_width}), got {enc.shape}")
        return enc @ self.matrix + self.offset

    def transform(self, archs: Sequence[str | Architecture]) -> np.ndarray:
        return self.from_encoding(self.encode(archs))


def space_of_kind(kind: str) -> str | None:
    """The space of an architecture feature kind such as ``onehot+counts:nb201`` (None for graph and raw kinds)."""
    prefix, sep, arg = kind.partition(":")
    return arg if sep and prefix in FEATURE_SETS else None


def infer_space(archs: Sequence[str], candidates: Sequence[str] | None = None) -> str:
    """Name of the registered space whose parser accepts the first architectures (for CSVs without a space)."""
    sample = list(archs[:20])
    names = list(candidates) if candidates is not None else registry.names("space")
    furthest: ArchitectureError | None = None  # the refusal of the space that read the most architectures
    for name in names:
        try:
            space = registry.get_space(name)
        except HwprofError:
            continue
        for i, spec in enumerate(sample):
            try:
                space.choices_from_spec(spec.strip())
            except HwprofError as exc:
                if i > 0 and (furthest is None or i > furthest.index):
                    why = f"not a {name} architecture like the ones before it: {exc}"
                    furthest = ArchitectureError(i, spec, why, f"architecture {i} {spec!r} is {why}; fix it or pass --space")
                break
        else:
            return name
    if furthest is not None:  # a space reads the first architectures: the one it stops at is the bad one
        raise furthest
    shown = sample[0] if sample else ""
    raise DataError(f"no registered search space ({', '.join(names)}) parses architectures like {shown!r}; pass --space")


def featurize(archs: Sequence[str | Architecture], space: str, feature_set: str = DEFAULT_FEATURE_SET) -> tuple[np.ndarray, FeatureSchema]:
    """Convenience: (X, schema) for architecture specs of a named space."""
    f = ArchFeaturizer(space, feature_set)
    return f.transform(archs), f.schema
