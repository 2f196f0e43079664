"""What the host looked like while it measured: recorded with every Measurement.

A latency means little without the machine state that produced it (CPU
model, governor, turbo, load, thread variables, library versions). Everything
here is best effort: a missing or unreadable file yields ``None``, because
that is normal on macOS, in containers and on locked-down boards. Parsers take
file text so tests can feed recorded real content.
"""

from __future__ import annotations

import logging
import os
import platform
import re
import socket
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping, Sequence

from hwprof.types import stable_hash

logger = logging.getLogger("hwprof")

CPUINFO_PATH = "/proc/cpuinfo"
MEMINFO_PATH = "/proc/meminfo"
SYSFS_CPU_ROOT = "/sys/devices/system/cpu"

THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
THREAD_ENV_PREFIXES = ("ORT_",)

CORE_PACKAGES = ("hwprof", "numpy", "onnx", "onnxruntime", "torch")
# Distributions that provide the same import under another name.
PACKAGE_ALIASES: Mapping[str, tuple[str, ...]] = {
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "onnxruntime-directml"),
    "xgboost": ("xgboost", "xgboost-cpu"),
}

# Keys of /proc/cpuinfo naming the CPU, in order of preference (case matters:
# "processor" is the index, "Processor" the model on older ARM kernels).
_CPU_MODEL_KEYS = ("model name", "Processor", "cpu model", "Hardware", "Model")

# Fields of host_metadata() that identify the machine rather than its momentary state.
FINGERPRINT_KEYS = ("hostname", "cpu_model", "cores_logical", "cores_physical", "kernel")


def read_text(path: str | os.PathLike[str]) -> str | None:
    """File contents, or None when absent or unreadable (logged at debug level)."""
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        logger.debug("hostinfo: cannot read %s: %s", path, exc)
        return None


def _cpuinfo_blocks(text: str) -> list[dict[str, str]]:
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, sep, value = line.partition(":")
        if sep:
            current.setdefault(key.strip(), value.strip())
    if current:
        blocks.append(current)
    return blocks


def parse_cpu_model(cpuinfo_text: str) -> str | None:
    """The CPU name from /proc/cpuinfo text (x86 "model name", ARM/MIPS fallbacks)."""
    blocks = _cpuinfo_blocks(cpuinfo_text)
    for key in _CPU_MODEL_KEYS:
        for block in blocks:
            value = block.get(key)
            if value:
                return re.sub(r"\s+", " ", value)
    return None


def parse_physical_cores(cpuinfo_text: str) -> int | None:
    """Unique (physical id, core id) pairs; None when the kernel does not report them (ARM, some VMs)."""
    pairs = {
        (b["physical id"], b["core id"])
        for b in _cpuinfo_blocks(cpuinfo_text)
        if "physical id" in b and "core id" in b
    }
    return len(pairs) or None


def parse_cpuinfo_mhz(cpuinfo_text: str) -> float | None:
    """Mean of the "cpu MHz" lines (x86), a fallback when cpufreq is not exposed."""
    values = []
    for block in _cpuinfo_blocks(cpuinfo_text):
        try:
            values.append(float(block["cpu MHz"]))
        except (KeyError, ValueError):
            continue
    return round(sum(values) / len(values), 1) if values else None


def parse_meminfo(meminfo_text: str) -> dict[str, float | None]:
    """Total and available memory in MB from /proc/meminfo text (values there are kB)."""
    kb: dict[str, int] = {}
    for line in meminfo_text.splitlines():
        m = re.match(r"^(\w+):\s+(\d+)\s*kB", line)
        if m:
            kb[m.group(1)] = int(m.group(2))

    def mb(key: str) -> float | None:
        return round(kb[key] / 1024, 1) if key in kb else None

    return {"mem_total_mb": mb("MemTotal"), "mem_available_mb": mb("MemAvailable")}


def _read_int(path: Path) -> int | None:
    text = read_text(path)
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def _cpu_dirs(root: Path) -> list[tuple[int, Path]]:
    try:
        entries = [(int(p.name[3:]), p) for p in root.glob("cpu[0-9]*") if p.name[3:].isdigit()]
    except OSError:
        return []
    return sorted(entries)


