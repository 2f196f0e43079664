"""Where the worker runs: in this process (default), in a fresh subprocess, over SSH or on a Ray fleet.

All speak the worker's JSON (:mod:`hwprof.worker`), so what the profiler
stores is exactly what a remote worker sends back: an in-process run
serialises its reply and reads it back too.

A :class:`ConcurrentRunner` has several devices of one name behind it (a Ray
fleet, :mod:`hwprof.fleet`): the profiler hands it whole groups
(:class:`GroupJob`), each exported and measured where it runs, several at
once, and stores each group as it comes back (:class:`GroupDone`).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from hwprof.artifacts import WEIGHT_SEED, ArtifactCache, Exporter, space_inputs
from hwprof.devices import Device
from hwprof.errors import HwprofError
from hwprof.protocol import ProtocolSettings
from hwprof.types import Architecture, DeviceInfo, Measurement, ModelArtifact
from hwprof.worker import WorkRequest, WorkResult, parse_reply, run_in_process

if TYPE_CHECKING:
    from hwprof.spaces import SearchSpace

INTERRUPT_GRACE_S = 10.0  # how long an interrupted driver waits for the worker's partial reply


class Runner(ABC):
    """Sends worker requests for one device (name + settings) and returns typed results."""

    def __init__(self, device_name: str, device_settings: dict[str, Any]) -> None:
        self.device_name = device_name
        self.device_settings = dict(device_settings)
        self.meter: str | None = None  # an energy meter the worker reads where the model runs (use_meter)
        self.meter_settings: dict[str, Any] = {}

    @abstractmethod
    def submit(self, request: WorkRequest) -> WorkResult:
        """Carry out one request on the worker; raises the worker's HwprofError."""

    def use_meter(self, name: str | None, settings: dict[str, Any] | None = None) -> None:
        """Have the worker read energy meter ``name`` (built there with ``settings``) in every later request.

        The meter is built and checked on the worker's machine (its RAPL, its
        GPU, its power log), so it need not exist here; the next :meth:`describe`
        says whether it works there. None: no energy.
        """
        self.meter, self.meter_settings = name, dict(settings or {})

    def request(self, artifacts: Sequence[ModelArtifact] = (), protocol: ProtocolSettings | None = None,
                interleaved: bool = True, op: str = "measure") -> WorkRequest:
        """A request for this runner's device (its settings, its meter)."""
        return WorkRequest(self.device_name, self.device_settings, tuple(artifacts), protocol or ProtocolSettings(),
                           interleaved, op, self.meter, self.meter_settings)

    def describe(self) -> tuple[DeviceInfo, dict[str, Any]]:
        """The device (and its meter, when one is used) as the worker checked it, and the worker machine's metadata."""
        result = self.submit(self.request(op="describe"))
        return result.device_info, dict(result.host)

    def measure(self, artifacts: Sequence[ModelArtifact], protocol: ProtocolSettings, interleaved: bool = True) -> list[Measurement]:
        return list(self.submit(self.request(artifacts, protocol, interleaved)).measurements)


class InProcessRunner(Runner):
    """The worker's code in this process, on a given adapter instance (keeps its state between requests)."""

    def __init__(self, device: Any) -> None:
        super().__init__(device.name, dict(device.settings))
        self.device = device

    def submit(self, request: WorkRequest) -> WorkResult:
        return run_in_process(request, self.device)


