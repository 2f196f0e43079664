"""Find devices, spaces and predictors by name through Python entry points.

Third-party packages add their own by declaring entry points in the groups
``hwprof.devices``, ``hwprof.spaces`` and ``hwprof.predictors``.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import metadata
from typing import Any

from hwprof.errors import UnknownNameError

GROUPS = {"device": "hwprof.devices", "space": "hwprof.spaces", "predictor": "hwprof.predictors"}


@lru_cache(maxsize=None)
def _entry_points(group: str) -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=group)}


def names(kind: str) -> list[str]:
    return sorted(_entry_points(GROUPS[kind]))


def load(kind: str, name: str) -> Any:
    """The class/factory registered under ``name``; UnknownNameError lists the known names."""
    eps = _entry_points(GROUPS[kind])
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none (is hwprof installed? pip install -e .)"
        raise UnknownNameError(f"unknown {kind} {name!r}; known: {known}")
    try:
        return eps[name].load()
    except ImportError as exc:
        raise UnknownNameError(f"{kind} {name!r} is registered but cannot be imported: {exc}") from exc


def get_device(name: str, **settings: Any):
    return load("device", name)(**settings)


def get_space(name: str, **params: Any):
    return load("space", name)(**params)
