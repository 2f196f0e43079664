"""Exported model files: the ``Exporter`` contract and the content-addressed artifact cache.

An exporter (``onnx`` today, ``tflite`` next) turns a torch module into a file of
one format and precision; it is found by name through the registry
(entry-point group ``hwprof.exporters``). The cache key hashes everything that
determines the file (architecture, inputs, format, precision, the exporter's
own configuration, weight seed), so a second profiling run reuses the file.

Every cache entry is a file plus a JSON metadata file that names the
architecture it was built from. On reuse the file's sha256 is re-checked (a
truncated or edited file is rebuilt), metadata that is not what the cache
wrote is rebuilt, and metadata naming another architecture is an error: a
swapped entry must never be measured under the wrong name.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping, Sequence

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from hwprof import registry
from hwprof.errors import ConfigError, ExportError
from hwprof.types import Architecture, InputSpec, ModelArtifact, stable_hash

if TYPE_CHECKING:
    import torch

    from hwprof.spaces import SearchSpace

log = logging.getLogger("hwprof")

PRECISIONS = ("fp32", "int8")
DEFAULT_PRECISION = "fp32"
WEIGHT_SEED = 0  # every exported network is initialised from this seed: the same arch gives the same bytes
META_VERSION = 1
TEMP_SUFFIX = ".tmp"  # exports and metadata are written to <name>.tmp, then renamed into place
STALE_TEMP_MIN_AGE_S = 60.0
STALE_TEMP_UNLOCKED_AGE_S = 24 * 3600.0


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Exporter(ABC):
    """torch module -> one file of ``format`` in one of ``precisions``.

    Subclasses set the class attributes and implement :meth:`export`;
    constructor keyword arguments are the exporter's options and belong in
    :meth:`config` (they are part of the cache key and recorded with the artifact).
    """

    name: ClassVar[str] = ""
    format: ClassVar[str] = ""
    suffix: ClassVar[str] = ""
    precisions: ClassVar[tuple[str, ...]] = (DEFAULT_PRECISION,)

    def config(self) -> dict[str, Any]:
        """Options and tool versions that determine the file's bytes (JSON-serialisable)."""
        return {}

    @abstractmethod
    def export(
        self, module: "torch.nn.Module", inputs: Sequence[InputSpec], out_path: Path, precision: str
    ) -> Mapping[str, Any] | None:
        """Write the exported, validated model to ``out_path``; raise ExportError when it fails.

        May return a JSON-serialisable report of the numerics check (outputs
        compared with the torch module); the cache keeps it with the artifact
        as ``exporter["numerics"]``.
        """

    def check(self) -> None:
        """Raise ExportError saying why this exporter cannot run here (a missing optional package). Default: it can."""

    def check_precision(self, precision: str) -> None:
        if precision not in self.precisions:
            raise ConfigError(
                f"exporter {self.name!r} writes {self.format} in {', '.join(self.precisions)}, not {precision!r}"
            )


def get_exporter(name: str, **options: Any) -> Exporter:
    exporter = registry.load("exporter", name)(**options)
    if not isinstance(exporter, Exporter):
        raise ConfigError(f"exporter {name!r} is registered as {type(exporter).__name__}, not a hwprof.artifacts.Exporter")
    return exporter


