"""Energy meters against fake sysfs trees, a fake NVML, recorded tegrastats lines and CSV logs."""

from __future__ import annotations

import os
import sys
import time
import types
from pathlib import Path

import pytest

from devices.energy.counters import counter_reading
from devices.energy.csv_meter import CsvPowerMeter, parse_timestamp, read_power_log
from devices.energy.nvml import NvmlMeter
from devices.energy.power_trace import integrate
from devices.energy.rapl import RaplMeter, counter_delta
from devices.energy.tegrastats import TegrastatsMeter, parse_rails, rail_power_w
from hwprof.errors import ConfigError
from hwprof.meters import EnergyReading, MeterError, MeterUnavailable, pool_energy

DATA = Path(__file__).parent / "data"


# --- RAPL -------------------------------------------------------------------
def make_powercap(root: Path, zones: dict[str, tuple[str, int, int]]) -> Path:
    """A fake /sys/class/powercap: {dir: (name, energy_uj, max_energy_range_uj)}."""
    for d, (name, energy, max_range) in zones.items():
        z = root / d
        z.mkdir(parents=True)
        (z / "name").write_text(name + "\n")
        (z / "energy_uj").write_text(f"{energy}\n")
        (z / "max_energy_range_uj").write_text(f"{max_range}\n")
    return root


def set_energy(root: Path, d: str, value: int) -> None:
    (root / d / "energy_uj").write_text(f"{value}\n")


@pytest.fixture
def powercap(tmp_path):
    return make_powercap(tmp_path / "powercap", {
        "intel-rapl:0": ("package-0", 1_000_000, 262_143_328_850),
        "intel-rapl:0:0": ("core", 500_000, 262_143_328_850),
        "intel-rapl:0:2": ("dram", 10_000, 65_712_999_613),
        "intel-rapl:1": ("package-1", 2_000_000, 262_143_328_850),
        "intel-rapl-mmio:0": ("package-0", 0, 1000),  # another interface: never counted
    })


def test_rapl_sums_the_package_zones_only(powercap):
    meter = RaplMeter(root=str(powercap))
    info = meter.check()
    assert info.extra["zones"] == ["package-0", "package-1"]
    start = meter.read()
    set_energy(powercap, "intel-rapl:0", 1_250_000)   # +250 mJ
    set_energy(powercap, "intel-rapl:0:0", 900_000)   # sub-zone of package-0: not added again
    set_energy(powercap, "intel-rapl:1", 2_100_000)   # +100 mJ
    reading = meter.energy_between(start, meter.read())
    assert reading.energy_mj == pytest.approx(350.0)


def test_rapl_counter_wraps_around_at_max_energy_range(powercap):
    meter = RaplMeter(root=str(powercap), zones="package-0")
    max_range = 262_143_328_850
    set_energy(powercap, "intel-rapl:0", max_range - 100_000)
    start = meter.read()
    set_energy(powercap, "intel-rapl:0", 400_000)  # wrapped: 100_000 to the top, 1 to 0, then 400_000
    reading = meter.energy_between(start, meter.read())
    assert reading.energy_mj == pytest.approx(500.001)
    assert counter_delta(10, 25, 100) == 15
    assert counter_delta(90, 5, 100) == 16  # 90 -> 100 (10), 100 -> 0 (1), 0 -> 5 (5)
    assert counter_delta(100, 0, 100) == 1


def test_rapl_named_zones_and_unknown_zone(powercap):
    meter = RaplMeter(root=str(powercap), zones="package-0,dram")
    start = meter.read()
    set_energy(powercap, "intel-rapl:0:2", 60_000)
    assert meter.energy_between(start, meter.read()).energy_mj == pytest.approx(50.0)
    with pytest.raises(ConfigError, match="no RAPL zone named gpu.*zones found: package-0, core, dram, package-1"):
        RaplMeter(root=str(powercap), zones="gpu").check()


