"""The search-space contract (concrete spaces live in ``nas/spaces`` and are found through the registry).

A space is an ordered list of layers, each with a finite set of options
("choices"). That single shape serves sampling, one-hot encoding, LayerNAS
(which walks layers in order) and hypernetworks (one logit row per layer).
"""

from __future__ import annotations

import itertools
import re
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np

from hwprof.errors import ConfigError, DataError, HwprofError, InvalidArchitecture
from hwprof.types import Architecture

if TYPE_CHECKING:  # torch is imported lazily by build()
    import torch


class SearchSpace(ABC):
    """Ordered categorical choices -> architectures -> torch modules."""

    name: str = ""

    # --- structure -------------------------------------------------------
    @property
    @abstractmethod
    def layers(self) -> list[tuple[str, tuple[str, ...]]]:
        """Ordered (layer name, options) pairs."""

    @property
    @abstractmethod
    def input_shape(self) -> tuple[int, ...]:
        """Input tensor shape including the batch dimension, e.g. (1, 3, 32, 32)."""

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def size(self) -> int:
        n = 1
        for _, opts in self.layers:
            n *= len(opts)
        return n

    @property
    def encoding_width(self) -> int:
        return sum(len(opts) for _, opts in self.layers)

    # --- conversions -------------------------------------------------------
    @abstractmethod
    def spec_from_choices(self, choices: Sequence[int]) -> str:
        """Canonical spec string for a vector of option indices (one per layer)."""

    @abstractmethod
    def choices_from_spec(self, spec: str) -> tuple[int, ...]:
        """Inverse of spec_from_choices; raises InvalidArchitecture on bad input."""

    def parse(self, spec: str) -> Architecture:
        spec = spec.strip()
        return Architecture(self.name, self.spec_from_choices(self.choices_from_spec(spec)))

    def from_choices(self, choices: Sequence[int]) -> Architecture:
        self._check_choices(choices)
        return Architecture(self.name, self.spec_from_choices(choices))

    def to_choices(self, arch: Architecture) -> tuple[int, ...]:
        if arch.space != self.name:
            raise InvalidArchitecture(f"architecture belongs to space {arch.space!r}, not {self.name!r}")
        return self.choices_from_spec(arch.spec)

    def _check_choices(self, choices: Sequence[int]) -> None:
        if len(choices) != self.num_layers:
            raise InvalidArchitecture(
                f"{self.name}: expected {self.num_layers} choices, got {len(choices)}"
            )
        for i, (c, (lname, opts)) in enumerate(zip(choices, self.layers)):
            if not 0 <= int(c) < len(opts):
                raise InvalidArchitecture(
                    f"{self.name}: choice {c} out of range for layer {i} ({lname}, {len(opts)} options)"
                )

    # --- sampling / enumeration -------------------------------------------
    def sample(self, n: int, rng: np.random.Generator, unique: bool = True) -> list[Architecture]:
        """Uniform random architectures; unique ones unless the space is smaller than n."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        sizes = [len(opts) for _, opts in self.layers]
        out: list[Architecture] = []
        seen: set[tuple[int, ...]] = set()
        if unique and n > self.size:
            raise InvalidArchitecture(f"{self.name}: cannot draw {n} unique architectures from {self.size}")
        while len(out) < n:
            c = tuple(int(rng.integers(s)) for s in sizes)
            if unique and c in seen:
                continue
            seen.add(c)
            out.append(self.from_choices(c))
        return out

    def enumerate(self) -> Iterator[Architecture]:
        for c in itertools.product(*[range(len(opts)) for _, opts in self.layers]):
            yield self.from_choices(c)

    # --- encodings ----------------------------------------------------------
    def encode(self, archs: Sequence[Architecture]) -> np.ndarray:
        """One-hot encoding, shape (n, encoding_width), layer blocks in order."""
        return self.encode_choices(np.array([self.to_choices(a) for a in archs], dtype=np.int64))

    def encode_choices(self, choices: np.ndarray) -> np.ndarray:
        choices = np.asarray(choices, dtype=np.int64)
        if choices.ndim != 2 or choices.shape[1] != self.num_layers:
            raise InvalidArchitecture(
                f"{self.name}: expected choices of shape (n, {self.num_layers}), got {choices.shape}"
            )
        out = np.zeros((choices.shape[0], self.encoding_width), dtype=np.float32)
        offset = 0
        for j, (_, opts) in enumerate(self.layers):
            out[np.arange(choices.shape[0]), offset + choices[:, j]] = 1.0
            offset += len(opts)
        return out

    def encoding_names(self) -> list[str]:
        return [f"{lname}={opt}" for lname, opts in self.layers for opt in opts]

    # --- networks -------------------------------------------------------------
    @abstractmethod
    def build(self, arch: Architecture, seed: int | None = None) -> "torch.nn.Module":
        """A freshly initialised torch module for the architecture (eval mode).

        With a seed the weights are bit-identical across calls (export caching relies on it).
        """

    def reference_architecture(self) -> Architecture:
        """A fixed mid-sized network, re-measured during long runs to detect drift."""
        return self.from_choices([len(opts) // 2 for _, opts in self.layers])

    def calibration_architectures(self, k: int = 5) -> list[Architecture]:
        """Up to ``k`` fixed networks of different make-up, timed with every group when calibrating.

        The reference architecture and rotations of its option indices (layer j
        of the r-th takes option (mid_j + r + j) mod n_j), so the set mixes the
        space's operations instead of repeating one; duplicates are dropped.
        """
        out: dict[str, Architecture] = {}
        for r in range(k):
            choices = [(len(opts) // 2 + (r + j if r else 0)) % len(opts) for j, (_, opts) in enumerate(self.layers)]
            arch = self.from_choices(choices)
            out.setdefault(arch.arch_id, arch)
        return list(out.values())


class ImageSpace(SearchSpace):
    """A space of image classifiers: fixed layer table, (batch, 3, size, size) input.

    Subclasses set ``_LAYERS`` and call ``super().__init__`` with their integer
    hyper-parameters, all of which must be positive.
    """

    _LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = ()
    num_classes: int
    input_size: int
    batch_size: int

    def __init__(self, num_classes: int, input_size: int, batch_size: int, **more: int) -> None:
        values = {"num_classes": num_classes, "input_size": input_size, "batch_size": batch_size, **more}
        for arg, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{type(self).__name__}: {arg} must be a positive integer, got {value!r}")
        self._params = values
        for arg, value in values.items():
            setattr(self, arg, value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in self._params.items())})"

    @property
    def layers(self) -> list[tuple[str, tuple[str, ...]]]:
        return list(self._LAYERS)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.batch_size, 3, self.input_size, self.input_size)


# --- architecture lists: the one reader of "one architecture per line" files -----------------------


def read_arch_lines(path: str | Path) -> list[str]:
    """Architecture strings of a file, one per line; blank lines, '#' comments and an ``arch`` header skipped.

    Used by every command that takes an architecture list (``profile --archs``,
    ``predict --archs``, pools); :func:`read_arch_file` also parses them in a space.
    """
    return [arch for _, arch in read_numbered_arch_lines(path)]


def read_numbered_arch_lines(path: str | Path) -> list[tuple[int, str]]:
    """(1-based file line, architecture string) of :func:`read_arch_lines`, so an error can name the line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except OSError as exc:
        raise DataError(f"cannot read architecture file {str(path)!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{str(path)!r} is not UTF-8 text: {exc}") from None
    archs = [(n, ln.strip()) for n, ln in enumerate(lines, 1) if ln.strip() and not ln.lstrip().startswith("#")]
    if archs and archs[0][1].lower() == "arch":  # a CSV-style header
        archs = archs[1:]
    if not archs:
        raise DataError(f"{path} holds no architectures; expected one architecture string per line")
    return archs


