"""Ray fleet: profile on many device hosts at once, through the same worker.

Each device host runs a Ray node that advertises one custom resource per
device it drives, ``{"dev:<name>": 1}`` (``hwprof worker --devices NAME``, or
``ray start --resources '{"dev:NAME": 1}'``). Every task of this module asks
for one unit of that resource, so Ray never runs two of them on one device at
once; several nodes may advertise the same name (identical boards): their
groups then run in parallel, one per node.

The driver (``hwprof profile --ray auto|ADDRESS``) sends each interleaved group
of the profiler as one task: the node exports the group into its own
content-addressed cache (artifacts never cross machines, and no export runs
on a device host while that device measures), runs :mod:`hwprof.worker` on it
and returns the worker's JSON reply with the node's host metadata. The
profiler stores each group as its task finishes (``ray.wait``).

Node settings. A node may set device settings of its own (``hwprof worker
--set cpu_affinity=0``: two simulated nodes on one machine pinned to
different cores, or the serial of the phone attached to that host). They are
placement, not identity: applied on that node and recorded in each row's host
metadata under ``fleet``, while the row's ``settings`` are the driver's
settings as the adapter validates them, the same on every node, so rows of
all nodes compare and resume as one device.

Faults. A task whose worker process or node died is sent again (to any node
advertising the device) up to ``max_attempts`` times in all, and each retry is
noted in the run's summary. A device no node advertises is refused before
anything is sent; one whose last node disappears mid-run fails the run after
``lost_grace_s`` instead of waiting forever, with every finished group stored.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from hwprof import registry
from hwprof.artifacts import ArtifactCache, sha256_file
from hwprof.errors import ConfigError, DeviceUnavailable, HwprofError, first_line
from hwprof.protocol import MeasurementInterrupted
from hwprof.runners import ConcurrentRunner, GroupDone, GroupJob, MeasuredElsewhere
from hwprof.types import DeviceInfo, ModelArtifact
from hwprof.worker import WorkRequest, WorkResult, error_reply, handle, parse_reply

logger = logging.getLogger("hwprof")

RESOURCE_PREFIX = "dev:"
NODE_DEVICES_ENV = "HWPROF_FLEET_DEVICES"  # on a node: JSON {name: {"adapter": ..., "settings": {...}}}
NODE_CACHE_ENV = "HWPROF_FLEET_CACHE"  # on a node: where its exports and shipped artifacts go
DEFAULT_NODE_CACHE = "~/.cache/hwprof/fleet"
MAX_ATTEMPTS = 3  # tries per group in all: the first and two retries after a lost node or worker
POLL_S = 1.0  # how often a waiting driver checks that the device is still advertised
LOST_GRACE_S = 15.0  # no node advertising the device for this long: pending groups are given up
CONNECT_TIMEOUT_S = 10.0  # for the head's address to answer at all
CANCEL_GRACE_S = 10.0  # how long an interrupted driver waits for the partial replies of cancelled groups


def import_ray() -> Any:
    """The ``ray`` module, or a one-line ConfigError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError('the Ray fleet runner needs Ray, which is not installed: pip install "hwprof[ray]"') from None
    return ray


def resource_of(device_name: str) -> str:
    return f"{RESOURCE_PREFIX}{device_name}"


# --- the node side --------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeDevice:
    """A device a node drives: its fleet name, the adapter that runs it there and the node's own settings."""

    name: str
    adapter: str
    settings: Mapping[str, Any]


def parse_node_devices(names: str, settings: Sequence[tuple[str, Any]] = ()) -> list[NodeDevice]:
    """``"pixel7=android-adb,ort-cpu"`` and ``[("cpu_affinity", "0"), ("ort-cpu.intra_op_threads", 2)]`` -> devices.

    ``NAME`` alone runs the adapter of that name; a setting ``KEY`` applies to
    every device of the node, ``NAME.KEY`` to one of them.
    """
    devices: dict[str, NodeDevice] = {}
    for item in (part.strip() for part in names.split(",")):
        if not item:
            continue
        name, _, adapter = item.partition("=")
        name, adapter = name.strip(), (adapter.strip() or name.strip())
        if not name or name in devices:
            raise ConfigError(f"--devices: expected NAME or NAME=ADAPTER, each name once; got {names!r}")
        registry.load("device", adapter)  # an unknown adapter fails here, before the node joins
        devices[name] = NodeDevice(name, adapter, {})
    if not devices:
        raise ConfigError("--devices: name at least one device (NAME or NAME=ADAPTER)")
    for key, value in settings:
        target, dot, bare = key.rpartition(".")
        for device in devices.values():
            if not dot or target == device.name:
                device.settings[bare] = value  # type: ignore[index]  (a fresh dict per device)
        if dot and target not in devices:
            raise ConfigError(f"--set {key}=...: {target!r} is not one of this node's devices ({', '.join(devices)})")
    for device in devices.values():  # the adapter's own check of the node's settings, here and now
        registry.get_device(device.adapter, **device.settings)
    return list(devices.values())


