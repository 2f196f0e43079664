"""A throwaway OpenSSH server on loopback, for testing remote devices for real (tests, benchmarks).

``local_sshd(folder)`` starts ``sshd`` on 127.0.0.1 at a free port with a fresh
host key and a fresh user key authorised for the current user (keys only, no
PAM), and a ``python`` wrapper that runs this interpreter with this checkout
importable; it yields an :class:`LocalSshd` and stops the server on exit.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from hwprof.errors import DeviceUnavailable

ROOT = Path(__file__).resolve().parents[1]


def sshd_path() -> str | None:
    """The OpenSSH server binary, or None when it is not installed."""
    return shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


@dataclass(frozen=True)
class LocalSshd:
    port: int
    key: str  # the authorised user key (private)
    python: str  # runs this interpreter with this checkout importable
    folder: Path


@contextlib.contextmanager
def local_sshd(folder: Path, start_timeout_s: float = 10.0) -> Iterator[LocalSshd]:
    binary = sshd_path()
    if binary is None or shutil.which("ssh") is None:
        raise DeviceUnavailable("no OpenSSH server (sshd) or client here; `apt-get install openssh-server`")
    folder.mkdir(parents=True, exist_ok=True)
    keygen(folder / "host_key")
    keygen(folder / "user_key")
    (folder / "authorized_keys").write_text((folder / "user_key.pub").read_text())
    os.chmod(folder / "authorized_keys", 0o600)
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
    port = free_port()
    (folder / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_key'}\n"
        f"AuthorizedKeysFile {folder / 'authorized_keys'}\nPidFile {folder / 'sshd.pid'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\nUsePAM no\n"
        "StrictModes no\nPermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\nLogLevel ERROR\n"
    )
    python = folder / "python"
    python.write_text(f"#!/bin/sh\nPYTHONPATH={ROOT} exec {sys.executable} \"$@\"\n")
    python.chmod(0o755)
    proc = subprocess.Popen([binary, "-D", "-e", "-f", str(folder / "sshd_config")], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            if proc.poll() is not None:
                raise DeviceUnavailable(f"sshd did not start: {proc.stderr.read().strip()[-300:]}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise DeviceUnavailable(f"sshd did not listen on 127.0.0.1:{port} within {start_timeout_s} s")
            time.sleep(0.1)
        yield LocalSshd(port, str(folder / "user_key"), str(python), folder)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
