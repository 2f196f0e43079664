"""Whether the process that started a run still lives: a run marked ``running`` may be live or a leftover.

Two benchmarks sharing cores corrupt each other's figures, so a profile run
refuses to start beside a live one. A run records the process that drives it
(``driver_pid``, ``driver_hostname`` and the process's start time, so a reused
pid is not taken for the original) in its host JSON; a process that died
without finishing its run (SIGKILL, power loss) leaves it ``running``, and
:func:`driver_state` tells such a leftover from a live run. Linux knows a
process's start time (``/proc``); elsewhere the pid alone decides.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any, Literal, Mapping

PROC_ROOT = Path("/proc")

DriverState = Literal["alive", "dead", "unknown"]


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (which may hold spaces), or None."""
    try:
        text = (PROC_ROOT / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def process_start(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (Linux), or None where unknown."""
    fields = _stat_fields(pid)
    try:
        return int(fields[19]) if fields else None  # field 22 of stat; the list starts at field 3
    except (IndexError, ValueError):
        return None


def driver_identity() -> dict[str, Any]:
    """What a run records about the process driving it."""
    pid = os.getpid()
    return {"driver_pid": pid, "driver_hostname": socket.gethostname(), "driver_start": process_start(pid)}


def driver_state(host: Mapping[str, Any]) -> DriverState:
    """``alive``, ``dead`` (gone, a zombie, or its pid now names another process) or ``unknown`` (another host).

    Runs recorded before the driver fields existed fall back to the host's
    ``pid`` (the in-process worker, which is the driver) without a start time.
    """
    pid = host.get("driver_pid", host.get("pid"))
    hostname = host.get("driver_hostname", host.get("hostname"))
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or hostname != socket.gethostname():
        return "unknown"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "dead"
    except PermissionError:  # exists, owned by another user
        pass
    except OSError:
        return "unknown"
    fields = _stat_fields(pid)
    if fields and fields[0] == "Z":
        return "dead"
    recorded = host.get("driver_start")
    if isinstance(recorded, int) and fields is not None and process_start(pid) != recorded:
        return "dead"
    return "alive"