def collapse(per_cpu: Mapping[int, Any]) -> Any:
    """One value when every CPU agrees, the per-CPU dict (str keys, JSON-able) otherwise, None when empty."""
    values = list(per_cpu.values())
    if not values:
        return None
    if all(v == values[0] for v in values):
        return values[0]
    return {str(cpu): v for cpu, v in sorted(per_cpu.items())}


def read_cpufreq(sysfs_cpu_root: str | os.PathLike[str] = SYSFS_CPU_ROOT) -> dict[str, Any]:
    """Governor, turbo/boost switches and current frequency from sysfs, each None when unreadable.

    ``intel_pstate_no_turbo`` is 1 when turbo is *disabled*; ``cpufreq_boost``
    is 1 when boost is *enabled* (acpi-cpufreq, amd-pstate).
    """
    root = Path(sysfs_cpu_root)
    governors: dict[int, str] = {}
    freqs_khz: list[int] = []
    for cpu, path in _cpu_dirs(root):
        governor = read_text(path / "cpufreq" / "scaling_governor")
        if governor is not None and governor.strip():
            governors[cpu] = governor.strip()
        khz = _read_int(path / "cpufreq" / "scaling_cur_freq")
        if khz is not None:
            freqs_khz.append(khz)
    return {
        "scaling_governor": collapse(governors),
        "intel_pstate_no_turbo": _read_int(root / "intel_pstate" / "no_turbo"),
        "cpufreq_boost": _read_int(root / "cpufreq" / "boost"),
        "cpu_freq_mhz": round(sum(freqs_khz) / len(freqs_khz) / 1000, 1) if freqs_khz else None,
    }


def cpu_model() -> str:
    """The CPU name, from /proc/cpuinfo where it exists, else what ``platform`` knows, else "unknown"."""
    return _cpu_model_from(read_text(CPUINFO_PATH))


def _cpu_model_from(cpuinfo_text: str | None) -> str:
    model = parse_cpu_model(cpuinfo_text) if cpuinfo_text else None
    return model or platform.processor() or platform.machine() or "unknown"


def thread_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Thread-count variables that change runtime behaviour, only those set."""
    env = os.environ if environ is None else environ
    return {
        k: env[k]
        for k in sorted(env)
        if k in THREAD_ENV_VARS or any(k.startswith(p) for p in THREAD_ENV_PREFIXES)
    }


def package_version(name: str) -> str | None:
    """Installed version of a distribution (read from metadata, never imported); None when absent."""
    for dist in PACKAGE_ALIASES.get(name, (name,)):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
        except Exception as exc:  # broken metadata must not stop a measurement
            logger.debug("hostinfo: cannot read version of %s: %s", dist, exc)
    return None


def _affinity() -> list[int] | None:
    if not hasattr(os, "sched_getaffinity"):
        return None
    try:
        return sorted(os.sched_getaffinity(0))
    except OSError:
        return None


def _loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def host_metadata(extra_packages: Sequence[str] = ()) -> dict[str, Any]:
    """A JSON-serialisable snapshot of the host, recorded with every measurement. Never raises on missing files."""
    cpuinfo = read_text(CPUINFO_PATH) or ""
    meminfo = read_text(MEMINFO_PATH) or ""
    freq = read_cpufreq(SYSFS_CPU_ROOT)
    if freq["cpu_freq_mhz"] is None:
        freq["cpu_freq_mhz"] = parse_cpuinfo_mhz(cpuinfo)
    packages = dict.fromkeys((*CORE_PACKAGES, *extra_packages))
    return {
        "hostname": socket.gethostname(),
        "pid": os.getpid(),  # the worker process that measured (pyperf records it too)
        "os": platform.system(),
        "platform": platform.platform(),
        "kernel": platform.release(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "cpu_model": _cpu_model_from(cpuinfo),
        "cores_logical": os.cpu_count(),
        "cores_physical": parse_physical_cores(cpuinfo),
        "cpu_affinity": _affinity(),
        **freq,
        "loadavg": _loadavg(),
        **parse_meminfo(meminfo),
        "thread_env": thread_env(),
        "versions": {name: package_version(name) for name in packages},
    }


def host_fingerprint(meta: Mapping[str, Any]) -> str:
    """Identifies the machine (hostname, CPU, cores, kernel), ignoring load, frequency and versions."""
    return stable_hash({key: meta.get(key) for key in FINGERPRINT_KEYS})
