"""Settings every CPU adapter shares: thread counts, core pinning, the seed of the timed input.

``ort-cpu`` and ``torch-cpu`` validate these the same way and pin the process
to the same cores the same way, so one setting means one thing on both.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator, Sequence

from hwprof.errors import ConfigError, DeviceUnavailable
from hwprof.hostinfo import cpu_model
from hwprof.types import DeviceInfo


def parse_affinity(value: Any) -> tuple[int, ...] | None:
    """Core ids from '0,2-3', 0, (0, '2-3') or [0, 2, 3]; None/'' -> None (no pinning)."""
    if value is None or value == "" or value == () or value == []:
        return None
    parts = value.split(",") if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else [value]
    cores: set[int] = set()
    for part in parts:
        try:
            if isinstance(part, bool):
                raise ValueError
            if isinstance(part, int):
                cores.add(part)
                continue
            text = str(part).strip()
            if "-" in text.lstrip("-"):
                lo, hi = text.split("-", 1)
                if int(hi) < int(lo):
                    raise ValueError
                cores.update(range(int(lo), int(hi) + 1))
            elif text:
                cores.add(int(text))
        except ValueError:
            raise ConfigError(f"cpu_affinity must look like '0' or '0,2-3', got {value!r}") from None
    if any(c < 0 for c in cores):
        raise ConfigError(f"cpu_affinity core ids must be >= 0, got {value!r}")
    return tuple(sorted(cores))


def parse_bool(name: str, value: Any) -> bool:
    """True/False, 1/0 or the words true/false/yes/no/on/off; anything else is a ConfigError."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
        return value.strip().lower() in ("true", "yes", "on", "1")
    raise ConfigError(f"{name} must be true or false, got {value!r}")


def validate_cpu_settings(settings: dict[str, Any], thread_keys: Sequence[str]) -> dict[str, Any]:
    """Check and normalise the thread counts (>= 0, 0 = the runtime's default), ``cpu_affinity`` and ``input_seed``."""
    for key in thread_keys:
        try:
            settings[key] = int(settings[key])
        except (TypeError, ValueError):
            raise ConfigError(f"{key} must be an integer, got {settings[key]!r}") from None
        if settings[key] < 0:
            raise ConfigError(f"{key} must be >= 0 (0 = runtime default), got {settings[key]}")
    affinity = parse_affinity(settings["cpu_affinity"])
    if affinity is not None and hasattr(os, "sched_getaffinity"):
        allowed = os.sched_getaffinity(0)
        bad = [c for c in affinity if c not in allowed]
        if bad:
            raise ConfigError(f"cpu_affinity cores {bad} are not available here (allowed: {sorted(allowed)})")
    settings["cpu_affinity"] = list(affinity) if affinity is not None else None
    try:
        settings["input_seed"] = int(settings["input_seed"])
    except (TypeError, ValueError):
        raise ConfigError(f"input_seed must be an integer, got {settings['input_seed']!r}") from None
    return settings


def affinity_supported() -> bool:
    return hasattr(os, "sched_setaffinity")


def local_device_info(device: Any, runtime: str, runtime_version: str, extra: dict[str, Any]) -> DeviceInfo:
    """The DeviceInfo of a CPU adapter on this machine; DeviceUnavailable when its cpu_affinity cannot be applied here."""
    if device.settings["cpu_affinity"] is not None and not affinity_supported():
        raise DeviceUnavailable(f"{device.name}: cpu_affinity needs os.sched_setaffinity (Linux)")
    return DeviceInfo(
        name=device.name,
        runtime=runtime,
        runtime_version=runtime_version,
        cpu_model=cpu_model(),
        cores_logical=os.cpu_count() or 0,
        settings=dict(device.settings),
        extra=extra,
    )


@contextlib.contextmanager
def pinned_to(cores: Sequence[int] | None) -> Iterator[None]:
    """Pin this process to ``cores`` for the duration of the block, then restore the previous set (None: no-op)."""
    if cores is None or not affinity_supported():
        yield
        return
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, set(cores))
    try:
        yield
    finally:
        os.sched_setaffinity(0, saved)


__all__ = ["affinity_supported", "local_device_info", "parse_affinity", "parse_bool", "pinned_to", "validate_cpu_settings"]