def node_environment(devices: Sequence[NodeDevice], cache_dir: str | Path | None = None) -> dict[str, str]:
    """The environment variables that tell a node's tasks which adapter and settings each device uses."""
    env = {NODE_DEVICES_ENV: json.dumps({d.name: {"adapter": d.adapter, "settings": dict(d.settings)} for d in devices})}
    if cache_dir is not None:
        env[NODE_CACHE_ENV] = str(Path(cache_dir).expanduser().resolve())
    return env


def node_resources(devices: Sequence[NodeDevice]) -> dict[str, float]:
    return {resource_of(d.name): 1.0 for d in devices}


def _node_device(name: str) -> NodeDevice:
    """How this node runs ``name``: from ``hwprof worker``'s environment, else the adapter of that name."""
    table = json.loads(os.environ.get(NODE_DEVICES_ENV) or "{}").get(name)
    if table is None:
        return NodeDevice(name, name, {})
    return NodeDevice(name, str(table["adapter"]), dict(table.get("settings") or {}))


def _node_cache() -> Path:
    return Path(os.environ.get(NODE_CACHE_ENV) or DEFAULT_NODE_CACHE).expanduser()


def _pinned(cores: Any) -> Any:
    """Pin this process to ``cores`` (a list of core ids, as CPU adapters validate cpu_affinity); returns the old set."""
    if not isinstance(cores, list) or not cores or not hasattr(os, "sched_setaffinity"):
        return None
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, set(cores))
    return saved


def _unpack(blobs: Mapping[str, bytes], artifacts: Sequence[ModelArtifact], folder: Path) -> list[ModelArtifact]:
    """Artifacts sent from the driver, written once into this node's cache (content-addressed, atomically)."""
    out = []
    folder.mkdir(parents=True, exist_ok=True)
    for a in artifacts:
        path = folder / f"{a.sha256}{Path(a.path).suffix}"
        if not (path.is_file() and sha256_file(path) == a.sha256):
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            tmp.write_bytes(blobs[a.sha256])
            os.replace(tmp, path)
        out.append(replace(a, path=str(path)))
    return out


def run_on_node(name: str, driver_settings: Mapping[str, Any], payload: Mapping[str, Any]) -> dict[str, Any]:
    """The body of every fleet task, on the node: export (a group) or unpack (a request), then the worker.

    ``payload`` holds either ``job`` (a :class:`GroupJob`: exported here; with ``meter``, ``{"name", "settings"}``
    or None, the energy meter read on the node) or ``request`` (worker request JSON, its meter included) with
    ``blobs`` (the artifacts' bytes).
    Returns ``{"reply": <worker reply>, "artifacts": [...], "identity": {...}, "node": {...}}``:
    ``identity`` is the driver's settings as the adapter validates them (what rows are stored under),
    ``node`` where it ran and the settings it applied.
    """
    import ray

    ctx = ray.get_runtime_context()
    node = {"node_id": ctx.get_node_id(), "node_ip": ray.util.get_node_ip_address(), "resource": resource_of(name)}
    artifacts: list[ModelArtifact] = []
    try:
        placed = _node_device(name)
        node["adapter"] = placed.adapter
        identity = registry.get_device(placed.adapter, **driver_settings).settings
        device = registry.get_device(placed.adapter, **{**driver_settings, **placed.settings})
        node["settings"] = dict(device.settings)
        job: GroupJob | None = payload.get("job")
        if job is not None:
            saved = _pinned(device.settings.get("cpu_affinity"))  # export on the node's own cores only
            try:
                artifacts = job.export(ArtifactCache(_node_cache() / "exports"))
            finally:
                if saved is not None:
                    os.sched_setaffinity(0, saved)
            meter = payload.get("meter") or {}
            request = WorkRequest(placed.adapter, dict(device.settings), tuple(artifacts), job.protocol, True,
                                  meter=meter.get("name"), meter_settings=dict(meter.get("settings") or {}))
        else:
            request = WorkRequest.from_json(payload["request"])
            artifacts = _unpack(payload.get("blobs") or {}, request.artifacts, _node_cache() / "shipped")
            request = replace(request, device=placed.adapter, device_settings=dict(device.settings), artifacts=tuple(artifacts))
        reply = handle(request.to_json(), device)
    except HwprofError as exc:
        reply, identity = error_reply(exc), dict(driver_settings)
    return {"reply": reply, "artifacts": [a.to_json() for a in artifacts], "identity": dict(identity), "node": node}


