"""`hwprof profile` (and `search`) under interrupts and bad input: exit codes, the one line, what the store keeps."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hwprof import registry
from hwprof.cli.main import main

from .conftest import ScriptedDevice, ToySpace

ROOT = Path(__file__).resolve().parents[2]
FAST = ["--min-runs", "5", "--max-runs", "20", "--max-time-s", "1", "--target-ci", "0.05", "--drift-every", "0"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def lines(text):
    return [line for line in text.splitlines() if line.strip()]


def rows(db, sql):
    with sqlite3.connect(db) as con:
        return con.execute(sql).fetchall()


@pytest.fixture
def scripted(request):
    """The toy space and a scripted device named `scripted`; ``request.param``: the model call that gets Ctrl-C."""
    at_call = getattr(request, "param", -1)
    registry.register("space", "toy", ToySpace)
    registry.register("device", "scripted", lambda **settings: ScriptedDevice(interrupt_at_call=at_call, **settings))
    yield
    registry.unregister("space", "toy")
    registry.unregister("device", "scripted")


# --- Ctrl-C, in this process ------------------------------------------------------------------------------------------

# With these options a model takes 15 calls in round 0 (10 warm-up, 5 runs) and 7 in round 1 (2 + 5), which runs
# backwards: round 0 is calls 1-90, the 6th model completes its 2 rounds at call 97, Ctrl-C at call 100 lands in the
# 5th one's second visit.
GROUP = ["--device", "scripted", "--space", "toy", "-n", "6", "--rounds", "2", "--visit-runs", "5", "--interleave", "6",
         "--no-calibrate", *FAST]


@pytest.mark.parametrize("scripted", [100], indirect=True)
def test_ctrl_c_in_a_group_exits_130_with_one_line_and_keeps_the_finished_models(scripted, tmp_path, capsys):
    db = tmp_path / "h.db"
    code, out, err = run(capsys, "profile", *GROUP, "--db", db)
    assert code == 130 and "Traceback" not in err
    (line,) = [l for l in lines(err) if l.startswith("interrupted")]
    assert line == (f"interrupted: run 1 on scripted marked interrupted; 1 measurement kept in {db} (1 of them from "
                    "the group in progress, stop_reason 'interrupted'); run the same command to measure the rest")
    assert rows(db, "select stop_reason from measurements") == [("interrupted",)]
    assert rows(db, "select status from runs") == [("interrupted",)]


class HangUpDevice(ScriptedDevice):
    """Sends SIGHUP to this process at its 30th model call (the terminal went away)."""

    def prepare(self, artifact):
        handle = super().prepare(artifact)
        run_model = handle.run

        def run():
            if self.n_calls == 29:
                os.kill(os.getpid(), signal.SIGHUP)
            run_model()

        handle.run = run
        return handle


def test_sighup_is_handled_like_ctrl_c_and_exits_129(tmp_path, capsys):
    registry.register("space", "toy", ToySpace)
    registry.register("device", "scripted", HangUpDevice)
    before = signal.getsignal(signal.SIGHUP)
    try:
        code, _, err = run(capsys, "profile", "--device", "scripted", "--space", "toy", "-n", "6", "--rounds", "1", *FAST,
                           "--db", tmp_path / "h.db")
    finally:
        registry.unregister("space", "toy")
        registry.unregister("device", "scripted")
    assert code == 128 + signal.SIGHUP and "Traceback" not in err
    assert any(l.startswith("interrupted by SIGHUP: run 1 on scripted marked interrupted") for l in lines(err))
    assert rows(tmp_path / "h.db", "select status from runs") == [("interrupted",)]
    assert signal.getsignal(signal.SIGHUP) is before  # the previous handler is back


def test_ctrl_c_in_search_exits_130_with_one_line(tmp_path, capsys, monkeypatch):
    import nas.search

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(nas.search, "run_search", interrupted)
    code, _, err = run(capsys, "search", "--out", tmp_path / "out", "--db", tmp_path / "h.db")
    assert code == 130
    assert lines(err) == ["interrupted: `hwprof search` stopped before it finished; only what it had already written is kept"]


# --- signals to a real `hwprof profile` process --------------------------------------------------------------------

SCRIPT = textwrap.dedent(
    """
    import sys
    from hwprof import registry
    from tests.hwprof.conftest import ToySpace
    from tests.hwprof.plugins import ToyDevice, ToyExporter
    registry.register("exporter", "toy-json", ToyExporter)
    registry.register("device", "toy-cpu", ToyDevice)
    registry.register("space", "toy", ToySpace)
    from hwprof.cli.main import main
    sys.exit(main(sys.argv[1:]))
    """
)
# each model is timed for 0.5 s (the CI target is out of reach): 6 models take seconds after the first row arrives
SLOW = ["profile", "--device", "toy-cpu", "--space", "toy", "-n", "40", "--rounds", "1", "--set", "scale=300",
        "--min-runs", "5", "--max-runs", "100000", "--max-time-s", "0.5", "--target-ci", "0.000001", "--drift-every", "0"]


def _wait_for_a_row(db, proc, timeout_s=90.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if db.exists():
            try:
                if rows(db, "select count(*) from measurements")[0][0] >= 1:
                    return
            except sqlite3.OperationalError:  # tables not there yet
                pass
        time.sleep(0.05)
    proc.kill()
    pytest.fail("no measurement stored in time")


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signalled_profile_marks_its_run_interrupted_and_keeps_its_rows(tmp_path, capsys, toy_plugins, signum, code):
    """A second `hwprof profile` of the same measurement is refused while the first lives; SIGINT/SIGTERM then stop
    the first with one line, its run marked interrupted and its rows kept."""
    db = tmp_path / "h.db"
    script = tmp_path / "hwprof_cli.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(script), *SLOW, "--db", str(db)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_a_row(db, proc)
        second, _, err = run(capsys, *SLOW, "--db", db)
        assert second == 1 and f"(pid {proc.pid} on " in lines(err)[-1] and "corrupt each other" in lines(err)[-1]
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    label = "interrupted" if signum == signal.SIGINT else "interrupted by SIGTERM"
    assert "Traceback" not in err
    (line,) = [l for l in lines(err) if l.startswith("interrupted")]
    assert line.startswith(f"{label}: run 1 on toy-cpu marked interrupted; ")
    kept = rows(db, "select count(*) from measurements")[0][0]
    assert 1 <= kept < 40 and f"; {kept} measurement{'' if kept == 1 else 's'} kept in {db}" in line
    assert rows(db, "select status from runs") == [("interrupted",)]


# --- options ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--indices", "1_0"], "bad index range '1_0'"),
        (["--indices", ""], "no indices in ''"),
        (["--indices", ","], "no indices in ','"),
        (["--drift-every", "-5"], "drift_every must be an integer >= 0"),
        (["--drift-threshold", "-1"], "drift_threshold_rel must be a number > 0"),
        (["--drift-threshold", "0"], "drift_threshold_rel must be a number > 0"),
        (["--rounds", "5", "--max-rounds", "3"], "max_rounds must be >= rounds (5), got 3"),
    ],
)
def test_bad_profile_options_are_refused_before_any_run(tmp_path, capsys, argv, needle):
    db = tmp_path / "x.db"
    code, _, err = run(capsys, "profile", *argv, "--db", db)
    assert code == 1 and needle in lines(err)[-1] and len(lines(err)) == 1
    assert not db.exists() or rows(db, "select count(*) from runs") == [(0,)]


def test_more_networks_than_the_space_has_is_said_and_the_summary_gives_networks_per_minute(scripted, tmp_path, capsys):
    code, out, err = run(capsys, "profile", "--device", "scripted", "--space", "toy", "-n", "7", *FAST,
                         "--db", tmp_path / "h.db")
    assert code == 0, err
    assert "warning: -n 7 is more than the 6 architectures of space 'toy': profiling all 6" in lines(err)
    assert rows(tmp_path / "h.db", "select count(*) from measurements") == [(6,)]
    assert any(l.startswith("6 networks measured in ") and l.endswith(" networks/min") for l in lines(out))
