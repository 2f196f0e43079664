"""`hwprof quickstart`: the whole loop in one command, its folder rules, resume and interrupt."""

from __future__ import annotations

import json
import sqlite3

import pytest

from hwprof.cli import quickstart_cmd
from hwprof.protocol import ProtocolSettings
from tests.hwprof.test_cli import one_line_error, run

QUICK = ProtocolSettings(min_warmup=1, max_warmup=4, warmup_window=2, min_runs=5, max_runs=20, max_time_s=0.3,
                         target_rel_ci=0.05, rounds=2, max_rounds=2, visit_runs=5)
ARGS = ["-n", "24", "--budget", "30", "--verify", "2"]


@pytest.fixture(autouse=True)
def quick_protocol(monkeypatch):
    monkeypatch.setattr(quickstart_cmd, "PROTOCOL", QUICK)


def measured(db):
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]


def test_quickstart_chains_every_step_and_writes_a_report(tmp_path, capsys):
    out = tmp_path / "qs"
    code, stdout, err = run(capsys, "quickstart", *ARGS, "-o", str(out))
    assert code == 0, err
    for step in ("1/5 profile", "2/5 latency predictors", "3/5 LayerNAS", "4/5 measure", "5/5 report"):
        assert step in stdout
    for alone in ("hwprof profile", "hwprof train", "hwprof adapt", "hwprof search", "hwprof report"):
        assert f"alone: {alone}" in stdout.replace("\n", " "), alone
    for model in ("gbdt", "mlp", "adapt"):
        assert (out / "predictors" / model / "predictor.json").is_file()
    assert list((out / "search").glob("*.json"))
    html = (out / "report.html").read_text()
    assert "<html" in html.lower() and "chosen networks" in html
    chosen = (out / "chosen.txt").read_text().split()
    assert 1 <= len(chosen) <= 2
    with sqlite3.connect(out / "hwprof.db") as conn:  # the chosen networks were measured for real
        stored = {r[0] for r in conn.execute("SELECT spec FROM architectures a JOIN measurements m USING (arch_id)")}
    assert set(chosen) <= stored
    assert json.loads((out / "quickstart.json").read_text())["n"] == 24
    assert "warning: mlp trained on" in err  # 19 training networks: the advice is given


def test_a_second_run_resumes_the_profile_and_replaces_the_rest(tmp_path, capsys):
    out = tmp_path / "qs"
    assert run(capsys, "quickstart", *ARGS, "-o", str(out))[0] == 0
    before = measured(out / "hwprof.db")
    code, stdout, err = run(capsys, "quickstart", *ARGS, "-o", str(out))
    assert code == 0, err
    assert measured(out / "hwprof.db") == before  # nothing measured twice (the chosen networks were stored)
    assert "skipped" in stdout or "already" in stdout


def test_a_folder_with_other_files_is_refused_untouched(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    code, _, err = run(capsys, "quickstart", *ARGS, "-o", str(out))
    assert code == 1 and "--overwrite" in one_line_error(err)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    (tmp_path / "file").write_text("x")
    code, _, err = run(capsys, "quickstart", *ARGS, "-o", str(tmp_path / "file"))
    assert code == 1 and "is a file" in one_line_error(err)


@pytest.mark.parametrize("argv, needle", [(["-n", "5"], "at least 20"), (["--verify", "0"], "--verify"),
                                          (["--device", "nope"], "nope")])
def test_bad_options_are_one_line_errors(tmp_path, capsys, argv, needle):
    code, _, err = run(capsys, "quickstart", *argv, "-o", str(tmp_path / "qs"))
    assert code == 1 and needle in one_line_error(err)
    assert not (tmp_path / "qs").exists()


def test_ctrl_c_while_profiling_keeps_what_was_measured(tmp_path, capsys, monkeypatch):
    from hwprof import profiling

    real = profiling.Profiler._store_one
    calls = {"n": 0}

    def store_then_interrupt(self, *a, **kw):
        real(self, *a, **kw)
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(profiling.Profiler, "_store_one", store_then_interrupt)
    out = tmp_path / "qs"
    code, _, err = run(capsys, "quickstart", *ARGS, "-o", str(out))
    assert code == 130
    assert "hwprof quickstart` again" in err
    assert measured(out / "hwprof.db") >= 3
