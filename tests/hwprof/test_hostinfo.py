"""Host metadata: parsers fed with recorded /proc and /sys content, plus a live snapshot of this machine."""

from __future__ import annotations

import json
import os
from importlib import metadata

import pytest

from hwprof import hostinfo
from hwprof.hostinfo import (
    collapse,
    cpu_model,
    host_fingerprint,
    host_metadata,
    package_version,
    parse_cpu_model,
    parse_cpuinfo_mhz,
    parse_meminfo,
    parse_physical_cores,
    read_cpufreq,
    thread_env,
)

# Recorded from a 2-socket Xeon (flags trimmed), reduced to 2 cores x 2 threads per socket.
XEON_BLOCK = """processor\t: {cpu}
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 79
model name\t: Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz
stepping\t: 1
microcode\t: 0xb000040
cpu MHz\t\t: {mhz}
cache size\t: 35840 KB
physical id\t: {pkg}
siblings\t: 4
core id\t\t: {core}
cpu cores\t: 2
apicid\t\t: {apic}
fpu\t\t: yes
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr avx2 smep bmi2 erms invpcid
bogomips\t: 4788.92
clflush size\t: 64
address sizes\t: 46 bits physical, 48 bits virtual
power management:
"""
# Linux numbers the first thread of every core first, then the hyper-threads.
XEON_LAYOUT = [(0, 0), (0, 1), (1, 0), (1, 1), (0, 0), (0, 1), (1, 0), (1, 1)]
XEON_CPUINFO = "\n".join(
    XEON_BLOCK.format(cpu=i, pkg=pkg, core=core, apic=2 * i, mhz=f"{1200.0 + 100 * i:.3f}")
    for i, (pkg, core) in enumerate(XEON_LAYOUT)
)

# Raspberry Pi 4, 64-bit kernel: no "model name", no physical/core ids.
RPI4_CPUINFO = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x0
CPU part\t: 0xd08
CPU revision\t: 3

processor\t: 1
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41

Hardware\t: BCM2835
Revision\t: c03111
Serial\t\t: 10000000a1b2c3d4
Model\t\t: Raspberry Pi 4 Model B Rev 1.1
"""

# Older 32-bit ARM kernel: capital-P "Processor" names the CPU, lower-case "processor" is the index.
ARMV7_CPUINFO = """Processor\t: ARMv7 Processor rev 4 (v7l)
processor\t: 0
BogoMIPS\t: 38.40

