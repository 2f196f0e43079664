"""Remote devices over SSH: the same worker (``python -m hwprof.worker``) on another host.

A remote device is configured in ``hwprof.toml`` (see :mod:`hwprof.config`)::

    [devices.lab-pi]
    type = "ssh"
    host = "10.0.0.5"
    port = 22
    user = "pi"
    key = "~/.ssh/id_ed25519"           # keys only: no password is ever asked for or passed
    python = "/home/pi/venv/bin/python"  # with hwprof and the runtime installed
    device = "ort-cpu"                   # the adapter that runs there
    settings = { intra_op_threads = 4 }

``hwprof profile --device lab-pi`` then exports locally, copies each artifact
to the host once (content-addressed: ``<remote_cache>/<sha256><suffix>``,
skipped when the host already holds those bytes, written to a temporary name
and renamed), runs the worker there with the request on stdin and reads back
Measurements with the remote host's metadata. Rows are stored under the
configured name (``lab-pi``), never under the adapter's, so remote and local
measurements never mix.

Host keys are verified against hwprof's own ``known_hosts`` file
(``StrictHostKeyChecking=yes``): a first connection to an unknown host is
refused until the user reviews the key's fingerprint and accepts it
(``hwprof remote trust NAME``, which uses ``ssh-keyscan``).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from hwprof.errors import ConfigError, DeviceUnavailable, HwprofError
from hwprof.runners import MeasuredElsewhere, Runner
from hwprof.types import DeviceInfo
from hwprof.worker import WorkRequest, WorkResult, parse_reply

DEFAULT_KNOWN_HOSTS = Path("~/.config/hwprof/known_hosts")
DEFAULT_REMOTE_CACHE = "~/.cache/hwprof/remote-artifacts"
CONNECT_TIMEOUT_S = 10
SSH_FAILED = 255  # ssh's own exit status when the connection (not the remote command) failed


@dataclass(frozen=True)
class SshTarget:
    """Where and how to reach a remote device (one ``[devices.NAME]`` table of type ``ssh``)."""

    name: str
    host: str
    device: str  # the adapter on the remote host
    user: str | None = None
    port: int = 22
    key: str | None = None
    python: str = "python3"
    settings: Mapping[str, Any] = field(default_factory=dict)
    known_hosts: str = str(DEFAULT_KNOWN_HOSTS)
    remote_cache: str = DEFAULT_REMOTE_CACHE
    timeout_s: float | None = None  # for one request (None: no limit; a group may take minutes)

    @classmethod
    def from_config(cls, name: str, table: Mapping[str, Any], base: Path | None = None) -> "SshTarget":
        """Validate one config table; ConfigError names the device and the bad key."""
        known = {"type", "host", "device", "user", "port", "key", "python", "settings", "known_hosts", "remote_cache",
                 "timeout_s", "password"}
        unknown = sorted(set(table) - known)
        if unknown:
            raise ConfigError(f"device {name!r}: unknown key(s) {', '.join(unknown)} in its [devices.{name}] table")
        if "password" in table:
            raise ConfigError(f"device {name!r}: passwords are not supported; use a key ('key = \"~/.ssh/id_ed25519\"')")
        for key in ("host", "device"):
            if not isinstance(table.get(key), str) or not table[key]:
                raise ConfigError(f"device {name!r}: '{key}' must be a non-empty string")
        port = table.get("port", 22)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ConfigError(f"device {name!r}: 'port' must be an integer 1-65535, got {port!r}")
        settings = table.get("settings", {})
        if not isinstance(settings, dict):
            raise ConfigError(f"device {name!r}: 'settings' must be a table, got {settings!r}")
        timeout = table.get("timeout_s")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
            raise ConfigError(f"device {name!r}: 'timeout_s' must be a number > 0, got {timeout!r}")

        def path(value: Any, key: str) -> str | None:
            if value is None:
                return None
            if not isinstance(value, str) or not value:
                raise ConfigError(f"device {name!r}: '{key}' must be a path string, got {value!r}")
            p = Path(value).expanduser()
            return str(p if p.is_absolute() or base is None else base / p)

        for key in ("user", "python", "remote_cache"):
            if key in table and (not isinstance(table[key], str) or not table[key]):
                raise ConfigError(f"device {name!r}: '{key}' must be a non-empty string")
        return cls(
            name=name, host=table["host"], device=table["device"], user=table.get("user"), port=port,
            key=path(table.get("key"), "key"), python=table.get("python", "python3"), settings=dict(settings),
            known_hosts=path(table.get("known_hosts", str(DEFAULT_KNOWN_HOSTS)), "known_hosts") or "",
            remote_cache=table.get("remote_cache", DEFAULT_REMOTE_CACHE), timeout_s=timeout,
        )  # fmt: skip

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    @property
    def host_key_alias(self) -> str:
        """How the host appears in known_hosts (``[host]:port`` off port 22)."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"

    def ssh_options(self) -> list[str]:
        """Keys only, host keys verified against hwprof's known_hosts, no prompts, bounded connect time."""
        opts = [
            "-o", "BatchMode=yes", "-o", "PasswordAuthentication=no", "-o", "KbdInteractiveAuthentication=no",
            "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={self.known_hosts}",
            "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}", "-o", "LogLevel=ERROR",
        ]  # fmt: skip
        if self.key:
            opts += ["-o", "IdentitiesOnly=yes", "-i", self.key]
        return opts


