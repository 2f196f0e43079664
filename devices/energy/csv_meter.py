"""An external power meter's CSV log (timestamp, watts), aligned to each window by its timestamps.

Many USB and wall-socket meters (and their logging tools) write one row per
sample. The log is read when a window's energy is asked for, waiting up to
``wait_s`` for a sample at or after the window's end (the meter may still be
writing), and integrated with the trapezoidal rule (``power_trace``).

Timestamps are Unix seconds or ISO 8601 (a time without a zone is taken as
UTC); ``clock_offset_s`` is added to them to put the meter's clock on this
machine's (meter clock + offset = host clock). The first row is a header;
``time_column`` and ``power_column`` name the columns (default: the first
column named like a time, else the first column, and the first column named
like watts or power).
"""

from __future__ import annotations

import csv
import datetime as _dt
import math
import time
from pathlib import Path
from typing import Any

from devices.energy.power_trace import integrate, wait_until_covered
from hwprof.errors import ConfigError
from hwprof.meters import EnergyReading, Meter, MeterError, MeterInfo, MeterUnavailable
from hwprof.types import coerce_numbers

POWER_NAMES = ("watts", "power_w", "power", "w")
TIME_NAMES = ("timestamp", "time", "unix_time", "datetime", "t")  # else the first column


def parse_timestamp(text: str) -> float:
    """Unix seconds from a number or an ISO 8601 time (UTC when it names no zone)."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(value):
            return value
        raise ValueError(f"timestamp {text!r} is not finite")
    stamp = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=_dt.timezone.utc)
    return stamp.timestamp()


def read_power_log(path: Path, time_column: str = "", power_column: str = "") -> tuple[list[float], list[float]]:
    """(Unix times, watts) of a power log, sorted by time; MeterError names the first bad row."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise MeterError(f"cannot read the power log {path}: {exc.strerror or exc}") from None
    if not rows:
        raise MeterError(f"the power log {path} is empty (expected a header row, then timestamp,watts rows)")
    header = [h.strip() for h in rows[0]]
    t_col = _column(header, time_column, TIME_NAMES, path, "time")
    p_col = _column(header, power_column, POWER_NAMES, path, "power")
    times: list[float] = []
    watts: list[float] = []
    for lineno, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(t_col, p_col):
            if lineno == len(rows):  # the meter is writing this row right now
                break
            raise MeterError(f"{path}:{lineno}: expected {len(header)} columns, got {len(row)}")
        try:
            t, w = parse_timestamp(row[t_col]), float(row[p_col])
        except ValueError:
            if lineno == len(rows):
                break
            raise MeterError(f"{path}:{lineno}: cannot read time {row[t_col]!r} / watts {row[p_col]!r}") from None
        if not math.isfinite(w) or w < 0:
            raise MeterError(f"{path}:{lineno}: power must be a finite number >= 0 W, got {row[p_col]!r}")
        times.append(t)
        watts.append(w)
    order = sorted(range(len(times)), key=times.__getitem__)
    return [times[i] for i in order], [watts[i] for i in order]


def _column(header: list[str], wanted: str, guesses: tuple[str, ...], path: Path, what: str) -> int:
    if wanted:
        if wanted not in header:
            raise MeterError(f"the power log {path} has no column {wanted!r}; columns: {', '.join(header)}")
        return header.index(wanted)
    lowered = [h.lower() for h in header]
    for guess in guesses:
        if guess in lowered:
            return lowered.index(guess)
    if what == "time":
        return 0
    raise MeterError(
        f"the power log {path} has no {what} column named {' or '.join(guesses)}; columns: {', '.join(header)} "
        "(set power_column=NAME)"
    )


class CsvPowerMeter(Meter):
    """Energy from an external power meter's CSV log: ``path=LOG.csv`` (timestamp, watts per row)."""

    name = "csv"
    description = "external power meter's CSV log (timestamp, watts)"
    default_settings = {"path": "", "time_column": "", "power_column": "", "clock_offset_s": 0.0, "wait_s": 5.0}

    def validate_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        if not settings["path"]:
            raise ConfigError("the csv meter needs the power log: path=LOG.csv (--meter-set path=LOG.csv)")
        settings["path"] = str(settings["path"])
        return coerce_numbers("csv meter", settings, {"clock_offset_s": (float, -math.inf), "wait_s": (float, 0)})

    def _log(self) -> tuple[list[float], list[float]]:
        """The log on the host's clock; parsed again only when the file changed (one window after another)."""
        path = Path(self.settings["path"])
        try:
            st = path.stat()
        except OSError as exc:
            raise MeterError(f"cannot read the power log {path}: {exc.strerror or exc}") from None
        key = (st.st_size, st.st_mtime_ns)
        cached = getattr(self, "_cache", None)
        if cached is None or cached[0] != key:
            times, watts = read_power_log(path, self.settings["time_column"], self.settings["power_column"])
            offset = self.settings["clock_offset_s"]
            self._cache = cached = (key, ([t + offset for t in times], watts))
        return cached[1]

    def check(self) -> MeterInfo:
        path = Path(self.settings["path"])
        if not path.is_file():
            raise MeterUnavailable(f"the power log {path} does not exist (start the meter's logger first)")
        try:
            times, _ = self._log()
        except MeterError as exc:
            raise MeterUnavailable(str(exc)) from None
        return MeterInfo(self.name, f"power log {path} ({len(times)} samples so far)", {"path": str(path)})

    def read(self) -> float:
        return time.time()

    def energy_between(self, start: Any, end: Any) -> EnergyReading:
        trace: dict[str, Any] = {}

        def last() -> float | None:
            trace["log"] = self._log()
            times = trace["log"][0]
            return times[-1] if times else None

        wait_until_covered(last, float(end), self.settings["wait_s"], f"the power log {self.settings['path']}")
        times, watts = trace["log"]
        return integrate(times, watts, float(start), float(end))