def test_rapl_without_powercap_says_why(tmp_path):
    with pytest.raises(MeterUnavailable, match="no RAPL powercap zones under .*virtual machine"):
        RaplMeter(root=str(tmp_path / "none")).check()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_rapl_permission_denied_is_a_clear_message(powercap):
    (powercap / "intel-rapl:0" / "energy_uj").chmod(0o000)
    with pytest.raises(MeterUnavailable, match=r"permission denied \(the RAPL counters are root-only since Linux 5.10"):
        RaplMeter(root=str(powercap)).check()


def test_rapl_permission_denied_as_the_kernel_answers_it(powercap, monkeypatch):
    """The same message where the test runs as root (the kernel's answer to a non-root reader, simulated)."""
    real = Path.read_text

    def read_text(self, *args, **kwargs):
        if self.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", read_text)
    with pytest.raises(MeterUnavailable, match=r"intel-rapl:0/energy_uj: permission denied .*chmod o\+r"):
        RaplMeter(root=str(powercap)).check()


def test_rapl_uncertainty_is_the_counter_update_lag_at_both_ends():
    reading = counter_reading(energy_mj=2000.0, duration_s=0.1, update_ms=1.0)  # 20 W
    assert reading.uncertainty_mj == pytest.approx(2 * 20.0 * 1.0)  # 20 W x 1 ms = 20 mJ per end


def test_rapl_on_this_machine_reports_why_not_when_absent():
    if any(Path("/sys/class/powercap").glob("intel-rapl:*")):
        pytest.skip("this machine has RAPL zones")
    with pytest.raises(MeterUnavailable, match="no RAPL powercap zones"):
        RaplMeter().check()


# --- NVML -------------------------------------------------------------------
class FakeNvml(types.ModuleType):
    """The few pynvml calls the meter makes; errors are classes named like pynvml's."""

    class NVMLError(Exception):
        pass

    def __init__(self, fail=None, energy=(1000, 1600)):
        super().__init__("pynvml")
        self.fail = fail
        self.energy = list(energy)
        self.NVMLError_LibraryNotFound = type("NVMLError_LibraryNotFound", (self.NVMLError,), {})
        self.NVMLError_NotSupported = type("NVMLError_NotSupported", (self.NVMLError,), {})

    def nvmlInit(self):
        if self.fail == "library":
            raise self.NVMLError_LibraryNotFound("NVML Shared Library Not Found")

    def nvmlDeviceGetCount(self):
        return 1

    def nvmlDeviceGetHandleByIndex(self, i):
        return ("gpu", i)

    def nvmlDeviceGetName(self, handle):
        return b"NVIDIA H200"

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        if self.fail == "unsupported":
            raise self.NVMLError_NotSupported("Not Supported")
        return self.energy.pop(0) if len(self.energy) > 1 else self.energy[0]


def test_nvml_reads_the_total_energy_counter(monkeypatch):
    fake = FakeNvml(energy=(5000, 5000, 5600))
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    meter = NvmlMeter()
    assert "NVIDIA H200" in meter.check().source
    start = meter.read()
    reading = meter.energy_between(start, meter.read())
    assert reading.energy_mj == 600.0 and reading.uncertainty_mj >= 1.0


@pytest.mark.parametrize("fail,message", [
    ("library", "NVML library not found: no NVIDIA driver"),
    ("unsupported", "no total energy counter"),
])
def test_nvml_errors_are_one_clear_line(monkeypatch, fail, message):
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(fail=fail))
    with pytest.raises(MeterUnavailable, match=message):
        NvmlMeter().check()


def test_nvml_without_the_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    with pytest.raises(MeterUnavailable, match=r"pip install 'hwprof\[nvml\]'"):
        NvmlMeter().check()


def test_nvml_index_out_of_range(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml())
    with pytest.raises(MeterUnavailable, match="no GPU 3 .this machine has 1"):
        NvmlMeter(index=3).check()


