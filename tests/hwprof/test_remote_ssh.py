"""Remote devices over SSH, for real: an sshd started here on loopback, a throwaway key, a non-standard port.

Skipped with a reason where no OpenSSH server is installed (``.ci/run`` installs
Debian's ``openssh-server`` so CI connects for real).
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from hwprof.errors import DeviceUnavailable
from hwprof.remote import SshRunner, SshTarget, explain_ssh_failure, targets_of, trust_host
from hwprof.testing_sshd import free_port as _free_port
from hwprof.testing_sshd import keygen as _keygen
from hwprof.testing_sshd import local_sshd, sshd_path

pytestmark = pytest.mark.skipif(sshd_path() is None or shutil.which("ssh") is None,
                                reason="no OpenSSH server (sshd) or client here; `apt-get install openssh-server`")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """A private sshd on 127.0.0.1:<free port> accepting one throwaway key for the current user."""
    try:
        with local_sshd(tmp_path_factory.mktemp("sshd")) as server:
            yield {"port": server.port, "key": server.key, "python": server.python, "dir": server.folder}
    except DeviceUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def target(sshd, tmp_path):
    """A target whose host key is already trusted."""
    t = SshTarget(name="lab", host="127.0.0.1", device="ort-cpu", port=sshd["port"], key=sshd["key"],
                  python=sshd["python"], known_hosts=str(tmp_path / "known_hosts"),
                  remote_cache=str(tmp_path / "remote-cache"), settings={"intra_op_threads": 1})
    trust_host(t, accept=True)
    return t


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    import torch

    from hwprof.artifacts import export_module

    def build():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())

    return export_module(build, (1, 3, 16, 16), tmp_path_factory.mktemp("cache"), "ssh-tiny")


FAST = {"min_warmup": 1, "max_warmup": 4, "warmup_window": 2, "min_runs": 5, "max_runs": 30, "max_time_s": 1.0,
        "stop_quantile": 0.5}


def test_a_first_connection_to_an_unknown_host_is_refused_until_the_key_is_accepted(sshd, tmp_path):
    t = SshTarget(name="lab", host="127.0.0.1", device="ort-cpu", port=sshd["port"], key=sshd["key"],
                  python=sshd["python"], known_hosts=str(tmp_path / "kh"))
    with pytest.raises(DeviceUnavailable, match=r"host key is not in .*kh.*hwprof remote trust lab"):
        SshRunner(t).describe()
    shown = trust_host(t, accept=False)  # shows the fingerprints, writes nothing
    assert shown and all("SHA256:" in line for line in shown) and not (tmp_path / "kh").exists()
    trust_host(t, accept=True)
    info, host = SshRunner(t).describe()
    assert info.name == "lab" and info.extra["adapter"] == "ort-cpu" and "hostname" in host


def test_measurements_come_back_under_the_configured_name_and_artifacts_are_copied_once(target, artifact):
    from hwprof.protocol import ProtocolSettings

    runner = SshRunner(target)
    (m,) = runner.measure([artifact], ProtocolSettings(**FAST), interleaved=False)
    assert m.device == "lab" and m.artifact_sha256 == artifact.sha256 and m.stats.n_runs >= 5
    remote_file = Path(target.remote_cache) / f"{artifact.sha256}.onnx"
    assert remote_file.read_bytes() == Path(artifact.path).read_bytes()
    mtime = remote_file.stat().st_mtime_ns
    fresh = SshRunner(target)  # a new runner asks the host, which already holds the bytes: no copy
    assert fresh._missing({artifact.sha256: str(remote_file)}) == set()
    fresh.measure([artifact], ProtocolSettings(**FAST), interleaved=False)
    assert remote_file.stat().st_mtime_ns == mtime
    remote_file.write_bytes(b"truncated")  # damaged on the host: copied again
    SshRunner(target).measure([artifact], ProtocolSettings(**FAST), interleaved=False)
    assert remote_file.read_bytes() == Path(artifact.path).read_bytes()
    assert not list(Path(target.remote_cache).glob("*.tmp"))


def test_wrong_key_missing_python_and_a_closed_port_each_say_what_is_wrong(target, tmp_path):
    other = tmp_path / "other_key"
    _keygen(other)
    with pytest.raises(DeviceUnavailable, match="authentication failed"):
        SshRunner(replace(target, key=str(other))).describe()
    with pytest.raises(DeviceUnavailable, match=r"remote Python '/nowhere/python3' was not found"):
        SshRunner(replace(target, python="/nowhere/python3")).describe()
    with pytest.raises(DeviceUnavailable, match="is unreachable"):
        SshRunner(replace(target, port=_free_port())).describe()


def test_a_remote_adapter_error_is_raised_here_as_the_same_type(target):
    from hwprof.errors import ConfigError

    with pytest.raises(ConfigError, match="intra_op_threads"):
        SshRunner(replace(target, settings={"intra_op_threads": "many"})).describe()


@pytest.mark.slow  # exports two NB201 networks (~20 s on a loaded 2-core host); the runner tests above connect too
def lab_config(target, tmp_path) -> Path:
    """hwprof.toml naming ``target`` as the device ``lab``."""
    config = tmp_path / "hwprof.toml"
    config.write_text(
        f'[devices.lab]\ntype = "ssh"\nhost = "127.0.0.1"\nport = {target.port}\nkey = "{target.key}"\n'
        f'python = "{target.python}"\ndevice = "ort-cpu"\nknown_hosts = "{target.known_hosts}"\n'
        f'remote_cache = "{target.remote_cache}"\nsettings = {{ intra_op_threads = 1 }}\n'
    )
    return config


def lab_profile(config: Path, db: Path, indices: str = "0,1") -> list[str]:
    return ["profile", "--device", "lab", "--config", str(config), "--space", "nb201", "--indices", indices,
            "--db", str(db), "--rounds", "1", "--min-runs", "5", "--max-runs", "30", "--max-time-s", "1", "--drift-every", "0"]


def test_hwprof_profile_on_a_configured_ssh_device_stores_rows_under_its_name(target, tmp_path, capsys):
    from hwprof.cli.main import main
    from hwprof.store import Store

    config = lab_config(target, tmp_path)
    db = tmp_path / "r.db"
    argv = lab_profile(config, db)
    assert main(argv) == 0, capsys.readouterr().err
    with Store(db, create=False) as store:
        rows = store.measurements()
        assert [r.device for r in rows] == ["lab", "lab"] and store.measured_devices() == ["lab"]
        assert rows[0].host.get("hostname")
    assert main(argv) == 0  # resumes: both already stored, nothing measured again
    with Store(db, create=False) as store:
        assert len(store.measurements()) == 2


def test_config_tables_are_validated():
    from hwprof.errors import ConfigError

    with pytest.raises(ConfigError, match="passwords are not supported"):
        targets_of({"pi": {"type": "ssh", "host": "h", "device": "ort-cpu", "password": "x"}})
    with pytest.raises(ConfigError, match="unknown type 'telnet'"):
        targets_of({"pi": {"type": "telnet"}})
    with pytest.raises(ConfigError, match="'port' must be an integer"):
        targets_of({"pi": {"type": "ssh", "host": "h", "device": "ort-cpu", "port": "22"}})


def test_ssh_failures_are_explained_from_the_clients_message():
    t = SshTarget(name="pi", host="10.0.0.5", device="ort-cpu")
    assert "hwprof remote trust pi" in explain_ssh_failure(t, "Host key verification failed.\n")
    assert "authentication failed" in explain_ssh_failure(t, "pi@10.0.0.5: Permission denied (publickey).")
    assert "unreachable" in explain_ssh_failure(t, "ssh: connect to host 10.0.0.5 port 22: Connection timed out")


def test_remote_trust_and_list_commands(sshd, tmp_path, capsys):
    from hwprof.cli.main import main

    known = tmp_path / "kh"
    config = tmp_path / "hwprof.toml"
    config.write_text(
        f'[devices.lab]\ntype = "ssh"\nhost = "127.0.0.1"\nport = {sshd["port"]}\nkey = "{sshd["key"]}"\n'
        f'python = "{sshd["python"]}"\ndevice = "ort-cpu"\nknown_hosts = "{known}"\n'
    )
    assert main(["remote", "list", "--config", str(config)]) == 0
    listed = capsys.readouterr().out
    assert "lab" in listed and " no " in listed  # not trusted yet: unusable, with the reason
    assert main(["remote", "trust", "lab", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "SHA256:" in out and "--yes" in out and not known.exists()
    assert main(["remote", "trust", "lab", "--yes", "--config", str(config)]) == 0
    assert known.is_file() and "accepted" in capsys.readouterr().out
    assert main(["remote", "list", "--config", str(config)]) == 0
    assert "yes" in capsys.readouterr().out


def test_hwprof_devices_lists_remote_devices_and_meters(sshd, tmp_path, capsys):
    from hwprof.cli.main import main

    config = tmp_path / "hwprof.toml"
    config.write_text(f'[devices.gone]\ntype = "ssh"\nhost = "127.0.0.1"\nport = {_free_port()}\ndevice = "ort-cpu"\n'
                      f'known_hosts = "{tmp_path / "kh"}"\n')
    assert main(["devices", "--config", str(config)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "remote devices" in out and "gone" in out and "unreachable" in out
    assert "energy meters" in out and "rapl" in out


def test_profile_reads_the_energy_meter_on_the_remote_host(target, tmp_path, capsys):
    """--meter on an SSH device: the remote worker builds and reads the meter (here the csv meter on a power
    log that a logger thread writes at a constant 5 W, as an external meter's logging tool would)."""
    from hwprof.cli.main import main
    from hwprof.store import Store
    from tests.power_log import constant_power_log

    db = tmp_path / "e.db"
    with constant_power_log(tmp_path / "power.csv", 5.0) as log:
        code = main([*lab_profile(lab_config(target, tmp_path), db, "0"), "--meter", "csv", "--meter-set", f"path={log}"])
    assert code == 0, capsys.readouterr().err
    with Store(db, create=False) as store:
        (row,) = store.measurements()
    assert row.device == "lab" and row.meter == "csv"
    # 5 W over the timed loop / its runs: 5 x the mean latency plus the loop's own overhead
    assert 5.0 * row.mean_ms <= row.energy_mj < 5.0 * row.mean_ms * 1.5


def test_a_meter_unusable_on_the_remote_host_fails_before_anything_is_stored(target, tmp_path, capsys):
    from hwprof.cli.main import main

    db = tmp_path / "e.db"
    missing = tmp_path / "no-logger-running.csv"
    code = main([*lab_profile(lab_config(target, tmp_path), db, "0"), "--meter", "csv", "--meter-set", f"path={missing}"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1
    assert "meter 'csv' on lab" in err and "does not exist" in err
    assert not db.exists()
