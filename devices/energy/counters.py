"""What RAPL and NVML share: an energy counter read at both ends of a window."""

from __future__ import annotations

from hwprof.meters import EnergyReading


def counter_reading(energy_mj: float, duration_s: float, update_ms: float, resolution_mj: float = 0.0) -> EnergyReading:
    """A counter difference as a reading: each read may lag by ``update_ms`` (at the window's mean power)
    and be off by one ``resolution_mj`` step, at both ends of the window."""
    duration_s = max(duration_s, 0.0)
    power_w = energy_mj / 1000.0 / duration_s if duration_s > 0 else 0.0
    lag_mj = power_w * update_ms  # W x ms = mJ
    return EnergyReading(energy_mj, 2 * lag_mj + resolution_mj, duration_s)