# --- the driver side ------------------------------------------------------------------------------


def check_reachable(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """DeviceUnavailable unless ``HOST:PORT`` accepts a connection (Ray itself waits minutes for a silent head)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return  # "auto", or a form Ray resolves itself
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise DeviceUnavailable(
            f"cannot reach the Ray cluster at {address}: {exc.strerror or exc} (is `ray start --head` running there?)"
        ) from None


def connect(ray: Any, address: str) -> None:
    """Join the Ray cluster at ``address`` ("auto" or HOST:PORT) as a driver; DeviceUnavailable in one line."""
    check_reachable(address)
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False, configure_logging=True)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise DeviceUnavailable(f"cannot connect to the Ray cluster at {address!r}: {first_line(exc)}") from None


def advertised_devices(address: str | None) -> dict[str, list[str]]:
    """Device name -> the addresses of the live nodes advertising it, on the cluster at ``address``.

    ``address`` None: the Ray session this process already has. A session
    opened here is closed again (for ``hwprof devices --ray``).
    """
    ray = import_ray()
    opened = not ray.is_initialized()
    if opened:
        if address is None:
            raise ConfigError("no Ray session in this process: give the cluster's address ('auto' or HOST:PORT)")
        connect(ray, address)
    try:
        out: dict[str, list[str]] = {}
        for node in ray.nodes():
            if not node.get("Alive"):
                continue
            for key, amount in sorted(node.get("Resources", {}).items()):
                if key.startswith(RESOURCE_PREFIX) and amount > 0:
                    out.setdefault(key[len(RESOURCE_PREFIX):], []).append(str(node.get("NodeManagerAddress", "?")))
        return out
    finally:
        if opened:
            ray.shutdown()


@dataclass
class _Ticket:
    number: int
    payload: dict[str, Any]
    size: int  # networks in it (for messages)
    attempts: int = 1


class RayFleet(ConcurrentRunner):
    """Groups sent as Ray tasks to the nodes that advertise ``dev:<device_name>``; see the module docstring.

    ``address``: ``"auto"`` (the cluster this machine belongs to), ``HOST:PORT``,
    or None to use the Ray session this process already has. A session this
    runner opened is shut down by :meth:`close`.
    """

    def __init__(
        self,
        device_name: str,
        device_settings: Mapping[str, Any] | None = None,
        address: str | None = "auto",
        max_attempts: int = MAX_ATTEMPTS,
        poll_s: float = POLL_S,
        lost_grace_s: float = LOST_GRACE_S,
    ) -> None:
        super().__init__(device_name, dict(device_settings or {}))
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise ConfigError(f"max_attempts must be an integer >= 1, got {max_attempts!r}")
        self.max_attempts, self.poll_s, self.lost_grace_s = max_attempts, poll_s, lost_grace_s
        self.ray = import_ray()
        self.resource = resource_of(device_name)
        self._owns_session = False
        if not self.ray.is_initialized():
            if address is None:
                raise ConfigError("no Ray session in this process: give the cluster's address ('auto' or HOST:PORT)")
            self._connect(address)
        self._task = self.ray.remote(run_on_node).options(
            num_cpus=0, resources={self.resource: 1}, max_retries=0, name=f"hwprof:{device_name}"
        )
        self._inflight: dict[Any, _Ticket] = {}  # ObjectRef -> ticket
        self._tickets = 0
        self._lost_since: float | None = None
        if not self.nodes():
            self.close()
            have = sorted(k for k in self.ray.cluster_resources() if k.startswith(RESOURCE_PREFIX))
            raise DeviceUnavailable(
                f"no node of the Ray cluster advertises {self.resource} (devices advertised: {', '.join(have) or 'none'}); "
                f"start one on the device's host: hwprof worker --devices {device_name} --address ADDRESS"
            )

    def _connect(self, address: str) -> None:
        connect(self.ray, address)
        self._owns_session = True

    def close(self) -> None:
        if self._owns_session and self.ray.is_initialized():
            self.ray.shutdown()
        self._owns_session = False

    def nodes(self) -> list[dict[str, Any]]:
        """The live nodes advertising this device."""
        return [n for n in self.ray.nodes() if n.get("Alive") and n.get("Resources", {}).get(self.resource, 0) > 0]

    # --- sending and receiving -----------------------------------------------------------------
    def _send(self, ticket: _Ticket) -> None:
        self._inflight[self._task.remote(self.device_name, self.device_settings, ticket.payload)] = ticket

    def start(self, job: GroupJob) -> int:
        self._tickets += 1
        meter = {"name": self.meter, "settings": self.meter_settings} if self.meter is not None else None
        self._send(_Ticket(self._tickets, {"job": job, "meter": meter}, len(job.archs)))
        return self._tickets

    @property
    def pending(self) -> int:
        return len(self._inflight)

    def wait(self) -> list[GroupDone]:
        """Block until a group finished; resend the ones whose node or worker died; give up when none can run."""
        while self._inflight:
            ready, _ = self.ray.wait(list(self._inflight), num_returns=1, timeout=self.poll_s)
            if ready:
                ready, _ = self.ray.wait(list(self._inflight), num_returns=len(self._inflight), timeout=0)
                finished = [done for done in (self._collect(ref) for ref in ready) if done is not None]
                if finished:
                    return finished
                continue
            self._check_advertised()
        return []

    def _check_advertised(self) -> None:
        """DeviceUnavailable once no live node has advertised the device for ``lost_grace_s``."""
        if self.nodes():
            self._lost_since = None
            return
        now = time.monotonic()
        if self._lost_since is None:
            self._lost_since = now
            logger.warning("no live node of the Ray cluster advertises %s; waiting up to %.0f s for one", self.resource, self.lost_grace_s)
        elif now - self._lost_since >= self.lost_grace_s:
            n = sum(t.size for t in self._inflight.values())
            raise DeviceUnavailable(
                f"no live node of the Ray cluster has advertised {self.resource} for {self.lost_grace_s:.0f} s "
                f"(its nodes were lost); {len(self._inflight)} group(s) of {n} networks cannot be scheduled"
            )

    def _collect(self, ref: Any) -> GroupDone | None:
        """The finished task's GroupDone, or None when it was sent again (lost node or worker)."""
        ticket = self._inflight.pop(ref)
        exceptions = self.ray.exceptions
        try:
            out = self.ray.get(ref)
        except exceptions.TaskCancelledError:
            return GroupDone(ticket.number, (), error=MeasurementInterrupted([]))
        except exceptions.RayTaskError as exc:  # an exception the task did not turn into a reply: not retried
            return GroupDone(ticket.number, (), error=HwprofError(f"a fleet task on {self.resource} failed: {first_line(exc)}"))
        except exceptions.RayError as exc:  # the worker process or its node died
            why = f"{type(exc).__name__}: {first_line(exc)}"
            if ticket.attempts >= self.max_attempts:
                return GroupDone(ticket.number, (), error=DeviceUnavailable(
                    f"a group of {ticket.size} networks was lost on all {ticket.attempts} attempts on {self.resource} (last: {why})"
                ))  # fmt: skip
            ticket.attempts += 1
            self.notes.append(
                f"a group of {ticket.size} networks lost its Ray worker or node ({why[:160]}); "
                f"sent again (attempt {ticket.attempts} of {self.max_attempts})"
            )
            self._send(ticket)
            return None
        return self._done(ticket.number, out)

    def _done(self, number: int, out: Mapping[str, Any]) -> GroupDone:
        artifacts = tuple(ModelArtifact.from_json(a) for a in out["artifacts"])
        node = dict(out["node"])
        where = f"node {str(node.get('node_id', ''))[:8]} ({node.get('node_ip')})"
        try:
            result = self._renamed(parse_reply(out["reply"]), out["identity"], node)
        except MeasurementInterrupted as exc:
            kept = [None if m is None else self._renamed_measurement(m, out["identity"], node) for m in exc.partial]
            return GroupDone(number, artifacts, error=MeasurementInterrupted(kept), where=where)
        except HwprofError as exc:
            return GroupDone(number, artifacts, error=type(exc)(f"{where}: {first_line(exc)}"), where=where)
        return GroupDone(number, artifacts, result=result, where=where)

    def _renamed_measurement(self, m: Any, identity: Mapping[str, Any], node: Mapping[str, Any]) -> Any:
        return replace(m, device=self.device_name, settings=dict(identity), host={**m.host, "fleet": dict(node)})

    def _renamed(self, result: WorkResult, identity: Mapping[str, Any], node: Mapping[str, Any]) -> WorkResult:
        """Rows under the fleet's device name and the driver's settings; the node and its settings in host metadata."""
        info: DeviceInfo = result.device_info
        info = replace(info, name=self.device_name, settings=dict(identity),
                       extra={**info.extra, "adapter": node.get("adapter", info.name), "fleet": self.resource})  # fmt: skip
        measurements = tuple(self._renamed_measurement(m, identity, node) for m in result.measurements)
        return WorkResult(info, {**result.host, "fleet": dict(node)}, measurements)

    def cancel(self) -> list[GroupDone]:
        """Interrupt the tasks in flight (KeyboardInterrupt in the worker) and collect what they kept.

        Groups that finished before the interrupt are collected first, whole, and
        never cancelled (cancelling a task whose reply is already on its way is
        wasted work, and Ray has aborted the driver on that race); the returned
        GroupDones are complete groups and interrupted ones with what they kept.
        """
        kept: list[GroupDone] = []

        def harvest(timeout: float) -> None:
            ready, _ = self.ray.wait(list(self._inflight), num_returns=len(self._inflight), timeout=timeout)
            for ref in ready:
                ticket = self._inflight.pop(ref)
                try:
                    done = self._done(ticket.number, self.ray.get(ref))
                except self.ray.exceptions.RayError:
                    continue
                if done.error is None or isinstance(done.error, MeasurementInterrupted):
                    kept.append(done)

        if not self._inflight:
            return kept
        harvest(0)
        for ref in self._inflight:
            self.ray.cancel(ref, force=False)
        deadline = time.monotonic() + CANCEL_GRACE_S
        while self._inflight and time.monotonic() < deadline:
            harvest(0.2)
        for ref in self._inflight:
            self.ray.cancel(ref, force=True)
        self._inflight.clear()
        return kept

    # --- the Runner contract: one request on one of the devices --------------------------------
    def submit(self, request: WorkRequest) -> WorkResult:
        """Carry out ``request`` on one node advertising the device (artifacts sent with it); retried like a group."""
        blobs = {a.sha256: Path(a.path).read_bytes() for a in request.artifacts}
        self._tickets += 1
        number = self._tickets
        self._send(_Ticket(number, {"request": request.to_json(), "blobs": blobs}, len(request.artifacts)))
        finished = None
        while finished is None:  # None: still running, or sent again after a lost node
            finished = self._wait_for(number)
        if finished.error is not None:
            raise finished.error
        assert finished.result is not None
        return finished.result

    def _wait_for(self, number: int) -> GroupDone | None:
        ref = next(r for r, t in self._inflight.items() if t.number == number)
        ready, _ = self.ray.wait([ref], timeout=self.poll_s)
        if not ready:
            self._check_advertised()
            return None
        return self._collect(ref)


class FleetDevice(MeasuredElsewhere):
    """A device measured on a Ray fleet (:class:`RayFleet` does); the adapter the nodes run gives its formats."""

    def __init__(self, fleet: RayFleet) -> None:
        info, _ = fleet.describe()
        adapter = str(info.extra.get("adapter", info.name))
        super().__init__(fleet.device_name, adapter, info.settings, f"{adapter} on the Ray nodes advertising {fleet.resource}")
        self.fleet = fleet

    def check(self) -> DeviceInfo:
        return self.fleet.describe()[0]


def open_fleet(device_name: str, device_settings: Mapping[str, Any], address: str | None) -> tuple[FleetDevice, RayFleet]:
    """(device, runner) for ``Profiler(device, ..., runner=runner)``; call ``runner.close()`` when done."""
    fleet = RayFleet(device_name, device_settings, address)
    try:
        return FleetDevice(fleet), fleet
    except BaseException:
        fleet.close()
        raise


def ray_start_command(devices: Sequence[NodeDevice], address: str | None, num_cpus: int = 0) -> list[str]:
    """``ray start`` arguments that make this machine a node driving ``devices`` (``address`` None: a head node).

    ``num_cpus`` 0 by default: no ordinary Ray task is placed on a device host,
    where it would share cores with a measurement.
    """
    where = ["--head"] if address is None else ["--address", address]
    return ["start", *where, "--num-cpus", str(num_cpus), "--resources", json.dumps(node_resources(devices)), "--block"]


__all__ = [
    "NODE_CACHE_ENV", "NODE_DEVICES_ENV", "FleetDevice", "check_reachable", "NodeDevice", "RayFleet", "import_ray", "node_environment",
    "node_resources", "open_fleet", "parse_node_devices", "ray_start_command", "resource_of", "run_on_node",
]