# --- tegrastats -------------------------------------------------------------
@pytest.mark.parametrize("fixture,rail,watts", [
    ("nano_jp4.txt", "auto", [2.031, 3.112]),
    ("xavier_nx_jp4.txt", "auto", [3.827, 5.313]),
    ("orin_nano_jp5.txt", "auto", [4.843, 6.121]),
    ("agx_xavier_jp4.txt", "GPU+CPU+SOC+CV+VDDRQ+SYS5V", [0.311 + 0.932 + 0.155 + 1.312]),
    ("agx_orin_jp6.txt", "VDD_GPU_SOC+VDD_CPU_CV+VIN_SYS_5V0", [3.187 + 0.398 + 2.811]),
])
def test_tegrastats_lines_of_several_jetpack_versions(fixture, rail, watts):
    lines = (DATA / "tegrastats" / fixture).read_text().splitlines()
    got = [rail_power_w(parse_rails(line), rail) for line in lines]
    assert got == pytest.approx(watts)


def test_tegrastats_does_not_take_memory_for_a_rail():
    rails = parse_rails((DATA / "tegrastats" / "nano_jp4.txt").read_text().splitlines()[0])
    assert set(rails) == {"POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU"}  # not RAM 2008/3956MB, SWAP, IRAM


def test_tegrastats_board_without_input_rail_needs_rail_setting():
    rails = parse_rails((DATA / "tegrastats" / "agx_orin_jp6.txt").read_text())
    with pytest.raises(MeterError, match="no input rail .*VDD_GPU_SOC.*set rail=A\\+B"):
        rail_power_w(rails, "auto")
    with pytest.raises(MeterError, match="no rail VDD_XX"):
        rail_power_w(rails, "VDD_XX")


def fake_tool(tmp_path: Path, name: str, body: str) -> Path:
    """An executable ``name`` in a fresh bin directory (put it first on PATH)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    exe = bin_dir / name
    exe.write_text(f"#!{sys.executable}\n{body}")
    exe.chmod(0o755)
    return bin_dir


FAKE_TEGRASTATS = """
import sys, time
interval = int(sys.argv[sys.argv.index("--interval") + 1]) / 1000
line = {line!r}
while True:
    print(line, flush=True)
    time.sleep(interval)