class SubprocessRunner(Runner):
    """``python -m hwprof.worker`` in a fresh process per request (a clean interpreter for every group)."""

    def __init__(self, device_name: str, device_settings: dict[str, Any], python: str = sys.executable, timeout_s: float | None = None) -> None:
        super().__init__(device_name, device_settings)
        self.python = python
        self.timeout_s = timeout_s

    def submit(self, request: WorkRequest) -> WorkResult:
        """Run the worker on ``request``; on Ctrl-C it is asked to stop and its partial reply is read back.

        The worker answers an interrupt with the Measurements it kept (see
        :mod:`hwprof.worker`), so the driver forwards SIGINT (it may not have
        had one: a SIGTERM to the driver alone) and waits up to
        ``INTERRUPT_GRACE_S`` for that reply before killing the worker.
        """
        try:
            proc = subprocess.Popen(
                [self.python, "-m", "hwprof.worker", "-"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        except OSError as exc:
            raise HwprofError(f"cannot start the worker ({self.python} -m hwprof.worker): {exc.strerror or exc}") from None
        with proc:
            try:
                stdout, stderr = proc.communicate(json.dumps(request.to_json()), timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                raise HwprofError(f"the worker subprocess did not answer within {self.timeout_s} s") from None
            except KeyboardInterrupt:
                stdout = self._interrupt(proc)
                if stdout is None:
                    raise
                stderr = ""
        try:
            reply = json.loads(stdout)
        except ValueError:
            if proc.returncode == 130:
                raise KeyboardInterrupt from None
            tail = (stderr or stdout).strip().splitlines()[-1:] or ["no output"]
            raise HwprofError(f"the worker subprocess exited with {proc.returncode} and no JSON reply: {tail[0]}") from None
        return parse_reply(reply)

    @staticmethod
    def _interrupt(proc: subprocess.Popen) -> str | None:
        """SIGINT to the worker and its reply (None when it gave none within the grace period: killed)."""
        try:
            proc.send_signal(signal.SIGINT)
            stdout, _ = proc.communicate(timeout=INTERRUPT_GRACE_S)
            return stdout
        except (subprocess.TimeoutExpired, OSError, ValueError):
            proc.kill()
            return None


@dataclass(frozen=True)
class GroupJob:
    """One group to export and measure together (interleaved), with what exporting it needs anywhere.

    ``archs`` is the whole group, calibration models included; the exporter
    and space travel with the job so that a fleet node exports where it
    measures (artifacts never cross machines).
    """

    archs: tuple[Architecture, ...]
    space: "SearchSpace"
    exporter: Exporter
    precision: str
    protocol: ProtocolSettings

    def export(self, cache: ArtifactCache) -> list[ModelArtifact]:
        """The group's artifacts from ``cache`` (exported when absent): the same files wherever it runs."""
        inputs = space_inputs(self.space)
        return [
            cache.get_or_export(a, lambda a=a: self.space.build(a, seed=WEIGHT_SEED), inputs, self.exporter, self.precision)
            for a in self.archs
        ]


@dataclass(frozen=True)
class GroupDone:
    """A finished group: its artifacts (as exported where it ran) and the worker's result, or why it has none.

    ``error`` is the worker's HwprofError, an error of the runner itself (a
    group lost on every attempt), or a MeasurementInterrupted with the
    Measurements the interrupted group kept (``partial``); ``result`` is then None.
    """

    ticket: int
    artifacts: tuple[ModelArtifact, ...]
    result: WorkResult | None = None
    error: BaseException | None = None
    where: str = ""  # which machine ran it, for messages


class ConcurrentRunner(Runner):
    """Several devices of one name behind one runner: groups run at once, each exported and measured where it runs.

    ``submit`` (the :class:`Runner` contract) still carries out one request on
    one of the devices, so describing the device and single measurements work
    as with any runner.
    """

    def __init__(self, device_name: str, device_settings: dict[str, Any]) -> None:
        super().__init__(device_name, device_settings)
        self.notes: list[str] = []  # what happened on the way (groups retried after a lost node): for the summary

    @abstractmethod
    def start(self, job: GroupJob) -> int:
        """Send one group off (never blocks for it to be measured); returns its ticket."""

    @property
    @abstractmethod
    def pending(self) -> int:
        """Groups sent and not yet returned by :meth:`wait`."""

    @abstractmethod
    def wait(self) -> list[GroupDone]:
        """Block until at least one group finished and return the finished ones.

        Raises :class:`~hwprof.errors.DeviceUnavailable` when the pending groups
        can never finish (no device of the name is left to run them).
        """

    @abstractmethod
    def cancel(self) -> list[GroupDone]:
        """Interrupt every pending group: those already finished come back whole, the others with what they kept
        (MeasurementInterrupted errors); the profiler stores both."""


class MeasuredElsewhere:
    """What the profiler needs of a device a runner measures on another machine (SSH, a Ray fleet).

    Its name, settings, and the formats and precisions of the adapter that runs
    there (found here by name, so the right exporter is picked and a precision
    it lacks is refused before anything is sent). It never measures in this
    process.
    """

    def __init__(self, name: str, adapter: str, settings: Any, description: str) -> None:
        from hwprof import registry

        cls = registry.load("device", adapter)
        self.name = name
        self.supported_formats = tuple(getattr(cls, "supported_formats", ()))
        self.supported_precisions = tuple(getattr(cls, "supported_precisions", ("fp32",)))
        self.settings = dict(settings)
        self.description = description

    check_precision = Device.check_precision  # the adapter's precisions, refused here before anything is sent

    def prepare(self, artifact: Any) -> Any:
        raise HwprofError(f"{self.name} is measured through its runner ({self.description}), not in this process")

