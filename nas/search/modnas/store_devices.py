"""A device you profiled, from the measurement store, as MODNAS needs it: reference latencies and measured networks.

A store holds a device's measurements under one or more settings (threads,
precision, ...); latencies measured under different settings are not one
device. ``read_store_device`` keeps one setting: the one that matches what the
caller asked for (``settings``, ``precision``), and among several matches the
one with the most measured networks; ``StoreDevice.note`` says which, and which
others exist. Per network the newest measurement's primary estimate
(``latency_ms``) counts, as everywhere else in hwprof.

Missing networks are measured through hwprof's :class:`~hwprof.profiling.Profiler`
(``profile_networks``): stored as they complete, resumable, with the settings
of the stored group so the new rows join it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from hwprof.errors import DataError, StoreError
from hwprof.types import Architecture

SPACE = "nb201"
PROFILE_ROUNDS = 5  # as `hwprof profile` measures by default: interleaved rounds, calibrated


def _describe_settings(settings: Mapping[str, Any], precision: str) -> str:
    items = ", ".join(f"{k}={v}" for k, v in sorted(settings.items()))
    return f"{precision}; {items}" if items else precision


@dataclass(frozen=True)
class SettingsGroup:
    """One setting of a device in the store and how many networks of the space were measured with it."""

    settings_hash: str
    settings: Mapping[str, Any]
    precision: str
    n_networks: int


@dataclass(frozen=True)
class StoreDevice:
    """One device with one setting, read from a store: spec -> latency (ms) of the newest measurement."""

    db: str
    device: str
    settings: Mapping[str, Any]
    precision: str
    settings_hash: str | None  # None: nothing stored yet with the requested settings
    latencies_ms: Mapping[str, float]
    others: tuple[SettingsGroup, ...] = field(default=())  # the device's other settings in the store

    @property
    def settings_text(self) -> str:
        return _describe_settings(self.settings, self.precision)

    @property
    def note(self) -> str:
        """Which setting is used, and which other settings the store holds for the device (empty when it holds one)."""
        if not self.others:
            return ""
        mine = {**self.settings, "precision": self.precision}
        groups = [{**g.settings, "precision": g.precision} for g in self.others]
        keys = sorted({k for g in groups for k in set(g) | set(mine) if _plain(g.get(k)) != _plain(mine.get(k))})

        def short(values: Mapping[str, Any]) -> str:
            return ", ".join(f"{k}={values.get(k)}" for k in keys)

        rest = "; ".join(f"{short(g)} ({o.n_networks} networks)" for g, o in zip(groups, self.others))
        return (f"{self.device}: using the measurements with {short(mine)} ({len(self.latencies_ms)} networks); "
                f"{self.db} also holds {rest} (choose with --set KEY=VALUE / --precision)")

    def missing(self, specs: Sequence[str]) -> list[str]:
        return [s for s in specs if s not in self.latencies_ms]

    def latencies_of(self, specs: Sequence[str]) -> np.ndarray:
        """Latencies (ms) of ``specs`` in that order; a DataError names how many are not measured."""
        missing = self.missing(specs)
        if missing:
            raise DataError(
                f"{self.device} ({self.settings_text}) has {len(specs) - len(missing)} of {len(specs)} networks measured in "
                f"{self.db}; {len(missing)} missing, e.g. {missing[0]!r}"
            )
        return np.asarray([self.latencies_ms[s] for s in specs], dtype=np.float64)

    def to_json(self) -> dict[str, Any]:
        return {"db": self.db, "device": self.device, "settings": dict(self.settings), "precision": self.precision,
                "settings_hash": self.settings_hash, "n_networks": len(self.latencies_ms)}


def _plain(value: Any) -> Any:
    return tuple(_plain(v) for v in value) if isinstance(value, (list, tuple)) else value


def _matches(stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Every wanted key has the wanted value in ``stored`` (1 == 1.0; a list equals the tuple of its items)."""
    return all(k in stored and _plain(stored[k]) == _plain(v) for k, v in wanted.items())


