"""A meter attached to a device: energy of the same repetitions as the latency, through every path."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import tomllib

from hwprof import registry
from hwprof.cli.main import main
from hwprof.devices import Device, PreparedModel
from hwprof.meters import (
    EnergyReading,
    Meter,
    MeterInfo,
    MeterUnavailable,
    get_meter,
    meter_status,
)
from hwprof.protocol import MeasurementInterrupted, ProtocolSettings
from hwprof.types import DeviceInfo, InputSpec, Measurement, ModelArtifact
from hwprof.worker import WorkRequest, run_in_process

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = ProtocolSettings(min_runs=5, max_runs=60, max_time_s=0.5, rounds=3, max_rounds=3, visit_runs=5,
                            min_warmup=3, max_warmup=6, warmup_window=2)


class CountingMeter(Meter):
    """A counter that the toy models advance themselves: model i costs ``(i + 1) * 2`` mJ per call."""

    name = "counting"
    default_settings = {"fail": False}

    def __init__(self, **settings):
        super().__init__(**settings)
        self.counter_mj = 0.0
        self.opened = self.closed = 0

    def check(self):
        if self.settings["fail"]:
            raise MeterUnavailable("counting meter: told to fail")
        return MeterInfo(self.name, "a test counter")

    def open(self):
        self.opened += 1

    def close(self):
        self.closed += 1

    def read(self):
        return self.counter_mj

    def energy_between(self, start, end):
        return EnergyReading(end - start, 0.5, 0.0)


class ToyDevice(Device):
    name = "toy-energy"
    supported_formats = ("toy",)
    default_settings = {"interrupt_at_call": -1}

    def __init__(self, **settings):
        super().__init__(**settings)
        self.calls = 0

    def check(self):
        return DeviceInfo(self.name, "toy", "1", "test-cpu", 1, settings=dict(self.settings))

    def prepare(self, artifact):
        cost_mj = (int(artifact.arch_id[-1]) + 1) * 2.0

        def run():
            self.calls += 1
            if self.calls == self.settings["interrupt_at_call"]:
                raise KeyboardInterrupt
            if self.meter is not None:
                self.meter.counter_mj += cost_mj

        return PreparedModel(artifact, run)


def artifacts(tmp_path, n=2):
    out = []
    for i in range(n):
        path = tmp_path / f"m{i}.toy"
        path.write_bytes(f"model {i}".encode())
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        out.append(ModelArtifact(str(path), "toy", digest, path.stat().st_size, f"arch{i}", (InputSpec("x", (1,)),)))
    return out


def test_energy_is_per_timed_inference_and_excludes_warm_up(tmp_path):
    dev = ToyDevice()
    meter = CountingMeter()
    dev.use_meter(meter)
    ms = dev.measure_many(artifacts(tmp_path), PROTOCOL)
    # warm-up calls also advance the counter; energy per *timed* run is exact only if they are left out
    assert [m.energy_mj for m in ms] == pytest.approx([2.0, 4.0])
    assert all(m.meter == "counting" for m in ms)
    assert all(m.energy_ci_mj is not None and 0 < m.energy_ci_mj < 0.5 for m in ms)  # resolution / runs
    assert sum(m.n_warmup for m in ms) > 0
    assert meter.opened == meter.closed == 1
    single = dev.measure(artifacts(tmp_path, 1)[0], ProtocolSettings(min_runs=5, max_runs=20, max_time_s=0.2))
    assert single.energy_mj == pytest.approx(2.0)


def test_without_a_meter_energy_is_none_not_zero(tmp_path):
    ms = ToyDevice().measure_many(artifacts(tmp_path), PROTOCOL)
    assert all(m.energy_mj is None and m.energy_ci_mj is None and m.meter is None for m in ms)


def test_energy_survives_json_and_an_interrupt_keeps_it(tmp_path):
    dev = ToyDevice(interrupt_at_call=10_000)
    dev.use_meter(CountingMeter())
    full = dev.measure_many(artifacts(tmp_path), PROTOCOL)
    n_calls = dev.calls
    assert Measurement.from_json(full[0].to_json()) == full[0]
    dev = ToyDevice(interrupt_at_call=n_calls - 2)  # cut the last visit short: completed visits keep their energy
    dev.use_meter(CountingMeter())
    with pytest.raises(MeasurementInterrupted) as info:
        dev.measure_many(artifacts(tmp_path), PROTOCOL)
    kept = [m for m in info.value.partial if m is not None]
    assert kept and all(m.energy_mj == pytest.approx(2.0 * (int(m.arch_id[-1]) + 1)) for m in kept)


def test_a_failing_meter_fails_before_measuring(tmp_path):
    dev = ToyDevice()
    with pytest.raises(MeterUnavailable, match="told to fail"):
        dev.use_meter(CountingMeter(fail=True))
    assert dev.meter is None and dev.calls == 0


@pytest.fixture
def counting_registered():
    registry.register("device", "toy-energy", ToyDevice)
    registry.register("meter", "counting", CountingMeter)
    yield
    registry.unregister("device", "toy-energy")
    registry.unregister("meter", "counting")


def test_the_worker_attaches_a_meter_by_name(tmp_path, counting_registered):
    request = WorkRequest("toy-energy", {}, tuple(artifacts(tmp_path)), PROTOCOL, meter="counting")
    assert WorkRequest.from_json(request.to_json()) == request
    result = run_in_process(request)
    assert [m.energy_mj for m in result.measurements] == pytest.approx([2.0, 4.0])
    plain = run_in_process(WorkRequest("toy-energy", {}, tuple(artifacts(tmp_path)), PROTOCOL))
    assert all(m.energy_mj is None for m in plain.measurements)


def test_a_worker_request_with_a_bad_meter_is_refused():
    from hwprof.errors import ConfigError

    with pytest.raises(ConfigError, match="'meter' must be a meter name or null"):
        WorkRequest.from_json({"device": "x", "artifacts": [], "op": "describe", "meter": 3})


# --- built-in meters: declared, listed, refused clearly where absent -----------
def declared_meters() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return data["project"]["entry-points"]["hwprof.meters"]


@pytest.fixture
def builtin_meters():
    """The pyproject's meters, also where the installed entry points predate them."""
    added = [n for n in declared_meters() if n not in registry.names("meter")]
    for name in added:
        registry.register("meter", name, declared_meters()[name])
    yield
    for name in added:
        registry.unregister("meter", name)


