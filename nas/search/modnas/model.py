"""A trained MODNAS hypernetwork on disk and in use: any (device, preference) -> an architecture.

A directory holds ``modnas.json`` (metadata: format version, configuration,
reference architectures, training devices and their embeddings, surrogate
quality, training summary) and state_dicts written with ``torch.save``, read
back with ``torch.load(weights_only=True)``. No pickles.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from hwprof.errors import ConfigError, DataError, PersistenceError, UnknownNameError
from hwprof.types import Architecture
from nas.search.modnas.decode import DecodeSettings, SurrogateSelector
from nas.search.modnas.hypernet import HyperNetwork
from nas.search.modnas.refs import ReferenceSet
from nas.search.modnas.surrogates import AccuracySurrogate, LatencySurrogate

FORMAT = "hwprof-modnas"
FORMAT_VERSION = 1
META_FILE = "modnas.json"
LATENCY_DIR = "latency_predictor"
CHECKPOINT_META = "checkpoint.json"
OBJECTIVES = ("accuracy", "latency")
DEFAULT_RAYS = 24


def preference_rays(n: int = DEFAULT_RAYS) -> np.ndarray:
    """``n`` preferences (accuracy weight, latency weight) at evenly spaced angles from (1, 0) to (0, 1)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ConfigError(f"the number of preference rays must be an integer >= 2, got {n!r}")
    theta = np.linspace(0.0, np.pi / 2, int(n))
    rays = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    rays[np.abs(rays) < 1e-12] = 0.0
    return rays / rays.sum(axis=1, keepdims=True)


