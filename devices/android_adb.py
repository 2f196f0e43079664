"""An Android phone over adb, timed on the phone by TFLite's official ``benchmark_model``.

The artifact is pushed once under its content hash (``REMOTE_DIR/<sha256>.tflite``,
skipped when a file of the same size is there), then

    benchmark_model --graph=... --num_threads=N --use_xnnpack=true|false --num_runs=R --warmup_runs=W

runs on the phone and its output is parsed: init time, first inference,
warm-up and steady-state averages, the steady-state std/min/max and the
percentiles newer builds print (``p5 median p95``). Device model, SoC and
Android version come from ``getprop``; the CPU frequencies at the start of
each run are recorded with the measurement.

benchmark_model prints statistics, not per-run samples, so a Measurement from
this adapter has no ``samples_ms`` and its ``LatencyStats`` are filled from
what was printed: ``median_ms`` is benchmark_model's median where printed,
else its mean (the Measurement's estimator is then ``mean``, so
``latency_ms`` says what it is); ``p90_ms`` holds its p95 where printed, else
its max (an upper bound: no build prints a p90); the CI is the normal CI of
the mean (1.96 std / sqrt(count)). Every printed figure is in ``estimates``
under its own name (milliseconds).

adb is a local binary run through ``subprocess`` with a timeout; a phone that
is missing, unauthorized or unplugged mid-run is a ``DeviceUnavailable`` with
the reason. Energy meters measure the machine hwprof runs on, not the phone:
a meter attached to this adapter sees no timed visit and energy stays None.
"""

from __future__ import annotations

import math
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence

from hwprof import __version__
from hwprof.devices import Device, PreparedModel
from hwprof.errors import ConfigError, DeviceUnavailable, ModelRunError
from hwprof.protocol import STOP_MAX_RUNS, ProtocolSettings, TimingResult
from hwprof.types import (
    DeviceInfo,
    LatencyStats,
    Measurement,
    ModelArtifact,
    coerce_numbers,
)

ADB_TIMEOUT_S = 60.0  # every adb call but the benchmark itself
_GONE = ("device offline", "no devices/emulators found", "not found", "device unauthorized", "no devices found")
_STAT_KEYS = ("count", "first", "curr", "min", "max", "avg", "std", "p5", "median", "p95")
_SUMMARY = re.compile(
    r"Inference timings in us: Init: ([\d.eE+-]+), First inference: ([\d.eE+-]+), "
    r"Warmup \(avg\): ([\d.eE+-]+), Inference \(avg\): ([\d.eE+-]+)"
)
_MEMORY = re.compile(r"(?:Peak memory footprint|Memory footprint delta from the start of the tool) \(MB\): "
                     r"init=([\d.eE+-]+) overall=([\d.eE+-]+)")


@dataclass(frozen=True)
class StatLine:
    """One ``count=... first=... curr=... min=... max=... avg=... std=... [p5=... median=... p95=...]`` line (us)."""

    values: Mapping[str, float]

    @property
    def count(self) -> int:
        return int(self.values["count"])

    def get(self, key: str) -> float | None:
        return self.values.get(key)

    @classmethod
    def parse(cls, line: str) -> "StatLine":
        text = line[line.index("count="):]
        values = {k: float(v) for k, v in re.findall(r"(\w+)=([-+\d.eE]+)", text) if k in _STAT_KEYS}
        if "min" not in values and "curr" in values:  # "count=1 curr=X" or "curr=X(all same)": every run took X
            values.update({"min": values["curr"], "max": values["curr"], "avg": values["curr"], "std": 0.0})
        return cls(values)