def test_pyproject_declares_every_builtin_meter(builtin_meters):
    assert set(declared_meters()) == {"rapl", "nvml", "tegrastats", "csv"}
    for name in declared_meters():
        assert issubclass(registry.load("meter", name), Meter) and registry.load("meter", name).name == name


def test_meter_status_says_why_each_meter_is_unusable_here(builtin_meters):
    rows = {name: (usable, reason) for name, usable, reason in meter_status()}
    assert set(declared_meters()) <= set(rows)
    assert all(reason for _, reason in rows.values())
    assert rows["csv"] == (False, "the csv meter needs the power log: path=LOG.csv (--meter-set path=LOG.csv)")
    if not any(Path("/sys/class/powercap").glob("intel-rapl:*")):
        assert rows["rapl"][0] is False and "no RAPL powercap zones" in rows["rapl"][1]


def test_profile_with_an_unusable_meter_fails_before_measuring(tmp_path, capsys, builtin_meters):
    try:
        get_meter("rapl").check()
        pytest.skip("RAPL is readable on this machine")
    except MeterUnavailable:
        pass
    db = tmp_path / "h.db"
    code = main(["profile", "-n", "1", "--db", str(db), "--meter", "rapl"])
    _, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1 and "RAPL" in lines[0] and "Traceback" not in err
    assert not db.exists()  # nothing measured, no store created
    code = main(["profile", "-n", "1", "--db", str(db), "--meter-set", "path=x.csv"])
    assert code == 1 and "--meter-set needs --meter" in capsys.readouterr().err


class ConstantPowerMeter(Meter):
    """10 W, all the time: the energy of a window is 10 W x its length."""

    name = "constant-10w"

    def check(self):
        return MeterInfo(self.name, "10 W")

    def read(self):
        import time

        return time.perf_counter()

    def energy_between(self, start, end):
        return EnergyReading(10.0 * (end - start) * 1000.0, 0.0, end - start)


@pytest.mark.slow  # exports two NB201 networks (~6 s on a loaded 2-core host)
def test_profile_stores_energy_of_the_timed_runs(tmp_path, capsys):
    import sqlite3

    registry.register("meter", "constant-10w", ConstantPowerMeter)
    try:
        db = tmp_path / "h.db"
        code = main(["profile", "-n", "2", "--seed", "1", "--db", str(db), "--meter", "constant-10w", "--min-runs", "5",
                     "--max-runs", "20", "--max-time-s", "0.3", "--target-ci", "0.05", "--drift-every", "0",
                     "--no-calibrate"])
        assert code == 0, capsys.readouterr().err
    finally:
        registry.unregister("meter", "constant-10w")
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT energy_mj, meter, mean_ms FROM measurements").fetchall()
    assert len(rows) == 2
    for energy_mj, meter, mean_ms in rows:
        # 10 W x the time of the timed loop / its runs: 10 x the mean latency plus the loop's own overhead
        assert meter == "constant-10w" and 10.0 * mean_ms <= energy_mj < 10.0 * mean_ms * 1.5


def test_a_meter_for_an_unreachable_remote_device_is_one_line_and_no_store(tmp_path, capsys):
    """The meter is read where the model runs, so it is checked there first; a host that does not answer
    fails that check before a store is created (the meter itself working remotely: tests/hwprof/test_remote_ssh.py)."""
    from hwprof.testing_sshd import free_port

    key = tmp_path / "id"
    key.write_text("never used: nothing listens on the port")
    config = tmp_path / "hwprof.toml"
    config.write_text(f'[devices.lab]\ntype = "ssh"\nhost = "127.0.0.1"\nport = {free_port()}\nkey = "{key}"\n'
                      f'device = "ort-cpu"\nknown_hosts = "{tmp_path / "kh"}"\n')
    db = tmp_path / "h.db"
    code = main(["profile", "-n", "1", "--db", str(db), "--device", "lab", "--config", str(config), "--meter", "rapl"])
    err = capsys.readouterr().err
    assert code == 1 and "meter 'rapl' on lab" in err and len(err.strip().splitlines()) == 1
    assert not db.exists()
    # a meter known here with wrong settings is said as such, before any connection is tried
    code = main(["profile", "-n", "1", "--db", str(db), "--device", "lab", "--config", str(config), "--meter", "csv"])
    err = capsys.readouterr().err
    assert code == 1 and "the csv meter needs the power log" in err and len(err.strip().splitlines()) == 1
    assert not db.exists()
