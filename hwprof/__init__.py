"""hwprof: hardware-aware neural architecture search.

Measure real latency of candidate networks on a device, learn predictors from
those measurements, and search for architectures that are accurate and fast.
"""

__version__ = "0.1.0"

from hwprof.errors import HwprofError  # noqa: E402
from hwprof.types import Architecture, DeviceInfo, LatencyStats, Measurement, ModelArtifact  # noqa: E402

__all__ = [
    "__version__",
    "Architecture",
    "DeviceInfo",
    "HwprofError",
    "LatencyStats",
    "Measurement",
    "ModelArtifact",
]
