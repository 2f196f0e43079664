"""What is registered and usable here: each device adapter with its formats, precisions and exporters.

``hwprof devices`` prints this; a notebook user calls :func:`device_statuses`.
A device is checked (``Device.check``) and every registered exporter of its
formats too (``Exporter.check``), so the listing says both whether models can
be timed here and whether they can be exported here, and why not (the error
names the extra to install).
"""

from __future__ import annotations

from dataclasses import dataclass

from hwprof import registry
from hwprof.errors import HwprofError


@dataclass(frozen=True)
class ExporterStatus:
    name: str
    format: str
    precisions: tuple[str, ...]
    problem: str = ""  # why it cannot export here ('' when it can)

    @property
    def usable(self) -> bool:
        return not self.problem


@dataclass(frozen=True)
class DeviceStatus:
    name: str
    description: str
    formats: tuple[str, ...]
    precisions: tuple[str, ...]
    detail: str  # runtime and machine when usable, otherwise why not
    usable: bool  # the device can time models here
    exporters: tuple[ExporterStatus, ...] = ()

    @property
    def profilable_precisions(self) -> tuple[str, ...]:
        """Precisions ``hwprof profile`` can export and measure here (the device's, written by a usable exporter)."""
        written = {p for e in self.exporters if e.usable for p in e.precisions}
        return tuple(p for p in self.precisions if p in written) if self.usable else ()


def exporter_statuses() -> list[ExporterStatus]:
    out = []
    for name in registry.names("exporter"):
        try:
            cls = registry.load("exporter", name)
            problem = ""
            try:
                cls().check()
            except HwprofError as exc:
                problem = str(exc)
            out.append(ExporterStatus(name, str(getattr(cls, "format", "")), tuple(getattr(cls, "precisions", ())), problem))
        except HwprofError as exc:
            out.append(ExporterStatus(name, "?", (), str(exc)))
    return out


def device_statuses() -> list[DeviceStatus]:
    """Every registered device, checked here, with the registered exporters of its formats."""
    exporters = exporter_statuses()
    out = []
    for name in registry.names("device"):
        try:
            cls = registry.load("device", name)
        except HwprofError as exc:
            out.append(DeviceStatus(name, "", (), (), str(exc), False))
            continue
        formats = tuple(getattr(cls, "supported_formats", ()))
        precisions = tuple(getattr(cls, "supported_precisions", ("fp32",)))
        try:
            info = cls().check()
            detail, usable = f"{info.runtime} {info.runtime_version} on {info.cpu_model} ({info.cores_logical} cores)", True
        except HwprofError as exc:
            detail, usable = str(exc), False
        mine = tuple(e for e in exporters if e.format in formats)
        out.append(DeviceStatus(name, str(getattr(cls, "description", "")), formats, precisions, detail, usable, mine))
    return out


def devices_for_format(fmt: str) -> list[str]:
    """Registered devices that run files of ``fmt`` (by name); those whose class cannot be imported are left out."""
    out = []
    for name in registry.names("device"):
        try:
            if fmt in getattr(registry.load("device", name), "supported_formats", ()):
                out.append(name)
        except HwprofError:
            continue
    return out


def default_device_for(fmt: str) -> str:
    """The device ``hwprof measure`` uses for a file of ``fmt``: the first registered one usable here.

    Falls back to the first that runs ``fmt`` at all (its error then says why it cannot run here);
    ConfigError when none runs ``fmt``.
    """
    from hwprof.errors import ConfigError

    candidates = devices_for_format(fmt)
    if not candidates:
        raise ConfigError(f"no registered device runs {fmt} files (see `hwprof devices`)")
    for name in candidates:
        try:
            registry.get_device(name).check()
        except HwprofError:
            continue
        return name
    return candidates[0]


__all__ = ["DeviceStatus", "ExporterStatus", "default_device_for", "device_statuses", "devices_for_format", "exporter_statuses"]