Hardware\t: BCM2709
"""

MEMINFO = """MemTotal:       65856492 kB
MemFree:        12345678 kB
MemAvailable:   40960000 kB
Buffers:          524288 kB
Cached:         20971520 kB
SwapCached:            0 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
"""

REQUIRED_KEYS = {
    "hostname",
    "os",
    "platform",
    "kernel",
    "python",
    "cpu_model",
    "cores_logical",
    "cores_physical",
    "cpu_affinity",
    "scaling_governor",
    "intel_pstate_no_turbo",
    "cpufreq_boost",
    "cpu_freq_mhz",
    "loadavg",
    "mem_total_mb",
    "mem_available_mb",
    "thread_env",
    "versions",
}


def test_xeon_cpuinfo_two_sockets_two_cores_two_threads():
    assert parse_cpu_model(XEON_CPUINFO) == "Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz"
    assert parse_physical_cores(XEON_CPUINFO) == 4
    assert parse_cpuinfo_mhz(XEON_CPUINFO) == pytest.approx(1550.0)


def test_arm_cpuinfo_variants():
    assert parse_physical_cores(RPI4_CPUINFO) is None
    assert parse_cpu_model(RPI4_CPUINFO) == "BCM2835"
    assert parse_cpuinfo_mhz(RPI4_CPUINFO) is None
    assert parse_cpu_model(ARMV7_CPUINFO) == "ARMv7 Processor rev 4 (v7l)"
    assert parse_cpu_model("") is None


def test_meminfo_in_megabytes():
    assert parse_meminfo(MEMINFO) == {"mem_total_mb": 64313.0, "mem_available_mb": 40000.0}
    # Kernels before 3.14 have no MemAvailable.
    assert parse_meminfo("MemTotal:  2048 kB\nMemFree:  1024 kB\n") == {
        "mem_total_mb": 2.0,
        "mem_available_mb": None,
    }


def _fake_sysfs(root, governors, freqs_khz):
    for cpu, (gov, khz) in enumerate(zip(governors, freqs_khz)):
        d = root / f"cpu{cpu}" / "cpufreq"
        d.mkdir(parents=True)
        (d / "scaling_governor").write_text(gov + "\n")
        (d / "scaling_cur_freq").write_text(f"{khz}\n")
    (root / "cpuidle").mkdir()  # not a CPU directory
    (root / "cpufreq").mkdir()  # policy directory, not a CPU either


def test_read_cpufreq_collapses_equal_governors(tmp_path):
    _fake_sysfs(tmp_path, ["performance"] * 3, [2_000_000, 2_400_000, 2_800_000])
    (tmp_path / "intel_pstate").mkdir()
    (tmp_path / "intel_pstate" / "no_turbo").write_text("1\n")
    assert read_cpufreq(tmp_path) == {
        "scaling_governor": "performance",
        "intel_pstate_no_turbo": 1,
        "cpufreq_boost": None,
        "cpu_freq_mhz": 2400.0,
    }


def test_read_cpufreq_mixed_governors_and_boost(tmp_path):
    _fake_sysfs(tmp_path, ["performance", "powersave"], [1_000_000, 1_000_000])
    (tmp_path / "cpufreq" / "boost").write_text("0\n")
    info = read_cpufreq(tmp_path)
    assert info["scaling_governor"] == {"0": "performance", "1": "powersave"}
    assert info["cpufreq_boost"] == 0 and info["intel_pstate_no_turbo"] is None


def test_read_cpufreq_on_missing_tree_is_all_none(tmp_path):
    assert read_cpufreq(tmp_path / "absent") == {
        "scaling_governor": None,
        "intel_pstate_no_turbo": None,
        "cpufreq_boost": None,
        "cpu_freq_mhz": None,
    }
    assert collapse({}) is None


def test_thread_env_keeps_only_thread_variables():
    env = {"OMP_NUM_THREADS": "1", "ORT_DISABLE_SPINNING": "1", "HOME": "/root", "MKL_NUM_THREADS": "2"}
    assert thread_env(env) == {"MKL_NUM_THREADS": "2", "OMP_NUM_THREADS": "1", "ORT_DISABLE_SPINNING": "1"}


def test_package_version_reads_metadata_and_falls_back_to_aliases(monkeypatch):
    assert package_version("numpy") == metadata.version("numpy")
    assert package_version("no-such-distribution-hwprof-test") is None

    def fake_version(name: str) -> str:
        if name == "onnxruntime-gpu":
            return "9.9.9"
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(hostinfo.metadata, "version", fake_version)
    assert package_version("onnxruntime") == "9.9.9"


def test_host_metadata_on_this_machine_is_complete_and_json_serialisable():
    meta = host_metadata(extra_packages=("scipy", "no-such-distribution-hwprof-test"))
    assert REQUIRED_KEYS <= set(meta)
    assert json.loads(json.dumps(meta)) == meta
    assert meta["cores_logical"] == os.cpu_count()
    assert isinstance(meta["cpu_model"], str) and meta["cpu_model"]
    assert meta["cpu_model"] == cpu_model()
    assert meta["versions"]["numpy"] == metadata.version("numpy")
    assert meta["versions"]["scipy"] == metadata.version("scipy")
    assert meta["versions"]["no-such-distribution-hwprof-test"] is None
    assert {"hwprof", "onnx", "onnxruntime", "torch"} <= set(meta["versions"])
    if hasattr(os, "sched_getaffinity"):
        assert meta["cpu_affinity"] == sorted(os.sched_getaffinity(0))


def test_host_metadata_survives_a_bare_host(monkeypatch, tmp_path):
    monkeypatch.setattr(hostinfo, "CPUINFO_PATH", str(tmp_path / "cpuinfo"))
    monkeypatch.setattr(hostinfo, "MEMINFO_PATH", str(tmp_path / "meminfo"))
    monkeypatch.setattr(hostinfo, "SYSFS_CPU_ROOT", str(tmp_path / "sys"))
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)

    def no_loadavg():
        raise OSError("not available")

    monkeypatch.setattr(os, "getloadavg", no_loadavg)
    meta = host_metadata()
    assert REQUIRED_KEYS <= set(meta)
    for key in ("cores_physical", "cpu_affinity", "scaling_governor", "cpu_freq_mhz", "loadavg", "mem_total_mb"):
        assert meta[key] is None, key
    assert meta["cpu_model"]  # falls back to platform, never empty
    json.dumps(meta)


def test_host_metadata_reads_recorded_files(monkeypatch, tmp_path):
    (tmp_path / "cpuinfo").write_text(XEON_CPUINFO)
    (tmp_path / "meminfo").write_text(MEMINFO)
    monkeypatch.setattr(hostinfo, "CPUINFO_PATH", str(tmp_path / "cpuinfo"))
    monkeypatch.setattr(hostinfo, "MEMINFO_PATH", str(tmp_path / "meminfo"))
    monkeypatch.setattr(hostinfo, "SYSFS_CPU_ROOT", str(tmp_path / "sys"))
    meta = host_metadata()
    assert meta["cpu_model"] == "Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz"
    assert meta["cores_physical"] == 4
    assert meta["cpu_freq_mhz"] == pytest.approx(1550.0)  # cpuinfo fallback when sysfs has no cpufreq
    assert meta["mem_total_mb"] == 64313.0


def test_fingerprint_ignores_volatile_state_but_not_the_machine():
    meta = {
        "hostname": "bench-01",
        "cpu_model": "Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz",
        "cores_logical": 8,
        "cores_physical": 4,
        "kernel": "6.1.0",
        "loadavg": [0.1, 0.2, 0.3],
        "mem_available_mb": 1000.0,
        "cpu_freq_mhz": 2400.0,
    }
    fp = host_fingerprint(meta)
    assert len(fp) == 16 and fp == host_fingerprint(dict(reversed(list(meta.items()))))
    busy = {**meta, "loadavg": [7.0, 6.0, 5.0], "mem_available_mb": 10.0, "cpu_freq_mhz": 1200.0}
    assert host_fingerprint(busy) == fp
    for key, other in [("hostname", "bench-02"), ("kernel", "6.2.0"), ("cores_logical", 16)]:
        assert host_fingerprint({**meta, key: other}) != fp, key
    live = host_metadata()
    assert host_fingerprint(live) == host_fingerprint(host_metadata())
