"""NVIDIA GPU energy through NVML's total energy counter (``nvidia-ml-py``, the ``[nvml]`` extra).

``nvmlDeviceGetTotalEnergyConsumption`` returns the millijoules the GPU used
since the driver was loaded (Volta and newer). The counter follows the
board's power sampling, so a read may lag by up to ``update_ms``; the
uncertainty of a window is that lag at both ends at its mean power. The
default (100 ms) is deliberately pessimistic; set it from your GPU's sampling
period where you know it.
"""

from __future__ import annotations

import time
from typing import Any

from devices.energy.counters import counter_reading
from hwprof.meters import EnergyReading, Meter, MeterError, MeterInfo, MeterUnavailable
from hwprof.types import coerce_numbers


def _pynvml() -> Any:
    try:
        import pynvml
    except ImportError:
        raise MeterUnavailable(
            "NVML meter needs nvidia-ml-py: pip install 'hwprof[nvml]' (or nvidia-ml-py)"
        ) from None
    return pynvml


def _describe(pynvml: Any, exc: Exception) -> str:
    """One line for an NVMLError, naming the common causes."""
    kind = type(exc).__name__
    if "LibraryNotFound" in kind:
        return "NVML library not found: no NVIDIA driver on this machine"
    if "DriverNotLoaded" in kind:
        return "the NVIDIA driver is not loaded"
    if "NotSupported" in kind:
        return "this GPU has no total energy counter (NVML supports it from Volta on)"
    if "NoPermission" in kind:
        return "no permission to query the GPU through NVML"
    return f"NVML error: {exc}"


class NvmlMeter(Meter):
    """Energy of one NVIDIA GPU (``index``) from NVML's total energy counter."""

    name = "nvml"
    description = "NVIDIA GPU energy counter (NVML)"
    default_settings = {"index": 0, "update_ms": 100.0}

    def validate_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        return coerce_numbers("nvml", settings, {"index": (int, 0), "update_ms": (float, 0)})

    def _call(self, what: str, fn: Any, *args: Any) -> Any:
        pynvml = _pynvml()
        try:
            return fn(*args)
        except pynvml.NVMLError as exc:
            cls = MeterUnavailable if what != "read" else MeterError
            raise cls(f"nvml ({what}): {_describe(pynvml, exc)}") from None

    def _handle(self) -> Any:
        handle = getattr(self, "_gpu", None)
        if handle is None:
            pynvml = _pynvml()
            self._call("init", pynvml.nvmlInit)
            count = self._call("init", pynvml.nvmlDeviceGetCount)
            if self.settings["index"] >= count:
                raise MeterUnavailable(f"nvml: no GPU {self.settings['index']} (this machine has {count})")
            handle = self._gpu = self._call("init", pynvml.nvmlDeviceGetHandleByIndex, self.settings["index"])
        return handle

    def check(self) -> MeterInfo:
        pynvml = _pynvml()
        gpu = self._handle()
        name = self._call("check", pynvml.nvmlDeviceGetName, gpu)
        name = name.decode() if isinstance(name, bytes) else str(name)
        self._call("check", pynvml.nvmlDeviceGetTotalEnergyConsumption, gpu)
        return MeterInfo(self.name, f"NVML total energy of GPU {self.settings['index']} ({name})", {"gpu": name})

    def read(self) -> tuple[float, int]:
        pynvml = _pynvml()
        return time.monotonic(), int(self._call("read", pynvml.nvmlDeviceGetTotalEnergyConsumption, self._handle()))

    def energy_between(self, start: Any, end: Any) -> EnergyReading:
        (t0, a), (t1, b) = start, end
        if b < a:
            raise MeterError(f"nvml energy counter went back ({a} -> {b} mJ): was the driver reloaded?")
        return counter_reading(float(b - a), t1 - t0, self.settings["update_ms"], resolution_mj=1.0)