def read_store_device(
    db: str | Path,
    device: str,
    settings: Mapping[str, Any] | None = None,
    precision: str | None = None,
) -> StoreDevice:
    """The NB201 latencies of ``device`` in ``db`` under one setting (see the module docstring).

    A device with no matching NB201 measurement gives a ``StoreDevice`` with no
    latencies (and ``settings_hash`` None), so a caller can profile them; a
    store that does not exist is a StoreError.
    """
    from hwprof.store import Store

    wanted = dict(settings or {})
    path = Path(db)
    if not path.is_file():
        raise StoreError(f"no store at {str(path)!r}; profile the device first (`hwprof profile --device {device} --db {db}`)")
    with Store(path, create=False) as store:
        records = store.measurements(device=device, space=SPACE, latest_only=True)
    groups: dict[str, list[Any]] = {}
    for r in records:
        groups.setdefault(r.settings_hash, []).append(r)
    found = [
        SettingsGroup(h, dict(rows[-1].settings), rows[-1].precision, len({r.spec for r in rows})) for h, rows in groups.items()
    ]
    fits = [g for g in found if _matches(g.settings, wanted) and (precision is None or g.precision == precision)]
    if not fits:
        return StoreDevice(str(db), device, wanted, precision or "fp32", None, {}, tuple(found))
    # most networks first; among equals the newest setting (the last stored row wins)
    newest = {h: max(r.id for r in rows) for h, rows in groups.items()}
    chosen = max(fits, key=lambda g: (g.n_networks, newest[g.settings_hash]))
    latencies = {r.spec: float(r.latency_ms) for r in groups[chosen.settings_hash]}  # rows come oldest first
    others = tuple(g for g in found if g.settings_hash != chosen.settings_hash)
    return StoreDevice(str(db), device, chosen.settings, chosen.precision, chosen.settings_hash, latencies, others)


# progress of a profiling run: (networks done, networks to do)
ProfileProgress = Callable[[int, int], None]


def profile_networks(
    target: StoreDevice,
    specs: Sequence[str],
    protocol: Any | None = None,
    on_progress: ProfileProgress | None = None,
    command: str = "",
    cache_dir: str | Path | None = None,
) -> StoreDevice:
    """Measure the ``specs`` not yet in ``target`` into its store, with its settings; returns the store re-read.

    Through hwprof's Profiler: each network is stored as it completes and a
    repeated call skips what is stored (resumable). The device is built from
    the stored group's settings, so the new measurements join that group. The
    default protocol is ``hwprof profile``'s (``PROFILE_ROUNDS`` interleaved
    rounds, calibrated).
    """
    from hwprof.profiling import Profiler
    from hwprof.registry import get_device, get_space
    from hwprof.store import Store

    from hwprof.protocol import ProtocolSettings

    todo = target.missing(specs)
    if not todo:
        return target
    if protocol is None:
        protocol = ProtocolSettings(rounds=PROFILE_ROUNDS)
    space = get_space(SPACE)
    archs = [Architecture(SPACE, s) for s in todo]
    device = get_device(target.device, **dict(target.settings))
    store = Store(target.db)
    try:
        profiler = Profiler(device, space, store, protocol=protocol, cache_dir=cache_dir, command=command,
                            precision=target.precision, drift_every=0)
        if target.settings_hash is not None and profiler.settings_hash != target.settings_hash:
            raise DataError(
                f"{target.device} now resolves settings {target.settings_text} to another identity than the stored "
                f"measurements'; profile with `hwprof profile` and the same --set options instead"
            )
        callback = None if on_progress is None else (lambda ev: on_progress(ev.n_done, ev.n_total))
        profiler.profile(archs, on_progress=callback)
        settings, precision = dict(profiler.settings), profiler.precision
    finally:
        store.close()
    return read_store_device(target.db, target.device, settings, precision)