def exporter_for(formats: Sequence[str], precision: str = DEFAULT_PRECISION) -> Exporter:
    """The first registered exporter writing one of ``formats`` (in that order of preference) at ``precision``.

    ``formats`` is a device's ``supported_formats``: the profiler is not tied to
    any one format, a device names what it runs and the registry supplies it.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    classes = {name: registry.load("exporter", name) for name in registry.names("exporter")}
    found: dict[str, list[str]] = {}
    for name, cls in classes.items():
        found.setdefault(getattr(cls, "format", ""), []).append(name)
    for fmt in formats:
        for name in found.get(fmt, []):
            if precision in getattr(classes[name], "precisions", ()):
                return get_exporter(name)
    have = "; ".join(f"{fmt}: {', '.join(names)}" for fmt, names in sorted(found.items())) or "none"
    raise ConfigError(
        f"no registered exporter writes {' or '.join(formats) or 'any format'} at precision {precision!r} "
        f"(registered exporters by format: {have})"
    )


_META_FIELDS = {"sha256": str, "arch_id": str, "arch": dict, "format": str, "precision": str, "inputs": list, "exporter": dict}


class ArtifactCache:
    """Content-addressed cache of exported models under ``root/<format>/``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def key(self, arch: Architecture, inputs: Sequence[InputSpec], exporter: Exporter, precision: str, seed: int) -> str:
        return stable_hash(
            {
                "arch": arch.to_json(),
                "inputs": [_input_json(i) for i in inputs],
                "format": exporter.format,
                "precision": precision,
                "exporter": {"name": exporter.name, **exporter.config()},
                "seed": seed,
            },
            length=32,
        )

    def get_or_export(
        self,
        arch: Architecture,
        build: Callable[[], "torch.nn.Module"],
        inputs: Sequence[InputSpec],
        exporter: Exporter,
        precision: str = DEFAULT_PRECISION,
        seed: int = WEIGHT_SEED,
    ) -> ModelArtifact:
        """The cached artifact of ``arch``, exporting it (atomically) when absent or damaged."""
        exporter.check_precision(precision)
        inputs = tuple(inputs)
        key = self.key(arch, inputs, exporter, precision, seed)
        folder = self.root / exporter.format
        model_path = folder / f"{key}{exporter.suffix}"
        meta_path = folder / f"{key}.json"
        cached = self._read_cached(arch, model_path, meta_path)
        if cached is not None:
            return cached
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ExportError(f"cannot create artifact cache {folder}: {exc.strerror or exc}") from exc
        fd, tmp_name = tempfile.mkstemp(suffix=f"{exporter.suffix}{TEMP_SUFFIX}", dir=folder)
        _lock(fd)  # held while exporting: remove_stale_temp_files leaves a locked file alone
        try:
            report = exporter.export(build(), inputs, Path(tmp_name), precision)
            digest = sha256_file(tmp_name)
            os.replace(tmp_name, model_path)
        finally:
            os.close(fd)
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
        # the registered name stays under "exporter" (an option of the same name is kept as "exporter_setting")
        options = {("exporter_setting" if k == "exporter" else k): v for k, v in exporter.config().items()}
        described = {"exporter": exporter.name, **options, "seed": seed, "key": key}
        if report:
            described["numerics"] = dict(report)
        artifact = ModelArtifact(
            path=str(model_path),
            format=exporter.format,
            sha256=digest,
            size_bytes=model_path.stat().st_size,
            arch_id=arch.arch_id,
            inputs=inputs,
            exporter=described,
            precision=precision,
        )
        meta = {
            "meta_version": META_VERSION,
            "sha256": digest,
            "arch_id": arch.arch_id,
            "arch": arch.to_json(),
            "format": exporter.format,
            "precision": precision,
            "inputs": artifact.inputs_json(),
            "exporter": dict(artifact.exporter),
        }
        _write_atomic(meta_path, json.dumps(meta, sort_keys=True, indent=1))
        return artifact

    def remove_stale_temp_files(self, min_age_s: float = STALE_TEMP_MIN_AGE_S) -> list[Path]:
        """Delete the temporary files of exports that were killed (SIGKILL, power loss); returns them.

        A temporary file is stale when no process holds its lock (an exporter
        locks its file until it is renamed into place, and the lock dies with
        the process) and it is older than ``min_age_s`` (so a file created an
        instant ago, not yet locked, is spared). Where file locks are not
        available, only files older than ``STALE_TEMP_UNLOCKED_AGE_S`` go.
        """
        removed: list[Path] = []
        if not self.root.is_dir():
            return removed
        now = time.time()
        for path in sorted(self.root.glob(f"*/*{TEMP_SUFFIX}")):
            try:
                age_s = now - path.stat().st_mtime
                if age_s < min_age_s or (fcntl is None and age_s < STALE_TEMP_UNLOCKED_AGE_S) or _locked(path):
                    continue
                path.unlink()
            except OSError:  # gone meanwhile, or not ours to delete
                continue
            removed.append(path)
        return removed

    def _read_cached(self, arch: Architecture, model_path: Path, meta_path: Path) -> ModelArtifact | None:
        if not (model_path.is_file() and meta_path.is_file()):
            return None
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            log.warning("cache metadata %s is unreadable; re-exporting", meta_path)
            return None
        problem = _meta_problem(meta)
        if problem:
            log.warning("cache metadata %s %s; re-exporting", meta_path, problem)
            return None
        if meta["arch_id"] != arch.arch_id or meta["arch"] != arch.to_json():
            built = meta["arch"]
            raise ExportError(
                f"artifact cache entry {model_path} was built from {built.get('space')}:{built.get('spec')}, "
                f"not the requested {arch.space}:{arch.spec}; the cache was tampered with: delete {model_path.parent}"
            )
        try:
            digest = sha256_file(model_path)
        except OSError:
            return None
        if digest != meta["sha256"]:
            log.warning("cached model %s does not match its recorded sha256; re-exporting", model_path)
            return None
        return ModelArtifact(
            path=str(model_path),
            format=meta["format"],
            sha256=digest,
            size_bytes=model_path.stat().st_size,
            arch_id=meta["arch_id"],
            inputs=tuple(InputSpec(i["name"], tuple(i["shape"]), i["dtype"]) for i in meta["inputs"]),
            exporter=meta["exporter"],
            precision=meta["precision"],
        )


