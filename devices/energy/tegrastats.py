"""Jetson power from ``tegrastats`` output, integrated over each window.

tegrastats prints one line per interval with the power rails as
``NAME current/average``: plain milliwatts up to JetPack 4
(``POM_5V_IN 2031/2031`` on a Nano, ``VDD_IN 3827/3827`` on a Xavier NX) and
``NAME 4843mW/4843mW`` from JetPack 5 on (Orin; lines then start with a date).
The meter runs ``tegrastats --interval MS``, stamps each line with the
wall-clock time it arrived and integrates the current value of the chosen rail
(``power_trace``). The total input rail is ``VDD_IN`` (Xavier NX, Orin NX/Nano)
or ``POM_5V_IN`` (Nano); boards without one (AGX Xavier, AGX Orin) need
``rail=A+B+...``, the sum of the rails to count.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import threading
import time
from typing import Any, Mapping

from devices.energy.power_trace import integrate, wait_until_covered
from hwprof.meters import EnergyReading, Meter, MeterError, MeterInfo, MeterUnavailable
from hwprof.types import coerce_numbers

TOTAL_RAILS = ("VDD_IN", "POM_5V_IN")  # the board's input power, in the order they are looked for
# A rail: an upper-case name, then current/average in mW, with or without the unit (not "RAM 2008/3956MB").
_RAIL = re.compile(r"(?<!\S)([A-Z][A-Z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?(?=\s|$)")


def parse_rails(line: str) -> dict[str, float]:
    """Current power of every rail on one tegrastats line, in watts ({} when the line has none)."""
    return {name: int(current) / 1000.0 for name, current, _average in _RAIL.findall(line)}


def rail_power_w(rails: Mapping[str, float], rail: str) -> float:
    """Power of ``rail`` (``auto``: the board's input rail; ``A+B``: a sum) from one line's rails."""
    if rail == "auto":
        for name in TOTAL_RAILS:
            if name in rails:
                return rails[name]
        raise MeterError(
            f"tegrastats shows no input rail ({' or '.join(TOTAL_RAILS)}); rails seen: {', '.join(rails) or 'none'}; "
            "set rail=A+B+... to the rails to add up"
        )
    names = [n.strip() for n in rail.split("+")]
    missing = [n for n in names if n not in rails]
    if missing:
        raise MeterError(f"tegrastats shows no rail {', '.join(missing)}; rails seen: {', '.join(rails) or 'none'}")
    return sum(rails[n] for n in names)


class TegrastatsMeter(Meter):
    """Jetson board power sampled by tegrastats every ``interval_ms`` and integrated over each window."""

    name = "tegrastats"
    description = "Jetson power rails from tegrastats"
    default_settings = {"command": "tegrastats", "interval_ms": 20, "rail": "auto", "wait_s": 5.0}

    def validate_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        return coerce_numbers("tegrastats", settings, {"interval_ms": (int, 1), "wait_s": (float, 0)})

    def _command(self) -> list[str]:
        exe = shutil.which(self.settings["command"])
        if exe is None:
            raise MeterUnavailable(
                f"{self.settings['command']} not found on PATH (not a Jetson, or JetPack's tegrastats is not installed)"
            )
        return [exe, "--interval", str(self.settings["interval_ms"])]

    def check(self) -> MeterInfo:
        cmd = self._command()
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        except OSError as exc:
            raise MeterUnavailable(f"cannot run {cmd[0]}: {exc.strerror or exc}") from None
        with proc:
            try:
                line = _first_line_with_rails(proc, timeout_s=self.settings["wait_s"])
            finally:
                _stop(proc)
        if line is None:
            raise MeterUnavailable(f"{cmd[0]} printed no power rails within {self.settings['wait_s']:g} s")
        rails = parse_rails(line)
        try:
            rail_power_w(rails, self.settings["rail"])
        except MeterError as exc:
            raise MeterUnavailable(str(exc)) from None
        return MeterInfo(self.name, f"tegrastats rail {self.settings['rail']} every {self.settings['interval_ms']} ms",
                         {"rails": sorted(rails)})

    def open(self) -> None:
        self._times: list[float] = []
        self._watts: list[float] = []
        self._error: str | None = None
        try:
            self._proc = subprocess.Popen(self._command(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        except OSError as exc:
            raise MeterUnavailable(f"cannot run tegrastats: {exc.strerror or exc}") from None
        self._reader = threading.Thread(target=self._read_lines, name="tegrastats-reader", daemon=True)
        self._reader.start()

    def _read_lines(self) -> None:
        assert self._proc.stdout is not None
        with contextlib.suppress(ValueError, OSError):  # the pipe closed under us: the meter was closed
            self._read_from(self._proc.stdout)

    def _read_from(self, stream: Any) -> None:
        for line in stream:
            rails = parse_rails(line)
            if not rails:
                continue
            try:
                watts = rail_power_w(rails, self.settings["rail"])
            except MeterError as exc:
                self._error = str(exc)
                return
            self._watts.append(watts)
            self._times.append(time.time())  # appended last: a reader never sees a time without its power

    def close(self) -> None:
        proc = getattr(self, "_proc", None)
        if proc is not None:
            _stop(proc)
            self._reader.join(timeout=2.0)  # ends at the output's end
            if proc.stdout is not None:
                proc.stdout.close()
            self._proc = None

    def read(self) -> float:
        return time.time()

    def energy_between(self, start: Any, end: Any) -> EnergyReading:
        if not hasattr(self, "_times"):
            raise MeterError("the tegrastats meter was read outside a measurement (open() was not called)")

        def last() -> float | None:
            if self._error:
                raise MeterError(self._error)
            return self._times[-1] if self._times else None

        wait_until_covered(last, float(end), self.settings["wait_s"], "tegrastats")
        n = len(self._times)
        return integrate(self._times[:n], self._watts[:n], float(start), float(end))


def _first_line_with_rails(proc: subprocess.Popen, timeout_s: float) -> str | None:
    """The first output line that shows power rails, or None after ``timeout_s``/end of output."""
    found: list[str] = []

    def scan() -> None:
        assert proc.stdout is not None
        with contextlib.suppress(ValueError, OSError):  # the pipe closed under us: the process was stopped
            for line in proc.stdout:
                if parse_rails(line):
                    found.append(line)
                    return

    reader = threading.Thread(target=scan, daemon=True)
    reader.start()
    reader.join(timeout_s)
    return found[0] if found else None


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
