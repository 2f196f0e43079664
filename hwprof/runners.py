"""Where the worker runs: in this process (default) or in a fresh subprocess.

Both speak the worker's JSON (:mod:`hwprof.worker`), so what the profiler
stores is exactly what a remote worker (SSH, Ray: the fleet issue) would send
back: an in-process run serialises its reply and reads it back too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from abc import ABC, abstractmethod
from typing import Any, Sequence

from hwprof.errors import HwprofError
from hwprof.protocol import ProtocolSettings
from hwprof.types import DeviceInfo, Measurement, ModelArtifact
from hwprof.worker import WorkRequest, WorkResult, handle, parse_reply


class Runner(ABC):
    """Sends worker requests for one device (name + settings) and returns typed results."""

    def __init__(self, device_name: str, device_settings: dict[str, Any]) -> None:
        self.device_name = device_name
        self.device_settings = dict(device_settings)

    @abstractmethod
    def submit(self, request: WorkRequest) -> WorkResult:
        """Carry out one request on the worker; raises the worker's HwprofError."""

    def describe(self) -> tuple[DeviceInfo, dict[str, Any]]:
        """The device as the worker checked it and the worker machine's metadata."""
        result = self.submit(WorkRequest(self.device_name, self.device_settings, op="describe"))
        return result.device_info, dict(result.host)

    def measure(self, artifacts: Sequence[ModelArtifact], protocol: ProtocolSettings, interleaved: bool = True) -> list[Measurement]:
        request = WorkRequest(self.device_name, self.device_settings, tuple(artifacts), protocol, interleaved)
        return list(self.submit(request).measurements)


class InProcessRunner(Runner):
    """The worker's code in this process, on a given adapter instance (keeps its state between requests)."""

    def __init__(self, device: Any) -> None:
        super().__init__(device.name, dict(device.settings))
        self.device = device

    def submit(self, request: WorkRequest) -> WorkResult:
        reply = json.loads(json.dumps(handle(request.to_json(), device=self.device)))
        return parse_reply(reply)


class SubprocessRunner(Runner):
    """``python -m hwprof.worker`` in a fresh process per request (a clean interpreter for every group)."""

    def __init__(self, device_name: str, device_settings: dict[str, Any], python: str = sys.executable, timeout_s: float | None = None) -> None:
        super().__init__(device_name, device_settings)
        self.python = python
        self.timeout_s = timeout_s

    def submit(self, request: WorkRequest) -> WorkResult:
        try:
            proc = subprocess.run(
                [self.python, "-m", "hwprof.worker", "-"],
                input=json.dumps(request.to_json()),
                capture_output=True,
                text=True,
                timeout=self.timeout_s,
            )
        except subprocess.TimeoutExpired:
            raise HwprofError(f"the worker subprocess did not answer within {self.timeout_s} s") from None
        except OSError as exc:
            raise HwprofError(f"cannot start the worker ({self.python} -m hwprof.worker): {exc.strerror or exc}") from None
        if proc.returncode == 130:
            raise KeyboardInterrupt
        try:
            reply = json.loads(proc.stdout)
        except ValueError:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise HwprofError(f"the worker subprocess exited with {proc.returncode} and no JSON reply: {tail[0]}") from None
        return parse_reply(reply)