@dataclass(frozen=True)
class BenchmarkOutput:
    """What benchmark_model printed, in microseconds (memory in MB)."""

    init_us: float
    first_inference_us: float
    warmup_avg_us: float
    inference_avg_us: float
    steady: StatLine
    warmup: StatLine | None = None
    memory_mb: Mapping[str, float] = field(default_factory=dict)

    def estimates_ms(self) -> dict[str, float]:
        """Every printed latency figure in ms, under its own name."""
        out = {"mean": self.inference_avg_us / 1000, "init": self.init_us / 1000,
               "first_inference": self.first_inference_us / 1000, "warmup_mean": self.warmup_avg_us / 1000}
        for key in ("min", "max", "std", "p5", "median", "p95"):
            value = self.steady.get(key)
            if value is not None:
                out[key] = value / 1000
        return out

    def stats(self) -> LatencyStats:
        s = self.steady
        n = s.count
        mean, std = self.inference_avg_us / 1000, (s.get("std") or 0.0) / 1000
        median = s.get("median")
        p95 = s.get("p95")
        return LatencyStats(
            median_ms=(median / 1000) if median is not None else mean,
            mean_ms=mean,
            p90_ms=(p95 if p95 is not None else s.values["max"]) / 1000,
            std_ms=std,
            min_ms=s.values["min"] / 1000,
            max_ms=s.values["max"] / 1000,
            ci_half_width_ms=1.96 * std / math.sqrt(n) if n > 0 else math.inf,
            cv=std / mean if mean > 0 else 0.0,
            n_runs=n,
        )


def parse_benchmark_output(text: str) -> BenchmarkOutput:
    """Parse benchmark_model's log (with or without ``INFO:``/logcat prefixes); ModelRunError when it failed."""
    summary = _SUMMARY.search(text)
    stat_lines = [line for line in text.splitlines() if re.search(r"\bcount=\d+", line)]
    if summary is None or not stat_lines:
        errors = [line.strip() for line in text.splitlines() if re.search(r"error|failed|cannot|abort", line, re.I)]
        last = errors[-1] if errors else (text.strip().splitlines() or ["no output"])[-1]
        raise ModelRunError(f"benchmark_model printed no timings: {last[:200]}")
    memory = _MEMORY.search(text)
    return BenchmarkOutput(
        *(float(x) for x in summary.groups()),
        steady=StatLine.parse(stat_lines[-1]),
        warmup=StatLine.parse(stat_lines[-2]) if len(stat_lines) >= 2 else None,
        memory_mb={"init": float(memory.group(1)), "overall": float(memory.group(2))} if memory else {},
    )


def parse_getprop(text: str) -> dict[str, str]:
    """``[key]: [value]`` lines of ``adb shell getprop``."""
    return dict(re.findall(r"^\[([^\]]+)\]: \[(.*)\]\s*$", text, re.M))


def parse_adb_devices(text: str) -> list[tuple[str, str]]:
    """(serial, state) of each line of ``adb devices`` after its header."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and not line.startswith(("List of devices", "*")):
            out.append((parts[0], parts[1]))
    return out


def count_cpus(possible: str) -> int:
    """CPUs in a kernel range list such as ``0-7`` or ``0-3,6``."""
    total = 0
    for part in possible.strip().split(","):
        lo, _, hi = part.partition("-")
        total += int(hi or lo) - int(lo) + 1
    return total


@dataclass(frozen=True)
class BenchmarkTiming(TimingResult):
    """A TimingResult from benchmark_model's statistics, with everything it printed."""

    output: BenchmarkOutput | None = None


class _OnPhone:
    """One inference of a pushed model on the phone (benchmark_model with one run and no warm-up)."""

    def __init__(self, device: "AndroidAdbDevice", remote_path: str) -> None:
        self.device = device
        self.remote_path = remote_path

    def __call__(self) -> BenchmarkOutput:
        return self.device.benchmark(self.remote_path, num_runs=1, warmup_runs=0)