def explain_ssh_failure(target: SshTarget, stderr: str) -> str:
    """One line saying why ssh could not run the command (exit status 255)."""
    text = stderr.strip()
    last = text.splitlines()[-1] if text else "no message"
    where = f"{target.name} ({target.destination}, port {target.port})"
    if "Host key verification failed" in text or "No ED25519 host key is known" in text or "host key for" in text.lower():
        return (f"{where}: the host key is not in {target.known_hosts} (or has changed); review its fingerprint and "
                f"accept it with `hwprof remote trust {target.name}`")
    if "Permission denied" in text:
        return f"{where}: authentication failed (keys only; key {target.key or 'ssh default'}): {last}"
    if "Connection refused" in text or "timed out" in text or "No route to host" in text or "Could not resolve" in text:
        return f"{where} is unreachable: {last}"
    return f"{where}: ssh failed: {last}"


class SshRunner(Runner):
    """The worker on a remote host, reached with the OpenSSH client (``ssh``/``scp`` on PATH)."""

    def __init__(self, target: SshTarget, device_settings: Mapping[str, Any] | None = None) -> None:
        super().__init__(target.device, dict(target.settings if device_settings is None else device_settings))
        self.target = target
        self._present: set[str] = set()  # sha256s known to be on the host (checked once per runner)

    # --- transport -------------------------------------------------------------------------------
    def _run(self, remote_command: str, stdin: str = "", timeout: float | None = None) -> subprocess.CompletedProcess:
        cmd = ["ssh", *self.target.ssh_options(), "-p", str(self.target.port), self.target.destination, remote_command]
        try:
            proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)
        except FileNotFoundError:
            raise DeviceUnavailable(f"{self.target.name}: the OpenSSH client `ssh` is not installed here") from None
        except subprocess.TimeoutExpired:
            raise DeviceUnavailable(f"{self.target.name}: no answer from {self.target.destination} within {timeout} s") from None
        if proc.returncode == SSH_FAILED:
            raise DeviceUnavailable(explain_ssh_failure(self.target, proc.stderr))
        return proc

    def _python(self, code: str, stdin: str = "", timeout: float | None = CONNECT_TIMEOUT_S * 3) -> str:
        """Run a short Python snippet with the remote interpreter; its stdout."""
        proc = self._run(f"{shlex.quote(self.target.python)} -c {shlex.quote(code)}", stdin, timeout)
        if proc.returncode != 0:
            raise DeviceUnavailable(self._remote_failure(proc))
        return proc.stdout

    def _remote_failure(self, proc: subprocess.CompletedProcess) -> str:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        if proc.returncode == 127 or "No such file" in tail[0] or "not found" in tail[0]:
            return (f"{self.target.name}: the remote Python {self.target.python!r} was not found on "
                    f"{self.target.host}; set 'python' in its [devices.{self.target.name}] table")
        if "No module named" in tail[0]:
            return (f"{self.target.name}: hwprof is not importable by {self.target.python} on {self.target.host} "
                    f"({tail[0]}); install hwprof there")
        return f"{self.target.name}: the remote command exited with {proc.returncode}: {tail[0]}"

    # --- artifacts ---------------------------------------------------------------------------------
    def remote_path(self, sha256: str, suffix: str) -> str:
        return f"{self.target.remote_cache.rstrip('/')}/{sha256}{suffix}"

    def _missing(self, wanted: dict[str, str]) -> set[str]:
        """Of ``{sha256: remote path}``, the ones the host does not hold with exactly those bytes.

        The same call creates the folders the missing ones will be copied into.
        """
        code = (
            "import hashlib, json, os, sys\n"
            "missing = []\n"
            "for sha, path in json.load(sys.stdin).items():\n"
            "    path = os.path.expanduser(path)\n"
            "    os.makedirs(os.path.dirname(path), exist_ok=True)\n"
            "    try:\n"
            "        h = hashlib.sha256()\n"
            "        with open(path, 'rb') as f:\n"
            "            for chunk in iter(lambda: f.read(1 << 20), b''):\n"
            "                h.update(chunk)\n"
            "        ok = h.hexdigest() == sha\n"
            "    except OSError:\n"
            "        ok = False\n"
            "    if not ok:\n"
            "        missing.append(sha)\n"
            "print(json.dumps(missing))\n"
        )
        return set(json.loads(self._python(code, json.dumps(wanted))))

    def _upload(self, local: str, remote: str) -> None:
        """scp to a temporary name beside the target, then rename: a cut transfer never looks complete."""
        tmp = f"{remote}.{os.getpid()}.tmp"  # its folder was made by _missing
        remote_tmp = tmp.replace("~/", "", 1) if tmp.startswith("~/") else tmp  # scp paths are relative to home
        cmd = ["scp", "-q", *self.target.ssh_options(), "-P", str(self.target.port), local,
               f"{self.target.destination}:{remote_tmp}"]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise DeviceUnavailable(explain_ssh_failure(self.target, proc.stderr) if proc.returncode == SSH_FAILED or
                                    "Permission denied" in proc.stderr else
                                    f"{self.target.name}: copying {local} failed: {proc.stderr.strip()[-300:]}")
        self._python(f"import os; os.replace(os.path.expanduser({tmp!r}), os.path.expanduser({remote!r}))")

    def ship(self, request: WorkRequest) -> WorkRequest:
        """``request`` with its artifacts on the remote host (copied when missing) and their paths there."""
        if not request.artifacts:
            return request
        remote = {a.sha256: self.remote_path(a.sha256, Path(a.path).suffix) for a in request.artifacts}
        unknown = {sha: path for sha, path in remote.items() if sha not in self._present}
        if unknown:
            for sha in self._missing(unknown):
                local = next(a.path for a in request.artifacts if a.sha256 == sha)
                self._upload(local, remote[sha])
            self._present.update(unknown)
        moved = tuple(replace(a, path=remote[a.sha256]) for a in request.artifacts)
        return replace(request, artifacts=moved)

    # --- requests ---------------------------------------------------------------------------------
    def submit(self, request: WorkRequest) -> WorkResult:
        """Ship the artifacts, run the worker remotely, read its reply; results carry the configured device name.

        The remote worker expands ``~`` in artifact paths itself (it runs in the user's home).
        """
        request = self.ship(request)
        payload = request.to_json()
        command = (
            f"{shlex.quote(self.target.python)} -c "
            + shlex.quote(
                "import json, os, sys\n"
                "req = json.load(sys.stdin)\n"
                "for a in req.get('artifacts', []):\n"
                "    a['path'] = os.path.expanduser(a['path'])\n"
                "from hwprof.worker import handle\n"
                "print(json.dumps(handle(req)))\n"
            )
        )
        proc = self._run(command, json.dumps(payload), self.target.timeout_s)
        try:
            reply = json.loads(proc.stdout)
        except ValueError:
            raise DeviceUnavailable(self._remote_failure(proc)) from None
        return self._renamed(parse_reply(reply))

    def _renamed(self, result: WorkResult) -> WorkResult:
        name, info = self.target.name, result.device_info
        where = f"{self.target.destination}:{self.target.port}"
        info = replace(info, name=name, extra={**info.extra, "adapter": info.name, "ssh": where})
        return WorkResult(info, result.host, tuple(replace(m, device=name) for m in result.measurements))