def read_arch_file(path: str | Path, space: SearchSpace) -> list[Architecture]:
    """The architectures of a list file, parsed in ``space``; errors name the file and line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        read_arch_lines(path)  # raises the one-line DataError
        raise
    archs = []
    for lineno, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#") or (not archs and line.lower() == "arch"):
            continue
        try:
            archs.append(space.parse(line))
        except HwprofError as exc:
            raise type(exc)(f"{path}:{lineno}: {exc}") from exc
    if not archs:
        raise DataError(f"{path} holds no architectures; expected one architecture string per line")
    return archs


_INDEX_PART = re.compile(r"([0-9]+)(?:\s*-\s*([0-9]+))?")


def parse_indices(text: str, size: int) -> list[int]:
    """'0-99,120,200-210' -> indices, validated against the space size (ConfigError otherwise).

    Each part is ASCII digits or a range ``LO-HI`` of them: ``int()`` alone
    would read ``1_0`` as 10 (and ``+1`` as 1). Empty parts are skipped, but a
    text of none (``''``, ``','``) is an error, not nothing to do.
    """
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        match = _INDEX_PART.fullmatch(part)
        if match is None:
            raise ConfigError(f"bad index range {part!r}; expected e.g. '0-99,120'")
        lo, hi = int(match[1]), int(match[2] if match[2] is not None else match[1])
        if hi < lo:
            raise ConfigError(f"bad index range {part!r}; expected e.g. '0-99,120'")
        if hi >= size:  # before building the list: '0-99999999999' must not fill the memory first
            raise ConfigError(f"index {max(lo, size)} out of range 0..{size - 1}")
        out.extend(range(lo, hi + 1))
    if not out:
        raise ConfigError(f"no indices in {text!r}; expected e.g. '0-99,120'")
    return out
