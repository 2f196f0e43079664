"""One registry for every plugin kind, found by name.

Built-in plugins and third-party packages alike declare Python entry points in
the groups of :data:`GROUPS` (``hwprof.devices``, ``hwprof.spaces``, ...), so
the core finds a concrete device, space or exporter without importing it.
Code that cannot ship entry points (a notebook, a test) calls :func:`register`
with an object or a ``"module:attribute"`` path; a registered name shadows an
entry point of the same name.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import import_module, metadata
from typing import Any

from hwprof.errors import ConfigError, UnknownNameError

# kind -> entry-point group
GROUPS: dict[str, str] = {
    "device": "hwprof.devices",
    "space": "hwprof.spaces",
    "exporter": "hwprof.exporters",
    "predictor": "hwprof.predictors",
    "featurizer": "hwprof.featurizers",
    "search": "hwprof.search",
    "transfer": "hwprof.transfer",
    "meter": "hwprof.meters",
}

_REGISTERED: dict[str, dict[str, Any]] = {kind: {} for kind in GROUPS}


def _group(kind: str) -> str:
    if kind not in GROUPS:
        raise UnknownNameError(f"unknown plugin kind {kind!r}; known: {', '.join(GROUPS)}")
    return GROUPS[kind]


@lru_cache(maxsize=None)
def _entry_points(group: str) -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=group)}


def register(kind: str, name: str, target: Any) -> None:
    """Add ``target`` (an object, or a ``"module:attribute"`` path imported on first use) under ``name``."""
    _group(kind)
    if not name or not isinstance(name, str):
        raise ConfigError(f"a {kind} name must be a non-empty string, got {name!r}")
    _REGISTERED[kind][name] = target


def unregister(kind: str, name: str) -> None:
    """Remove a name added with :func:`register` (entry points stay)."""
    _group(kind)
    _REGISTERED[kind].pop(name, None)


def names(kind: str) -> list[str]:
    return sorted(set(_entry_points(_group(kind))) | set(_REGISTERED[kind]))


def _resolve(path: str) -> Any:
    module, _, attr = path.partition(":")
    obj: Any = import_module(module)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


def load(kind: str, name: str) -> Any:
    """The class/factory registered under ``name``; UnknownNameError lists the known names."""
    group = _group(kind)
    registered = _REGISTERED[kind]
    eps = _entry_points(group)
    if name not in registered and name not in eps:
        known = ", ".join(names(kind)) or "none (is hwprof installed? pip install -e .)"
        raise UnknownNameError(f"unknown {kind} {name!r}; known: {known}")
    try:
        if name in registered:
            target = registered[name]
            if isinstance(target, str):
                target = registered[name] = _resolve(target)
            return target
        return eps[name].load()
    except (ImportError, AttributeError) as exc:
        raise UnknownNameError(f"{kind} {name!r} is registered but cannot be imported: {exc}") from exc


def get_device(name: str, **settings: Any):
    return load("device", name)(**settings)


def get_space(name: str, **params: Any):
    return load("space", name)(**params)