def trust_host(target: SshTarget, accept: bool, scan_timeout_s: int = CONNECT_TIMEOUT_S) -> list[str]:
    """The host's key fingerprints (``ssh-keyscan``); with ``accept`` they are added to hwprof's known_hosts.

    Returns the fingerprint lines shown to the user. Nothing is written unless ``accept``.
    """
    try:
        scan = subprocess.run(["ssh-keyscan", "-T", str(scan_timeout_s), "-p", str(target.port), target.host],
                              capture_output=True, text=True)  # fmt: skip
    except FileNotFoundError:
        raise DeviceUnavailable("ssh-keyscan (OpenSSH client) is not installed here") from None
    keys = [line for line in scan.stdout.splitlines() if line.strip() and not line.startswith("#")]
    if not keys:
        raise DeviceUnavailable(f"{target.name}: no host key received from {target.host}:{target.port} "
                                f"({(scan.stderr.strip().splitlines() or ['unreachable'])[-1]})")
    fingerprints = subprocess.run(["ssh-keygen", "-l", "-f", "-"], input="\n".join(keys) + "\n",
                                  capture_output=True, text=True).stdout.strip().splitlines()  # fmt: skip
    if accept:
        path = Path(target.known_hosts).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        existing = path.read_text().splitlines() if path.is_file() else []
        with open(path, "a") as f:
            for line in keys:
                if line not in existing:
                    f.write(line + "\n")
    return fingerprints


