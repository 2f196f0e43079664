"""Reference architectures and the device embedding built from their latencies.

A device enters MODNAS only through its latencies on a small fixed set of
reference architectures (HELP and MODNAS use 10). The embedding is the log of
those latencies minus their mean: scale-free (a device twice as fast on every
network gets the same embedding, and the per-device [0, 1] latency
normalisation the search optimises is scale-free too) but it keeps the spread
and the shape, which decide the trade-off.

The set is chosen once, deterministically, by the predictors' farthest-point
sample choice over the training devices' log latencies (each device
standardised), so the references differ from each other in the way that tells
devices apart — the same notion of a device embedding as the predictors'
few-shot transfer. Networks whose output does not depend on their input are
excluded: some runtimes prune such graphs to (almost) nothing (on ``pixel3``
half of them take under 0.05 ms, some 0.003 ms), which would make the embedding
depend on a runtime quirk rather than on the hardware.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from hwprof.errors import ConfigError, DataError, HwprofError, UnknownNameError
from predictors.data import read_latency_samples

if TYPE_CHECKING:
    from hwprof.spaces import SearchSpace

DEFAULT_NUM_REFS = 10
# Above this a "latency" is a typo or a unit slip (1e6 ms is a quarter of an hour per inference), and its
# logarithm pushes the embedding so far out that the surrogates answer inf.
MAX_REFERENCE_LATENCY_MS = 1e6
# Below a nanosecond no network runs: such a value is a unit slip or a typo, and its logarithm dominates the
# embedding (1e-300 ms made a front of 4e-70 ms).
MIN_REFERENCE_LATENCY_MS = 1e-6


@dataclass(frozen=True)
class ReferenceSet:
    """The reference architectures (canonical specs, in embedding order) and how they were chosen."""

    space: str
    specs: tuple[str, ...]
    method: str

    def __post_init__(self) -> None:
        if not self.specs:
            raise ConfigError("a reference set needs at least one architecture")
        if len(set(self.specs)) != len(self.specs):
            raise ConfigError("reference architectures must be distinct")

    def __len__(self) -> int:
        return len(self.specs)

    def to_json(self) -> dict[str, Any]:
        return {"space": self.space, "specs": list(self.specs), "method": self.method}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ReferenceSet":
        try:
            return cls(str(data["space"]), tuple(str(s) for s in data["specs"]), str(data["method"]))
        except (KeyError, TypeError) as exc:
            raise DataError(f"malformed reference set {data!r}: missing or bad field {exc}") from None

    # --- embeddings ---------------------------------------------------------
    def embedding(self, latencies_ms: Sequence[float] | np.ndarray) -> np.ndarray:
        """The device embedding from latencies on the references, in reference order."""
        return device_embedding(latencies_ms, expected=len(self.specs))

    def latencies_from_table(self, archs: Sequence[str], latency_ms: np.ndarray) -> np.ndarray:
        """Pick the reference latencies out of a full table column (``archs`` = the table's specs)."""
        index = {a: i for i, a in enumerate(archs)}
        missing = [s for s in self.specs if s not in index]
        if missing:
            raise DataError(f"the latency table lacks {len(missing)} reference architecture(s), e.g. {missing[0]!r}")
        return np.asarray([latency_ms[index[s]] for s in self.specs], dtype=np.float64)

    def read_latencies(self, path: str | Path, space: "SearchSpace") -> np.ndarray:
        """Latencies (ms) of the references from a CSV with ``arch,latency_ms`` rows (header optional).

        Architecture strings are canonicalised by ``space``. A reference missing from
        the file, a repeated one, a row that is not a reference (a typo, another
        model's reference set) or a latency outside [``MIN_REFERENCE_LATENCY_MS``,
        ``MAX_REFERENCE_LATENCY_MS``] is a ``DataError`` that names it.
        """
        path = Path(path)
        if not path.is_file():
            raise DataError(f"reference-latency file not found: {str(path)!r}; expected a CSV with arch,latency_ms rows")
        samples = read_latency_samples(path)
        found: dict[str, float] = {}
        lines: dict[str, int] = {}  # spec -> its line in the file
        unparsed: list[tuple[int, str, str]] = []
        for arch, value, line in zip(samples.archs, samples.latency_ms, samples.lines):
            try:
                spec = space.parse(arch).spec
            except HwprofError as exc:
                unparsed.append((line, arch, str(exc)))  # a typo, or another space's network: named below
                continue
            if spec in found:
                raise DataError(
                    f"{path.name}: architecture {spec!r} appears twice (lines {lines[spec]} and {line}); expected each reference once"
                )
            found[spec] = float(value)
            lines[spec] = line
        missing = [(i, s) for i, s in enumerate(self.specs) if s not in found]
        if missing:
            i, s = missing[0]
            why = ""
            if unparsed:
                line, text, err = unparsed[0]
                why = f" ({len(unparsed)} row(s) are not {space.name} architectures, e.g. row {line} {text!r}: {err})"
            raise DataError(
                f"{path.name} lacks {len(missing)} of the {len(self.specs)} reference architectures, "
                f"first reference {i}: {s!r}{why}; list them with `hwprof modnas refs`"
            )
        extra = sorted([(ln, text, f"not a {space.name} architecture: {err}") for ln, text, err in unparsed]
                       + [(lines[s], s, "not a reference architecture") for s in found if s not in self.specs])
        if extra:
            line, text, what = extra[0]
            raise DataError(
                f"{path.name}: line {line} {text!r} is {what} ({len(extra)} such row(s)); expected only the "
                f"{len(self.specs)} references, as `hwprof modnas refs DIR --template FILE` lists them"
            )
        too_fast = [s for s in self.specs if found[s] < MIN_REFERENCE_LATENCY_MS]
        if too_fast:
            s = too_fast[0]
            raise DataError(
                f"{path.name}: line {lines[s]} has latency {found[s]:g} ms; expected milliseconds of at least "
                f"{MIN_REFERENCE_LATENCY_MS:g} (a unit slip?)"
            )
        too_slow = [s for s in self.specs if found[s] > MAX_REFERENCE_LATENCY_MS]
        if too_slow:
            s = too_slow[0]
            raise DataError(
                f"{path.name}: line {lines[s]} has latency {found[s]:g} ms; expected milliseconds up to "
                f"{MAX_REFERENCE_LATENCY_MS:g} (a unit slip?)"
            )
        return np.asarray([found[s] for s in self.specs], dtype=np.float64)


def device_embedding(latencies_ms: Sequence[float] | np.ndarray, expected: int | None = None) -> np.ndarray:
    """log(latency) minus its mean over the references (float32)."""
    try:
        lat = np.asarray(latencies_ms, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"expected reference latencies as numbers, got {type(latencies_ms).__name__}") from None
    if lat.ndim != 1:
        raise DataError(f"expected a 1-D vector of reference latencies, got shape {lat.shape}")
    if expected is not None and lat.size != expected:
        raise DataError(f"expected latencies of {expected} reference architectures, got {lat.size}")
    if lat.size < 2:
        raise DataError(f"a device embedding needs at least 2 reference latencies, got {lat.size}")
    if not np.all(np.isfinite(lat)) or np.any(lat <= 0):
        bad = int(np.flatnonzero(~np.isfinite(lat) | (lat <= 0))[0])
        raise DataError(f"reference latency {bad} is {lat[bad]!r}; expected finite positive milliseconds")
    if np.any(lat < MIN_REFERENCE_LATENCY_MS):
        bad = int(np.flatnonzero(lat < MIN_REFERENCE_LATENCY_MS)[0])
        raise DataError(
            f"reference latency {bad} is {lat[bad]:g} ms; expected milliseconds of at least {MIN_REFERENCE_LATENCY_MS:g} (a unit slip?)"
        )
    if np.any(lat > MAX_REFERENCE_LATENCY_MS):
        bad = int(np.flatnonzero(lat > MAX_REFERENCE_LATENCY_MS)[0])
        raise DataError(
            f"reference latency {bad} is {lat[bad]:g} ms; expected milliseconds up to {MAX_REFERENCE_LATENCY_MS:g} (a unit slip?)"
        )
    logs = np.log(lat)
    return (logs - logs.mean()).astype(np.float32)


@functools.cache
def _nb201() -> "SearchSpace":
    from nas.spaces.nb201 import NB201Space

    return NB201Space()


def nb201_is_live(spec: str) -> bool:
    """True when the NB201 cell's output node is reachable from its input through non-``none`` edges."""
    from nas.spaces.nb201 import EDGES, OPS

    none = OPS.index("none")
    reach = {0}
    for (dst, src), op in zip(EDGES, _nb201().choices_from_spec(spec)):
        if op != none and src in reach:
            reach.add(dst)
    return 3 in reach


def select_references(
    space_name: str,
    archs: Sequence[str],
    latency_ms: Mapping[str, np.ndarray],
    n: int = DEFAULT_NUM_REFS,
    is_live: Callable[[str], bool] | None = None,
    seed: int = 0,
) -> ReferenceSet:
    """``n`` architectures by farthest-point sampling over the given devices' latency columns.

    This is the predictors' few-shot sample choice
    (:func:`predictors.transfer.selection.suggest_samples`, ``method="farthest"``:
    standardised log latency per device, seeded start, then repeatedly the
    architecture farthest from those chosen), restricted to live networks when
    ``is_live`` is given. References are kept in table order.
    """
    from predictors.transfer.selection import suggest_samples

    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ConfigError(f"the number of reference architectures must be an integer >= 2, got {n!r}")
    if not latency_ms:
        raise ConfigError("choosing reference architectures needs the latencies of at least one device")
    devices = sorted(latency_ms)
    for d in devices:
        if np.shape(latency_ms[d]) != (len(archs),):
            raise DataError(f"device {d!r} has {np.size(latency_ms[d])} latencies for {len(archs)} architectures")
    matrix = np.stack([np.asarray(latency_ms[d], dtype=np.float64) for d in devices], axis=1)
    pool = None
    if is_live is not None:
        pool = np.asarray([i for i, a in enumerate(archs) if is_live(a)], dtype=np.int64)
        if pool.size < n:
            raise ConfigError(f"only {pool.size} candidate architectures for {n} references")
    rows = suggest_samples(int(n), matrix, seed, pool=pool, method="farthest")
    method = (
        f"farthest-point sampling (predictors.transfer.suggest_samples, seed {seed}) over standardised log "
        f"latencies of {len(devices)} device(s): {', '.join(devices)}"
        + ("; networks whose output ignores the input excluded" if is_live is not None else "")
    )
    return ReferenceSet(space_name, tuple(archs[int(i)] for i in rows), method)


def nb201_references(table: Any, devices: Sequence[str] | None = None, n: int = DEFAULT_NUM_REFS, seed: int = 0) -> ReferenceSet:
    """The reference set a MODNAS run on ``devices`` (default: every latency column) of an NB201 table uses."""
    names = list(devices) if devices is not None else list(table.devices)
    unknown = [d for d in names if d not in table.latency_ms]
    if unknown:
        raise UnknownNameError(f"no latency column for device(s) {unknown} in the table; known: {', '.join(table.devices)}")
    return select_references("nb201", table.archs, {d: table.latency_ms[d] for d in names}, n, nb201_is_live, seed)