def _input_json(spec: InputSpec) -> dict[str, Any]:
    return {"name": spec.name, "shape": list(spec.shape), "dtype": spec.dtype}


def _meta_problem(meta: Any) -> str:
    """Why ``meta`` is not metadata this cache wrote ('' when it is)."""
    if not isinstance(meta, dict):
        return f"is a JSON {type(meta).__name__}, not an object"
    for name, kind in _META_FIELDS.items():
        if not isinstance(meta.get(name), kind):
            return f"lacks a {kind.__name__} field {name!r}"
    arch = meta["arch"]
    if not (isinstance(arch.get("space"), str) and isinstance(arch.get("spec"), str)):
        return "names no architecture (space, spec)"
    for item in meta["inputs"]:
        if not (
            isinstance(item, dict)
            and isinstance(item.get("name"), str)
            and isinstance(item.get("dtype"), str)
            and isinstance(item.get("shape"), list)
            and all(isinstance(d, int) for d in item["shape"])
        ):
            return "has a malformed input description"
    return ""


def _lock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a fresh file: nobody else holds it


def _locked(path: Path) -> bool:
    """Whether a live process holds ``path``'s lock (False where locks are unavailable)."""
    if fcntl is None:
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases a lock taken here
    return False


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def file_artifact(path: str | Path, format: str, inputs: Sequence[InputSpec], precision: str, arch_id: str = "") -> ModelArtifact:
    """The artifact of a user-supplied model file (``hwprof measure``): named by its sha256 unless ``arch_id`` is given."""
    path = Path(path)
    digest = sha256_file(path)
    return ModelArtifact(
        path=str(path),
        format=format,
        sha256=digest,
        size_bytes=path.stat().st_size,
        arch_id=arch_id or f"file:{digest[:16]}",
        inputs=tuple(inputs),
        exporter={"source": "file"},
        precision=precision,
    )


def space_inputs(space: "SearchSpace") -> tuple[InputSpec, ...]:
    """The one float32 input named ``input`` every built-in space's networks take."""
    return (InputSpec("input", tuple(space.input_shape), "float32"),)


def export_architecture(
    space: "SearchSpace",
    arch: Architecture,
    cache_dir: str | Path,
    format: str = "onnx",
    precision: str = DEFAULT_PRECISION,
    exporter: Exporter | None = None,
    seed: int = WEIGHT_SEED,
) -> ModelArtifact:
    """Build ``arch`` in ``space`` and export it through the cache (for profiling, predictors, costs)."""
    exporter = exporter or exporter_for((format,), precision)
    return ArtifactCache(cache_dir).get_or_export(
        arch, lambda: space.build(arch, seed=seed), space_inputs(space), exporter, precision, seed
    )



def export_module(
    build: Callable[[], "torch.nn.Module"],
    input_shape: Sequence[int],
    cache_dir: str | Path,
    name: str,
    format: str = "onnx",
    precision: str = DEFAULT_PRECISION,
) -> ModelArtifact:
    """Export a network that belongs to no search space (a user's own, a test's, a benchmark's sweep).

    ``name`` identifies it in the cache (architecture ``module:<name>``): give
    different networks different names.
    """
    arch = Architecture("module", name)
    inputs = (InputSpec("input", tuple(int(d) for d in input_shape), "float32"),)
    return ArtifactCache(cache_dir).get_or_export(arch, build, inputs, exporter_for((format,), precision), precision, WEIGHT_SEED)
