"""Intel/AMD RAPL energy counters through the kernel's powercap sysfs interface.

Each zone (``/sys/class/powercap/intel-rapl:N`` for a package, ``:N:M`` for
its sub-zones such as ``dram`` or ``core``) has a ``name``, an ``energy_uj``
counter and ``max_energy_range_uj``, the value at which the counter wraps to
0. AMD Zen CPUs expose the same interface under the same names (Linux >= 5.8).
Since Linux 5.10 ``energy_uj`` is readable by root only (CVE-2020-8694).

The counters update about every millisecond, so each read may lag by up to
``update_ms`` of energy; the uncertainty of a window is that lag at both ends,
at the window's mean power.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from devices.energy.counters import counter_reading
from hwprof.errors import ConfigError
from hwprof.meters import EnergyReading, Meter, MeterError, MeterInfo, MeterUnavailable
from hwprof.types import coerce_numbers

DEFAULT_ROOT = "/sys/class/powercap"
_ZONE_DIR = re.compile(r"^intel-rapl(:\d+)+$")


class _Zone:
    def __init__(self, path: Path, name: str, max_range_uj: int) -> None:
        self.path = path
        self.name = name
        self.max_range_uj = max_range_uj

    def read_uj(self) -> int:
        return _read_int(self.path / "energy_uj")


def _read_int(path: Path) -> int:
    try:
        text = path.read_text().strip()
    except PermissionError:
        raise MeterUnavailable(
            f"cannot read {path}: permission denied (the RAPL counters are root-only since Linux 5.10; "
            f"run as root or grant read access, e.g. `sudo chmod o+r {path.parent}/energy_uj`)"
        ) from None
    except OSError as exc:
        raise MeterError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return int(text)
    except ValueError:
        raise MeterError(f"{path} holds {text[:40]!r}, not an integer") from None


class RaplMeter(Meter):
    """CPU package energy (RAPL). ``zones``: ``package`` (every top-level package zone, default) or
    comma-separated zone names (``package-0,dram``; ``psys`` is the whole platform where it exists)."""

    name = "rapl"
    description = "Intel/AMD RAPL energy counters (powercap sysfs)"
    default_settings = {"zones": "package", "root": DEFAULT_ROOT, "update_ms": 1.0}

    def validate_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(settings["zones"], str) or not settings["zones"].strip():
            raise ConfigError(f"rapl zones must be 'package' or comma-separated zone names, got {settings['zones']!r}")
        return coerce_numbers("rapl", settings, {"update_ms": (float, 0)})

    def _zones(self) -> list[_Zone]:
        root = Path(self.settings["root"])
        dirs = sorted(p for p in root.glob("intel-rapl:*") if _ZONE_DIR.match(p.name)) if root.is_dir() else []
        if not dirs:
            raise MeterUnavailable(
                f"no RAPL powercap zones under {root} (not an Intel/AMD CPU, the intel_rapl_common module is not "
                "loaded, or a virtual machine that hides the counters)"
            )
        found: dict[str, tuple[Path, bool]] = {}
        for d in dirs:
            try:
                name = (d / "name").read_text().strip()
            except OSError as exc:
                raise MeterError(f"cannot read {d / 'name'}: {exc.strerror or exc}") from None
            found[name if name not in found else f"{name}@{d.name}"] = (d, d.name.count(":") == 1)
        wanted = self.settings["zones"].strip()
        if wanted == "package":
            chosen = [(n, d) for n, (d, top) in found.items() if top and n.startswith("package")]
            if not chosen:
                raise MeterUnavailable(f"no package zone under {root}; zones found: {', '.join(found)}")
        else:
            names = [n.strip() for n in wanted.split(",") if n.strip()]
            missing = [n for n in names if n not in found]
            if missing:
                raise ConfigError(f"no RAPL zone named {', '.join(missing)} under {root}; zones found: {', '.join(found)}")
            chosen = [(n, found[n][0]) for n in names]
        return [_Zone(d, n, _read_int(d / "max_energy_range_uj")) for n, d in chosen]

    def check(self) -> MeterInfo:
        zones = self._zones()
        for zone in zones:
            zone.read_uj()  # permission problems show here, before any measurement
        self._cached = zones
        names = ", ".join(f"{z.name} ({z.path.name})" for z in zones)
        return MeterInfo(self.name, f"RAPL {names} via {self.settings['root']}", {"zones": [z.name for z in zones]})

    def _active(self) -> list[_Zone]:
        zones = getattr(self, "_cached", None)
        if zones is None:
            self.check()
            zones = self._cached
        return zones

    def read(self) -> tuple[float, tuple[int, ...]]:
        zones = self._active()
        return time.monotonic(), tuple(z.read_uj() for z in zones)

    def energy_between(self, start: Any, end: Any) -> EnergyReading:
        (t0, a), (t1, b) = start, end
        total_uj = 0
        for zone, before, after in zip(self._active(), a, b):
            total_uj += counter_delta(before, after, zone.max_range_uj)
        return counter_reading(total_uj / 1000.0, t1 - t0, self.settings["update_ms"])


def counter_delta(before: int, after: int, max_range: int) -> int:
    """Microjoules between two reads of a counter that wraps to 0 after ``max_range``.

    One wrap at most is detectable; at 100 W a typical 2^38 uJ range wraps
    every ~45 min, far longer than a visit.
    """
    if after >= before:
        return after - before
    return after + (max_range + 1) - before