class AndroidAdbDevice(Device):
    """An Android phone over adb; the official TFLite benchmark_model times on the phone."""

    name = "android-adb"
    description = "Android phone over adb (TFLite benchmark_model)"
    supported_formats = ("tflite",)
    supported_precisions = ("fp32", "int8")  # benchmark_model runs quantized .tflite models as they are
    default_settings = {
        "serial": "", "adb": "adb", "benchmark_binary": "/data/local/tmp/benchmark_model",
        "remote_dir": "/data/local/tmp/hwprof", "num_threads": 4, "use_xnnpack": True, "num_runs": 50,
        "warmup_runs": 10, "timeout_s": 600.0, "record_cpu_freq": True,
    }

    def validate_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        coerce_numbers("android-adb", settings, {"num_threads": (int, 1), "num_runs": (int, 1), "warmup_runs": (int, 0),
                                                 "timeout_s": (float, 0)})
        for key in ("use_xnnpack", "record_cpu_freq"):
            value = settings[key]
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ConfigError(f"android-adb {key} must be true or false, got {value!r}")
                value = value.lower() in ("true", "1")
            settings[key] = bool(value)
        for key in ("benchmark_binary", "remote_dir"):
            if not str(settings[key]).startswith("/"):
                raise ConfigError(f"android-adb {key} must be an absolute path on the phone, got {settings[key]!r}")
        return settings

    # --- adb -----------------------------------------------------------------
    def _adb_exe(self) -> str:
        exe = shutil.which(self.settings["adb"])
        if exe is None:
            raise DeviceUnavailable(
                f"adb not found ({self.settings['adb']!r} is not on PATH): install Android platform-tools"
            )
        return exe

    def adb(self, *args: str, timeout_s: float = ADB_TIMEOUT_S, serial: bool = True) -> str:
        """Run ``adb [-s SERIAL] ARGS`` and return its stdout; a gone phone is DeviceUnavailable."""
        cmd = [self._adb_exe()]
        if serial:
            cmd += ["-s", self.serial()]
        cmd += list(args)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise ModelRunError(f"`{shlex.join(cmd[1:])}` did not finish within {timeout_s:g} s") from None
        except OSError as exc:
            raise DeviceUnavailable(f"cannot run adb: {exc.strerror or exc}") from None
        if proc.returncode != 0:
            message = (proc.stderr.strip() or proc.stdout.strip() or f"exit code {proc.returncode}").splitlines()[-1]
            if any(marker in message for marker in _GONE):
                raise DeviceUnavailable(f"the phone is not reachable over adb ({message}): is it plugged in and authorized?")
            raise ModelRunError(f"`adb {shlex.join(list(args))}` failed: {message}")
        return proc.stdout

    def serial(self) -> str:
        """The phone to talk to: the ``serial`` setting, else the only device adb lists."""
        if self.settings["serial"]:
            return str(self.settings["serial"])
        listed = parse_adb_devices(self.adb("devices", serial=False))
        ready = [s for s, state in listed if state == "device"]
        if len(ready) == 1:
            self.settings["serial"] = ready[0]
            return ready[0]
        if len(ready) > 1:
            raise DeviceUnavailable(f"adb lists several phones ({', '.join(ready)}): choose one with --set serial=SERIAL")
        unauthorized = [s for s, state in listed if state == "unauthorized"]
        if unauthorized:
            raise DeviceUnavailable(f"phone {unauthorized[0]} is unauthorized: accept the USB debugging prompt on it")
        others = ", ".join(f"{s} ({state})" for s, state in listed)
        raise DeviceUnavailable(f"no Android device connected (adb devices lists {others or 'none'}); enable USB debugging")

    def shell(self, command: str, timeout_s: float = ADB_TIMEOUT_S) -> str:
        return self.adb("shell", command, timeout_s=timeout_s)

    # --- the Device contract ---------------------------------------------------
    def properties(self) -> dict[str, str]:
        props = getattr(self, "_props", None)
        if props is None:
            props = self._props = parse_getprop(self.shell("getprop"))
        return props

    def check(self) -> DeviceInfo:
        props = self.properties()
        binary = self.settings["benchmark_binary"]
        found = self.shell(f"test -x {shlex.quote(binary)} && sha256sum {shlex.quote(binary)} || echo missing").strip()
        if found == "missing" or not found:
            raise DeviceUnavailable(
                f"benchmark_model not found at {binary} on the phone: adb push benchmark_model {binary} && "
                f"adb shell chmod +x {binary} (TFLite's prebuilt android_aarch64_benchmark_model)"
            )
        cores = count_cpus(self.shell("cat /sys/devices/system/cpu/possible"))
        phone = self.phone_metadata(props)
        return DeviceInfo(
            name=self.name,
            runtime="tflite-benchmark_model",
            runtime_version=f"sha256:{found.split()[0][:16]}",
            cpu_model=phone["soc"],
            cores_logical=cores,
            settings=dict(self.settings),
            extra=phone,
        )

    def phone_metadata(self, props: Mapping[str, str] | None = None) -> dict[str, Any]:
        props = props if props is not None else self.properties()
        soc = " ".join(p for p in (props.get("ro.soc.manufacturer", ""), props.get("ro.soc.model", "")) if p)
        return {
            "serial": self.serial(),
            "manufacturer": props.get("ro.product.manufacturer", ""),
            "model": props.get("ro.product.model", ""),
            "soc": soc or props.get("ro.board.platform") or props.get("ro.hardware", "unknown"),
            "android_version": props.get("ro.build.version.release", ""),
            "sdk": props.get("ro.build.version.sdk", ""),
            "abi": props.get("ro.product.cpu.abi", ""),
            "build": props.get("ro.build.fingerprint", ""),
        }

    def cpu_frequencies_khz(self) -> list[int]:
        """Current frequency of each online CPU (kHz), in CPU order."""
        text = self.shell("cat /sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_cur_freq 2>/dev/null; true")
        return [int(x) for x in text.split() if x.isdigit()]

    def host_metadata(self) -> dict[str, Any]:
        """The phone's, not the driving machine's: the phone is where the model runs."""
        meta: dict[str, Any] = {"kind": "android", **self.phone_metadata(), "hwprof_version": __version__}
        if self.settings["record_cpu_freq"]:
            meta["cpu_cur_freq_khz"] = self.cpu_frequencies_khz()
        return meta

    def remote_path(self, artifact: ModelArtifact) -> str:
        return f"{self.settings['remote_dir']}/{artifact.sha256}.tflite"

    def prepare(self, artifact: ModelArtifact) -> PreparedModel:
        """Push the model under its content hash (skipped when the phone has it) and return one on-phone inference."""
        remote = self.remote_path(artifact)
        size = self.shell(f"stat -c %s {shlex.quote(remote)} 2>/dev/null || echo none").strip()
        if size != str(artifact.size_bytes):
            self.shell(f"mkdir -p {shlex.quote(self.settings['remote_dir'])}")
            self.adb("push", artifact.path, remote, timeout_s=self.settings["timeout_s"])
        return PreparedModel(artifact, _OnPhone(self, remote), state=remote)

    def benchmark_command(self, remote_path: str, num_runs: int | None = None, warmup_runs: int | None = None) -> str:
        s = self.settings
        args = [
            s["benchmark_binary"],
            f"--graph={remote_path}",
            f"--num_threads={s['num_threads']}",
            f"--use_xnnpack={'true' if s['use_xnnpack'] else 'false'}",
            f"--num_runs={s['num_runs'] if num_runs is None else num_runs}",
            f"--warmup_runs={s['warmup_runs'] if warmup_runs is None else warmup_runs}",
        ]
        return shlex.join(args)

    def benchmark(self, remote_path: str, num_runs: int | None = None, warmup_runs: int | None = None) -> BenchmarkOutput:
        """Run benchmark_model on a pushed model and parse what it printed (stdout and stderr alike)."""
        command = self.benchmark_command(remote_path, num_runs, warmup_runs) + " 2>&1"
        return parse_benchmark_output(self.shell(command, timeout_s=self.settings["timeout_s"]))

    def time(self, fn: Callable[[], object], protocol: ProtocolSettings, observer: Any = None) -> BenchmarkTiming:
        """Timed on the phone: benchmark_model's own warm-up and runs (the host's protocol does not apply)."""
        if not isinstance(fn, _OnPhone):
            raise ConfigError("android-adb times models it prepared itself (Device.prepare)")
        out = self.benchmark(fn.remote_path)
        stats = out.stats()
        warmup = out.warmup.count if out.warmup is not None else self.settings["warmup_runs"]
        return BenchmarkTiming(
            samples_ms=(), stats=stats, n_warmup=warmup, warmup_settled=True, stop_reason=STOP_MAX_RUNS,
            unstable=stats.cv > protocol.unstable_rel, output=out,
        )

    def time_many(self, fns: Sequence[Callable[[], object]], protocol: ProtocolSettings, observer: Any = None) -> list[TimingResult]:
        return [self.time(fn, protocol) for fn in fns]

    def to_measurement(
        self, artifact: ModelArtifact, result: TimingResult, protocol: ProtocolSettings, host: Mapping[str, Any]
    ) -> Measurement:
        m = super().to_measurement(artifact, result, protocol, host)
        output = getattr(result, "output", None)
        if output is None:
            return m
        estimates = output.estimates_ms()
        return replace(m, estimates=estimates, estimator="median" if "median" in estimates else "mean")