def check_preference(preference: float | Sequence[float] | np.ndarray, n_objectives: int = 2) -> np.ndarray:
    """A preference on the simplex (one weight per objective, >= 0, summing to 1).

    A single number in [0, 1] is the accuracy weight of a two-objective preference.
    """
    arr = np.atleast_1d(np.asarray(preference, dtype=np.float64))
    if arr.ndim != 1:
        raise ConfigError(f"expected a preference vector, got shape {arr.shape}")
    if arr.size == 1 and n_objectives == 2:
        arr = np.array([arr[0], 1.0 - arr[0]])
    names = ", ".join(OBJECTIVES[:n_objectives]) if n_objectives <= len(OBJECTIVES) else f"{n_objectives} objectives"
    if arr.size != n_objectives:
        raise ConfigError(f"preference {arr.tolist()} has {arr.size} weights; expected {n_objectives} ({names})")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0) or abs(arr.sum() - 1.0) > 1e-6:
        raise ConfigError(
            f"preference {arr.tolist()} is not on the simplex; expected non-negative weights ({names}) summing to 1"
        )
    return arr


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_state(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise PersistenceError(f"{str(path)!r} is missing; the MODNAS directory is incomplete")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or non-weights files
        raise PersistenceError(f"cannot read {str(path)!r} as a state_dict ({type(exc).__name__}); the file is corrupt") from None


@dataclass(frozen=True)
class FrontEntry:
    """One preference ray and the architecture the hypernetwork gives for it.

    ``predicted_latency_ms`` needs the device's absolute latency level, so it is
    known only when reference latencies (not just an embedding) were given;
    ``predicted_latency_rel`` is the prediction divided by the geometric mean of
    the device's reference latencies. ``surrogate_error_pct`` is the accuracy
    surrogate's estimate (surrogate mode only), not a measurement.
    """

    preference: tuple[float, ...]
    spec: str
    choices: tuple[int, ...]
    predicted_latency_rel: float
    predicted_latency_ms: float | None
    surrogate_error_pct: float | None

    def to_json(self) -> dict[str, Any]:
        return {"preference": list(self.preference), "arch": self.spec, "choices": list(self.choices),
                "predicted_latency_rel": self.predicted_latency_rel, "predicted_latency_ms": self.predicted_latency_ms,
                "surrogate_error_pct": self.surrogate_error_pct}


class ModnasModel:
    """Hypernetwork + reference set + frozen latency surrogate (+ accuracy surrogate in surrogate mode)."""

    def __init__(
        self,
        meta: Mapping[str, Any],
        hypernet: HyperNetwork,
        latency: LatencySurrogate,
        accuracy: AccuracySurrogate | None,
    ) -> None:
        from hwprof import registry

        self.meta = dict(meta)
        self.hypernet = hypernet.eval()
        self.latency = latency.eval()
        self.accuracy = accuracy.eval() if accuracy is not None else None
        self.refs = ReferenceSet.from_json(self.meta["references"])
        self.space = registry.get_space(self.meta["space"])
        self._selector: SurrogateSelector | None = None

    # --- description ------------------------------------------------------------
    @property
    def mode(self) -> str:
        return str(self.meta["mode"])

    @property
    def accuracy_source(self) -> str:
        return str(self.meta["accuracy_source"])

    @property
    def embed_dim(self) -> int:
        return self.hypernet.embed_dim

    @property
    def train_devices(self) -> list[str]:
        return list(self.meta["train_devices"])

    # --- devices ------------------------------------------------------------------
    def embedding(
        self,
        device: str | None = None,
        ref_latencies_ms: Sequence[float] | np.ndarray | None = None,
        ref_latencies_file: str | Path | None = None,
        table_path: str | Path | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(embedding, reference latencies in ms or None) for a device given one of three ways.

        A file or explicit latencies win; otherwise ``device`` is looked up among
        the training devices, then in the NB201 table's latency columns.
        """
        if ref_latencies_file is not None:
            lat = self.refs.read_latencies(ref_latencies_file, self.space)
            return self.refs.embedding(lat), lat
        if ref_latencies_ms is not None:
            lat = np.asarray(ref_latencies_ms, dtype=np.float64)
            return self.refs.embedding(lat), lat
        if device is None:
            raise ConfigError("say which device: a name, reference latencies, or a file of them (--ref-latencies)")
        if self.space.name == "nb201":
            from nas.tabular import load_nb201

            table = load_nb201(table_path if table_path is not None else self.meta["config"].get("table"))
            if device in table.latency_ms:
                lat = self.refs.latencies_from_table(table.archs, table.latency_ms[device])
                return self.refs.embedding(lat), lat
        stored = self.meta.get("train_embeddings", {})
        if device in stored:
            return np.asarray(stored[device], dtype=np.float32), None
        raise UnknownNameError(
            f"device {device!r} is neither a training device nor a table column; give its reference latencies "
            f"with --ref-latencies FILE (arch,latency_ms rows; see `hwprof modnas refs`)"
        )

    def _check_embedding(self, embedding: Sequence[float] | np.ndarray) -> np.ndarray:
        emb = np.asarray(embedding, dtype=np.float32)
        if emb.ndim != 1 or emb.size != self.embed_dim:
            raise DataError(
                f"device embedding has shape {emb.shape}; expected {self.embed_dim} values "
                f"(one per reference architecture)"
            )
        if not np.all(np.isfinite(emb)):
            raise DataError("device embedding holds non-finite values")
        return emb

    # --- answers -------------------------------------------------------------------
    def logits(self, embedding: np.ndarray, preferences: np.ndarray) -> torch.Tensor:
        emb = torch.from_numpy(self._check_embedding(embedding))
        prefs = np.stack([check_preference(p, self.hypernet.n_objectives) for p in np.atleast_2d(preferences)])
        with torch.no_grad():
            return self.hypernet(emb[None].expand(prefs.shape[0], -1), torch.from_numpy(prefs.astype(np.float32)))

    def architectures(
        self, embedding: np.ndarray, preferences: np.ndarray, decode: DecodeSettings | None = None,
    ) -> list[Architecture]:
        """One architecture per preference (row of ``preferences``), decoded by ``decode`` (default: ``DecodeSettings()``).

        With an accuracy surrogate, the candidates the hypernetwork proposes are
        scored as in training and the best is kept (``nas.search.modnas.decode``);
        ``decode=ARGMAX``, or supernet mode, gives the most likely architecture.
        """
        decode = DecodeSettings() if decode is None else decode
        emb = self._check_embedding(embedding)
        prefs = np.atleast_2d(np.asarray(preferences, dtype=np.float64))
        logits = self.logits(emb, prefs)
        if decode.is_argmax or self.accuracy is None:
            choices = HyperNetwork.choices(logits)
        else:
            choices = self.selector().decode(emb, logits, prefs, decode)
        return [self.space.from_choices([int(c) for c in row]) for row in choices]

    def selector(self) -> SurrogateSelector:
        """The surrogates' scorer of the training objective (surrogate mode only), built on first use."""
        if self.accuracy is None:
            raise ConfigError("a supernet-mode hypernetwork has no accuracy surrogate to select architectures by")
        if self._selector is None:
            cfg = self.meta["config"]
            self._selector = SurrogateSelector(
                self.space, self.hypernet.layer_sizes, self.accuracy, self.latency, cfg["objective_scale"],
                cfg.get("scalarisation", "weighted_sum"),  # models trained before the option: weighted sum
            )
        return self._selector

    def front(
        self,
        embedding: np.ndarray,
        ref_latencies_ms: np.ndarray | None = None,
        n_rays: int = DEFAULT_RAYS,
        decode: DecodeSettings | None = None,
    ) -> list[FrontEntry]:
        """One architecture per preference ray (``preference_rays(n_rays)``), with surrogate predictions."""
        return self._entries(embedding, ref_latencies_ms, preference_rays(n_rays), decode)

    def pick(
        self,
        embedding: np.ndarray,
        preference: float | Sequence[float],
        ref_latencies_ms: np.ndarray | None = None,
        decode: DecodeSettings | None = None,
    ) -> FrontEntry:
        pref = check_preference(preference, self.hypernet.n_objectives)
        return self._entries(embedding, ref_latencies_ms, pref[None], decode)[0]

    def _entries(
        self, embedding: np.ndarray, ref_latencies_ms: np.ndarray | None, prefs: np.ndarray, decode: DecodeSettings | None,
    ) -> list[FrontEntry]:
        emb = self._check_embedding(embedding)
        archs = self.architectures(emb, prefs, decode)
        choices = np.asarray([self.space.to_choices(a) for a in archs], dtype=np.int64)
        enc = torch.from_numpy(self.space.encode_choices(choices))
        with torch.no_grad():
            z = self.latency(enc, torch.from_numpy(emb)[None]).double().numpy()
            err = self.accuracy(enc).double().numpy() if self.accuracy is not None else None
        level = None
        if ref_latencies_ms is not None:
            level = float(np.exp(np.mean(np.log(np.asarray(ref_latencies_ms, dtype=np.float64)))))
        with np.errstate(over="ignore"):
            rels = np.exp(z)
        if not np.all(np.isfinite(rels * (1.0 if level is None else level))):  # never a front of inf
            raise DataError(
                "the latency surrogate answers a non-finite latency for this device: its embedding lies far outside "
                "the training devices'; check the reference latencies (milliseconds, one per reference)"
            )
        out = []
        for i, (a, p) in enumerate(zip(archs, prefs)):
            rel = float(rels[i])
            out.append(FrontEntry(
                preference=tuple(float(x) for x in p),
                spec=a.spec,
                choices=tuple(int(c) for c in choices[i]),
                predicted_latency_rel=rel,
                predicted_latency_ms=rel * level if level is not None else None,
                surrogate_error_pct=float(err[i]) if err is not None else None,
            ))
        return out

    # --- persistence -----------------------------------------------------------------
    def save(self, directory: str | Path, extra_states: Mapping[str, Mapping[str, torch.Tensor]] | None = None) -> Path:
        """Write every part, then ``modnas.json`` last (with a sha256 per file), so a half-written directory never loads.

        ``extra_states``: more state_dicts to store and checksum (e.g. the supernet's weights).
        """
        from predictors.persistence import save as save_predictor

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        states = {"hypernet.pt": self.hypernet.state_dict()}
        if self.accuracy is not None:
            states["accuracy_surrogate.pt"] = self.accuracy.state_dict()
        states.update(extra_states or {})
        for name, state in states.items():
            _atomic_torch_save(state, out / name)
        save_predictor(self.latency.predictor, out / LATENCY_DIR, extra={"role": "MODNAS device-conditioned latency surrogate"})
        meta = dict(self.meta)
        names = list(states) + sorted(f"{LATENCY_DIR}/{p.name}" for p in (out / LATENCY_DIR).iterdir() if p.is_file())
        meta["files"] = {name: sha256_file(out / name) for name in names}
        _atomic_write_text(out / META_FILE, json.dumps(meta, indent=1) + "\n")
        return out

    @classmethod
    def load(cls, directory: str | Path) -> "ModnasModel":
        d = Path(directory)
        if not d.is_dir():
            raise PersistenceError(f"no MODNAS directory at {str(d)!r}; train one with `hwprof modnas train -o DIR`")
        meta_path = d / META_FILE
        if not meta_path.is_file():
            if (d / CHECKPOINT_META).is_file():
                try:
                    ck = json.loads((d / CHECKPOINT_META).read_text(encoding="utf-8"))
                    where = f" (stopped at step {ck['step']} of {ck['steps']})"
                except (OSError, ValueError, KeyError, TypeError):
                    where = ""
                raise PersistenceError(
                    f"{str(d)!r} holds an unfinished MODNAS training run{where}; resume it by running the same training command again"
                )
            raise PersistenceError(f"{str(d)!r} holds no trained hypernetwork ({META_FILE} missing); train one with `hwprof modnas train -o DIR`")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise PersistenceError(f"cannot read {str(meta_path)!r} as JSON ({exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise PersistenceError(f"{str(meta_path)!r} is not a MODNAS hypernetwork description (format {FORMAT!r})")
        version = meta.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise PersistenceError(
                f"{str(meta_path)!r} has format version {version!r}; this hwprof reads up to {FORMAT_VERSION} (upgrade hwprof)"
            )
        try:
            for name, digest in meta["files"].items():
                if not (d / name).is_file():
                    raise PersistenceError(f"{str(d / name)!r} is missing; the MODNAS directory is incomplete")
                if sha256_file(d / name) != digest:
                    raise PersistenceError(f"{str(d / name)!r} does not match the checksum in {META_FILE}; the file was changed")
            hcfg = meta["hypernet"]
            hypernet = HyperNetwork(hcfg["embed_dim"], hcfg["layer_sizes"], hcfg["n_objectives"], hcfg["hidden"])
            lcfg = meta["latency_surrogate"]
            accuracy = None
            if meta.get("accuracy_surrogate") is not None:
                acfg = meta["accuracy_surrogate"]
                accuracy = AccuracySurrogate(acfg["width"], acfg["hidden"])
        except (KeyError, TypeError) as exc:
            raise PersistenceError(f"{str(meta_path)!r} lacks field {exc}; the metadata is incomplete") from None
        latency = load_latency_surrogate(d / LATENCY_DIR, lcfg["width"], lcfg["embed_dim"])
        try:
            hypernet.load_state_dict(load_state(d / "hypernet.pt"))
            if accuracy is not None:
                accuracy.load_state_dict(load_state(d / "accuracy_surrogate.pt"))
        except RuntimeError as exc:
            raise PersistenceError(f"state_dict in {str(d)!r} does not fit the described model: {str(exc).splitlines()[0]}") from None
        return cls(meta, hypernet, latency, accuracy)


def load_latency_surrogate(directory: Path, width: int, embed_dim: int) -> LatencySurrogate:
    from predictors.persistence import load_predictor

    try:
        return LatencySurrogate(load_predictor(directory), width, embed_dim)
    except DataError as exc:
        raise PersistenceError(f"latency predictor in {str(directory)!r} does not fit this hypernetwork: {exc}") from None


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _atomic_torch_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def finite_or_none(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)