def remote_status(target: SshTarget) -> tuple[bool, str]:
    """Whether the remote device answers (connection, Python, hwprof, the adapter) and why not."""
    try:
        info, host = SshRunner(target).describe()
    except HwprofError as exc:
        return False, str(exc)
    return True, f"{info.extra.get('adapter')} {info.runtime} {info.runtime_version} on {host.get('hostname')}"


def targets_of(devices: Mapping[str, Mapping[str, Any]], base: Path | None = None) -> dict[str, SshTarget]:
    """The ``ssh`` devices of a config's ``[devices]`` table."""
    out = {}
    for name, table in devices.items():
        if not isinstance(table, Mapping):
            raise ConfigError(f"[devices.{name}] must be a table")
        kind = table.get("type")
        if kind != "ssh":
            raise ConfigError(f"device {name!r}: unknown type {kind!r}; supported: ssh")
        out[name] = SshTarget.from_config(name, table, base)
    return out


__all__ = ["SshRunner", "SshTarget", "explain_ssh_failure", "remote_status", "targets_of", "trust_host"]


class RemoteDevice(MeasuredElsewhere):
    """A device measured on another host over SSH (``SshRunner`` does); settings are checked where they apply."""

    def __init__(self, target: SshTarget) -> None:
        super().__init__(target.name, target.device, target.settings, f"{target.device} on {target.destination} over SSH")
        self.target = target

    def check(self) -> DeviceInfo:
        return SshRunner(self.target).describe()[0]
