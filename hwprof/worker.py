"""The worker: one JSON request in, Measurements (JSON) out, measured where it runs.

Like pyperf's worker processes, the code that times a model also describes the
machine it runs on and speaks JSON to its driver, so the same function serves
the local profiler (in-process or as a subprocess), an SSH host
(``ssh host python -m hwprof.worker``) and a Ray task: only the transport moves.

Request (``op`` = ``measure``)::

    {"version": 1, "op": "measure", "device": "ort-cpu", "device_settings": {...},
     "protocol": {...ProtocolSettings...}, "interleaved": true,
     "artifacts": [{"path": ..., "format": "onnx", "sha256": ..., ...}],
     "meter": "rapl", "meter_settings": {...}}

``meter`` (optional, null by default) names an energy meter (``hwprof.meters``)
read on the worker's machine around every timed visit: each Measurement then
carries ``energy_mj`` per inference, ``energy_ci_mj`` and the meter's name.

``op`` = ``describe`` takes only ``device`` and ``device_settings`` and returns
what ``Device.check()`` found plus the host metadata. Reply::

    {"version": 1, "ok": true, "result": {"device_info": {...}, "host": {...}, "measurements": [...]}}
    {"version": 1, "ok": false, "error": {"type": "DeviceUnavailable", "message": "..."}}
    {"version": 1, "ok": false, "interrupted": true, "error": {...}, "partial": [{...Measurement...}, null, ...]}

An interrupted request (Ctrl-C, or a signal the driver raises as one) answers
with ``partial``: one entry per artifact, the Measurement kept for it (stop
reason ``interrupted`` inside an interleaved group) or null; the driver raises
it again as :class:`~hwprof.protocol.MeasurementInterrupted`.

Command line: ``python -m hwprof.worker [REQUEST.json]`` (stdin when no file or
``-``) prints the reply on stdout; exit code 0, 1 on an error reply, 2 on a
request that is not valid JSON, 130 on Ctrl-C.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field, fields
from typing import Any, Mapping, Sequence

from hwprof import errors, registry
from hwprof.artifacts import sha256_file
from hwprof.errors import ConfigError, HwprofError, ModelRunError, first_line
from hwprof.meters import get_meter
from hwprof.protocol import MeasurementInterrupted, ProtocolSettings
from hwprof.types import DeviceInfo, Measurement, ModelArtifact

WORKER_VERSION = 1
OPS = ("measure", "describe")


@dataclass(frozen=True)
class WorkRequest:
    """What to measure, on which device with which settings, under which protocol."""

    device: str
    device_settings: Mapping[str, Any] = field(default_factory=dict)
    artifacts: tuple[ModelArtifact, ...] = ()
    protocol: ProtocolSettings = field(default_factory=ProtocolSettings)
    interleaved: bool = True  # several artifacts measured together in alternating rounds (Device.measure_many)
    op: str = "measure"
    meter: str | None = None  # energy meter read where the worker runs (hwprof.meters); None: no energy
    meter_settings: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": WORKER_VERSION,
            "op": self.op,
            "device": self.device,
            "device_settings": dict(self.device_settings),
            "protocol": self.protocol.to_json(),
            "interleaved": self.interleaved,
            "artifacts": [a.to_json() for a in self.artifacts],
            "meter": self.meter,
            "meter_settings": dict(self.meter_settings),
        }

    @classmethod
    def from_json(cls, data: Any) -> "WorkRequest":
        """Validate a decoded request; ConfigError says what is wrong."""
        if not isinstance(data, dict):
            raise ConfigError(f"a worker request is a JSON object, got {type(data).__name__}")
        version = data.get("version", WORKER_VERSION)
        if version != WORKER_VERSION:
            raise ConfigError(f"worker request version {version!r} is not supported (this worker speaks {WORKER_VERSION})")
        op = data.get("op", "measure")
        if op not in OPS:
            raise ConfigError(f"unknown worker op {op!r}; expected one of {', '.join(OPS)}")
        device = data.get("device")
        if not isinstance(device, str) or not device:
            raise ConfigError("a worker request needs a device name ('device')")
        settings = data.get("device_settings", {})
        if not isinstance(settings, dict):
            raise ConfigError(f"'device_settings' must be an object, got {type(settings).__name__}")
        protocol_json = data.get("protocol", {})
        known = {f.name for f in fields(ProtocolSettings)}
        if not isinstance(protocol_json, dict) or set(protocol_json) - known:
            unknown = sorted(set(protocol_json) - known) if isinstance(protocol_json, dict) else protocol_json
            raise ConfigError(f"'protocol' must be an object of protocol settings; unknown: {unknown}")
        protocol = ProtocolSettings(**protocol_json)
        protocol.validate()
        raw_artifacts = data.get("artifacts", [])
        if not isinstance(raw_artifacts, list) or (op == "measure" and not raw_artifacts):
            raise ConfigError("a measure request needs a non-empty list 'artifacts'")
        try:
            artifacts = tuple(ModelArtifact.from_json(a) for a in raw_artifacts)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"malformed artifact in worker request: {type(exc).__name__}: {exc}") from None
        meter = data.get("meter")
        if meter is not None and (not isinstance(meter, str) or not meter):
            raise ConfigError(f"'meter' must be a meter name or null, got {meter!r}")
        meter_settings = data.get("meter_settings", {})
        if not isinstance(meter_settings, dict):
            raise ConfigError(f"'meter_settings' must be an object, got {type(meter_settings).__name__}")
        return cls(device, settings, artifacts, protocol, bool(data.get("interleaved", True)), op, meter, meter_settings)


@dataclass(frozen=True)
class WorkResult:
    """The device as checked on the worker's machine, that machine's metadata, and one Measurement per artifact."""

    device_info: DeviceInfo
    host: Mapping[str, Any]
    measurements: tuple[Measurement, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "device_info": self.device_info.to_json(),
            "host": dict(self.host),
            "measurements": [m.to_json() for m in self.measurements],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "WorkResult":
        return cls(
            DeviceInfo.from_json(data["device_info"]),
            dict(data["host"]),
            tuple(Measurement.from_json(m) for m in data.get("measurements", ())),
        )


def check_artifact_file(artifact: ModelArtifact) -> None:
    """The file is where the request says and has the recorded bytes (a request may cross machines)."""
    try:
        digest = sha256_file(artifact.path)
    except OSError as exc:
        raise ModelRunError(f"artifact {artifact.path} is not readable on this machine: {exc.strerror or exc}") from None
    if digest != artifact.sha256:
        raise ModelRunError(
            f"artifact {artifact.path} has sha256 {digest[:12]}..., the request expects {artifact.sha256[:12]}...: "
            "the file changed after export; re-export it"
        )


def execute(request: WorkRequest, device: Any = None) -> WorkResult:
    """Carry out one request here. ``device``: an adapter instance to use instead of building one by name."""
    if device is None:
        device = registry.get_device(request.device, **request.device_settings)
    info = device.check()
    if request.meter is not None:  # else an adapter instance keeps the meter it was given (Device.use_meter)
        device.use_meter(get_meter(request.meter, **request.meter_settings))
    if request.op == "describe":
        return WorkResult(info, device.host_metadata())
    for artifact in request.artifacts:
        check_artifact_file(artifact)
    if request.interleaved:
        measurements = device.measure_many(list(request.artifacts), request.protocol)
    else:
        measurements = []
        for i, artifact in enumerate(request.artifacts):
            try:
                measurements.append(device.measure(artifact, request.protocol))
            except KeyboardInterrupt as exc:  # the models measured before it are complete
                current = exc.partial if isinstance(exc, MeasurementInterrupted) else [None]
                rest = [None] * (len(request.artifacts) - i - 1)
                raise MeasurementInterrupted([*measurements, *current, *rest]) from exc
    host = measurements[0].host if measurements else device.host_metadata()
    return WorkResult(info, host, tuple(measurements))


def handle(request_json: Any, device: Any = None) -> dict[str, Any]:
    """A decoded request -> a decoded reply; every HwprofError and every interrupt becomes a reply (never raised)."""
    try:
        result = execute(WorkRequest.from_json(request_json), device)
    except HwprofError as exc:
        return error_reply(exc)
    except KeyboardInterrupt as exc:
        return interrupted_reply(exc)
    return {"version": WORKER_VERSION, "ok": True, "result": result.to_json()}


def error_reply(exc: BaseException) -> dict[str, Any]:
    return {"version": WORKER_VERSION, "ok": False, "error": {"type": type(exc).__name__, "message": first_line(exc)}}


def interrupted_reply(exc: KeyboardInterrupt) -> dict[str, Any]:
    """The reply to an interrupted request: what was kept (``partial``), so the driver can store it."""
    partial = exc.partial if isinstance(exc, MeasurementInterrupted) else []
    reply = error_reply(MeasurementInterrupted(partial))
    reply["interrupted"] = True
    reply["partial"] = [None if m is None else m.to_json() for m in partial]
    return reply


def parse_reply(reply: Any) -> WorkResult:
    """A decoded reply -> WorkResult, or the worker's error raised again as the same HwprofError subclass.

    An interrupted reply is raised again as MeasurementInterrupted with its partial Measurements.
    """
    if not isinstance(reply, dict) or "ok" not in reply:
        raise HwprofError(f"the worker's reply is not a hwprof worker reply: {str(reply)[:200]!r}")
    if reply.get("interrupted"):
        try:
            partial = [None if m is None else Measurement.from_json(m) for m in reply.get("partial") or []]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise HwprofError(f"malformed interrupted worker reply: {type(exc).__name__}: {exc}") from None
        raise MeasurementInterrupted(partial)
    if not reply["ok"]:
        err = reply.get("error") or {}
        cls = getattr(errors, str(err.get("type", "")), None)
        if not (isinstance(cls, type) and issubclass(cls, HwprofError)):
            cls = HwprofError
        raise cls(str(err.get("message", "the worker failed without a message")))
    try:
        return WorkResult.from_json(reply["result"])
    except (KeyError, TypeError, ValueError) as exc:
        raise HwprofError(f"malformed worker reply: {type(exc).__name__}: {exc}") from None


def run_in_process(request: WorkRequest, device: Any = None) -> WorkResult:
    """Carry out ``request`` here through the full JSON path (request and reply serialised and read back)."""
    return parse_reply(json.loads(json.dumps(handle(request.to_json(), device))))


def measure(
    device: str,
    artifacts: Sequence[ModelArtifact],
    protocol: ProtocolSettings | None = None,
    device_settings: Mapping[str, Any] | None = None,
    interleaved: bool = True,
) -> list[Measurement]:
    """Measure artifacts on a registered device in this process, through the same JSON path as a remote worker."""
    request = WorkRequest(device, dict(device_settings or {}), tuple(artifacts), protocol or ProtocolSettings(), interleaved)
    return list(run_in_process(request).measurements)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    source = args[0] if args else "-"
    try:
        text = sys.stdin.read() if source == "-" else open(source, encoding="utf-8").read()
        request = json.loads(text)
    except (OSError, ValueError) as exc:
        print(json.dumps(error_reply(ConfigError(f"cannot read a JSON request from {source}: {exc}"))))
        return 2
    try:
        reply = handle(request)
    except KeyboardInterrupt as exc:  # outside the measurement (e.g. while reading the request)
        reply = interrupted_reply(exc)
    print(json.dumps(reply))
    if reply.get("interrupted"):
        return 130
    return 0 if reply["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