"""


def test_tegrastats_meter_integrates_a_running_tegrastats(tmp_path, monkeypatch):
    line = (DATA / "tegrastats" / "orin_nano_jp5.txt").read_text().splitlines()[0].replace("4843mW/", "5000mW/")
    bin_dir = fake_tool(tmp_path, "tegrastats", FAKE_TEGRASTATS.format(line=line))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    meter = TegrastatsMeter(interval_ms=10)
    assert "VDD_IN" in meter.check().extra["rails"]
    with meter.session():
        time.sleep(0.1)
        start = meter.read()
        time.sleep(0.2)
        end = meter.read()
        reading = meter.energy_between(start, end)
    assert reading.energy_mj == pytest.approx(5.0 * (end - start) * 1000, rel=1e-6)  # constant 5 W
    assert reading.uncertainty_mj == pytest.approx(0.0, abs=1e-6)


def test_tegrastats_missing_is_reported(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MeterUnavailable, match="tegrastats not found on PATH .not a Jetson"):
        TegrastatsMeter().check()


# --- power traces and the CSV meter -----------------------------------------
def test_trapezoid_of_a_ramp_and_its_uncertainty():
    # power rises 0 -> 10 W over 1 s: 5 J; a zero-order hold of the samples misses part of it
    reading = integrate([0.0, 0.5, 1.0], [0.0, 5.0, 10.0], 0.0, 1.0)
    assert reading.energy_mj == pytest.approx(5000.0)
    assert reading.uncertainty_mj == pytest.approx(5000.0 - 2500.0)
    inner = integrate([0.0, 1.0], [4.0, 4.0], 0.25, 0.75)  # window between samples: interpolated ends
    assert inner.energy_mj == pytest.approx(2000.0) and inner.duration_s == pytest.approx(0.5)
    with pytest.raises(MeterError, match="does not cover the window"):
        integrate([0.0, 1.0], [1.0, 1.0], 0.5, 1.5)


def write_log(path: Path, rows, header="timestamp,watts") -> Path:
    path.write_text(header + "\n" + "".join(f"{t},{w}\n" for t, w in rows))
    return path


def test_csv_meter_aligns_the_log_by_timestamps(tmp_path):
    t0 = 1_700_000_000.0
    log = write_log(tmp_path / "p.csv", [(t0 + i * 0.1, 10.0 if i < 10 else 20.0) for i in range(30)])
    meter = CsvPowerMeter(path=str(log))
    assert "30 samples" in meter.check().source
    reading = meter.energy_between(t0 + 0.2, t0 + 0.7)  # inside the 10 W part
    assert reading.energy_mj == pytest.approx(5000.0)
    shifted = CsvPowerMeter(path=str(log), clock_offset_s=1.0)  # meter clock 1 s behind the host
    assert shifted.energy_between(t0 + 2.2, t0 + 2.7).energy_mj == pytest.approx(10000.0)


def test_csv_meter_iso_timestamps_and_named_columns(tmp_path):
    log = tmp_path / "p.csv"
    log.write_text("volts,time,power_w\n5.0,2024-01-01T00:00:00Z,2.0\n5.0,2024-01-01T00:00:01+00:00,4.0\n")
    times, watts = read_power_log(log)
    assert times == [parse_timestamp("2024-01-01T00:00:00"), parse_timestamp("2024-01-01T00:00:00") + 1.0]
    meter = CsvPowerMeter(path=str(log), time_column="time", power_column="power_w")
    assert meter.energy_between(times[0], times[1]).energy_mj == pytest.approx(3000.0)


def test_csv_meter_waits_for_the_log_to_cover_the_window_then_fails_clearly(tmp_path):
    log = write_log(tmp_path / "p.csv", [(100.0, 1.0), (101.0, 1.0)])
    meter = CsvPowerMeter(path=str(log), wait_s=0.1)
    with pytest.raises(MeterError, match="no power sample after the window's end within 0.1 s"):
        meter.energy_between(100.5, 105.0)


def test_csv_meter_bad_input(tmp_path):
    with pytest.raises(ConfigError, match="needs the power log: path="):
        CsvPowerMeter()
    with pytest.raises(MeterUnavailable, match="does not exist"):
        CsvPowerMeter(path=str(tmp_path / "missing.csv")).check()
    bad = write_log(tmp_path / "bad.csv", [(1.0, 2.0), ("yesterday", 2.0), (3.0, 2.0)])
    with pytest.raises(MeterError, match=r"bad.csv:3: cannot read time 'yesterday'"):
        read_power_log(bad)
    nopower = write_log(tmp_path / "np.csv", [(1.0, 2.0)], header="t,volts")
    with pytest.raises(MeterError, match="no power column named watts"):
        read_power_log(nopower)
    negative = write_log(tmp_path / "neg.csv", [(1.0, -2.0), (2.0, 1.0)])
    with pytest.raises(MeterError, match="power must be a finite number >= 0"):
        read_power_log(negative)


def test_csv_meter_tolerates_a_row_being_written(tmp_path):
    log = tmp_path / "p.csv"
    log.write_text("timestamp,watts\n1.0,2.0\n2.0,2.0\n3.0")
    assert read_power_log(log) == ([1.0, 2.0], [2.0, 2.0])


# --- pooling ----------------------------------------------------------------
def test_pool_energy_is_total_over_runs_with_the_visit_spread():
    visits = [(EnergyReading(100.0, 0.0, 0.1), 10), (EnergyReading(300.0, 0.0, 0.1), 20), (EnergyReading(120.0, 0.0, 0.1), 10)]
    est = pool_energy(visits)
    assert est.energy_mj == pytest.approx(520.0 / 40)
    per = [10.0, 15.0, 12.0]
    mean = sum(per) / 3
    sd = (sum((x - mean) ** 2 for x in per) / 2) ** 0.5
    assert est.ci_mj == pytest.approx(4.302653 * sd / 3 ** 0.5, rel=1e-5)  # t(0.975, 2)
    one = pool_energy([(EnergyReading(100.0, 4.0, 0.1), 10)])
    assert one.energy_mj == 10.0 and one.ci_mj == pytest.approx(0.4)  # the meter's resolution only
    assert pool_energy([]) is None
