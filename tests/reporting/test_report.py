"""`hwprof report` / ``reporting.build_report``: inputs recognised by content, clear refusals, atomic output."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3

import pytest

from hwprof.cli.main import main
from hwprof.errors import ConfigError, DataError, HwprofError, StoreError
from reporting import ReportTable, build_report, detect_kind, load_input
from reporting.inputs import ModnasInput, PredictorInput, SearchInput, StoreInput
from tests.cli_helpers import one_line_error, run
from tests.reporting.conftest import N_ARCHS, UNSTABLE_INDEX, make_store, nb201_sample


def figures(page: str) -> list[dict]:
    """The figure specs the page draws (its JSON block)."""
    block = re.search(r'<script type="application/json" id="report-figures">(.*?)</script>', page, re.S)
    assert block is not None
    return json.loads(block.group(1).replace("<\\/", "</"))


# --- detection --------------------------------------------------------------------------------------------


def test_each_input_kind_is_recognised_by_its_contents(tiny_inputs, tmp_path):
    assert detect_kind(tiny_inputs["store"]) == "store"
    assert detect_kind(tiny_inputs["predictor"]) == "predictor"
    assert detect_kind(tiny_inputs["search"]) == "search"
    result_json = next(tiny_inputs["search"].glob("*_seed0.json"))
    assert detect_kind(result_json) == "search"
    renamed = tmp_path / "measurements.bin"  # a store is known by its SQLite header, not its name
    shutil.copy(tiny_inputs["store"], renamed)
    assert detect_kind(renamed) == "store"


def test_store_groups_the_newest_latencies_and_keeps_metadata(tiny_inputs):
    data = load_input(tiny_inputs["store"])
    assert isinstance(data, StoreInput)
    (group,) = data.groups
    archs, latency = nb201_sample()
    assert group.label == "ort-cpu · onnxruntime 1.18.0 · fp32" and group.estimator == "min"
    assert sorted(group.specs) == sorted(archs)
    assert sorted(group.latency_ms) == pytest.approx(sorted(latency * 0.97))  # the primary ("min") estimate
    assert group.n_unstable == 1 and data.unstable_specs == {"ort-cpu": (archs[UNSTABLE_INDEX],)}
    assert [d.exceeded for d in data.drift_checks] == [True]
    assert data.runs[0].host["cpu_model"] == "Test CPU 3000" and data.runs[0].protocol["rounds"] == 5


def test_predictor_input_carries_its_held_out_predictions(tiny_inputs):
    data = load_input(tiny_inputs["predictor"])
    assert isinstance(data, PredictorInput) and data.held_out is not None and data.held_out_missing == ""
    assert len(data.held_out.archs) == data.metrics.n == N_ARCHS - data.n_train


def test_search_input_reads_every_result_of_the_directory(tiny_inputs):
    data = load_input(tiny_inputs["search"])
    assert isinstance(data, SearchInput)
    (result,) = data.results
    assert result.algorithm == "layernas" and result.n_evaluations > 0 and result.pareto


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing.db", "does not exist"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "nothing hwprof report can read"),
    (lambda p: (p / "notes.txt").write_text("hello") and p / "notes.txt", "not a file hwprof report can read"),
    (lambda p: (p / "empty.db").write_bytes(b"") or p / "empty.db", "is empty, not an hwprof store"),
    (lambda p: (p / "text.db").write_text("not sqlite") and p / "text.db", "not an hwprof database"),
])  # fmt: skip
def test_bad_inputs_are_refused_in_one_line(tmp_path, capsys, make, message):
    path = make(tmp_path)
    with pytest.raises(HwprofError, match=message):
        build_report([path], tmp_path / "r.html")
    assert message in one_line_error(capsys, "report", path, "-o", tmp_path / "r2.html")
    assert not (tmp_path / "r.html").exists() and not (tmp_path / "r2.html").exists()


def test_foreign_and_table_less_sqlite_files_are_refused(tmp_path):
    foreign = tmp_path / "other.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE songs (title TEXT)")
    with pytest.raises(StoreError, match="foreign database.*songs"):
        load_input(foreign)
    bare = tmp_path / "bare.sqlite"
    sqlite3.connect(bare).execute("PRAGMA user_version = 1").connection.close()
    with pytest.raises(StoreError, match="not an hwprof"):
        load_input(bare)


def test_a_store_without_measurements_says_how_to_fill_it(tmp_path):
    from hwprof.store import Store

    Store(tmp_path / "new.db").close()
    with pytest.raises(DataError, match="holds no measurements yet.*hwprof profile"):
        load_input(tmp_path / "new.db")


# --- held-out predictions ----------------------------------------------------------------------------------


def test_an_old_predictor_directory_says_why_the_scatter_is_absent(tiny_inputs, tmp_path):
    from predictors.training import HELD_OUT_FILE

    old = tmp_path / "old"
    shutil.copytree(tiny_inputs["predictor"], old)
    (old / HELD_OUT_FILE).unlink()
    data = load_input(old)
    assert isinstance(data, PredictorInput) and data.held_out is None and "retrain" in data.held_out_missing
    page = build_report([old], tmp_path / "r.html").read_text(encoding="utf-8")
    assert "no predicted-vs-measured plot" in page and figures(page) == []


def test_held_out_predictions_of_another_predictor_are_not_drawn(tiny_inputs, tmp_path):
    from predictors.training import HELD_OUT_FILE

    moved = tmp_path / "moved"
    shutil.copytree(tiny_inputs["predictor"], moved)
    doc = json.loads((moved / HELD_OUT_FILE).read_text())
    doc["predictor"]["created_at"] = "1999-01-01T00:00:00+00:00"
    (moved / HELD_OUT_FILE).write_text(json.dumps(doc))
    data = load_input(moved)
    assert data.held_out is None and "belongs to another predictor" in data.held_out_missing


# --- the page ---------------------------------------------------------------------------------------------------


def test_report_embeds_plotly_and_draws_each_input(tiny_inputs, tmp_path):
    out = build_report([tiny_inputs["store"], tiny_inputs["predictor"], tiny_inputs["search"]], tmp_path / "r.html",
                       title="T <1>")  # fmt: skip
    page = out.read_text(encoding="utf-8")
    assert "<title>T &lt;1&gt;</title>" in page
    from plotly.offline import get_plotlyjs

    assert page.count(get_plotlyjs()) == 1  # offline: plotly.js inlined once ...
    own = page.replace(get_plotlyjs(), "")
    assert "<script src" not in own and "http" not in own  # ... and nothing fetched from anywhere
    specs = figures(page)
    assert len(specs) == 3
    box, scatter, front = (s["figure"] for s in specs)
    assert box["data"][0]["type"] == "box" and len(box["data"][0]["y"]) == N_ARCHS
    held = load_input(tiny_inputs["predictor"]).held_out
    names = [t.get("name") for t in scatter["data"]]
    assert "±10%" in names and "predicted = measured" in names
    points = scatter["data"][names.index("held-out architecture")]
    assert points["x"] == list(held.measured_ms) and points["y"] == list(held.predicted_ms)
    band_lo, band_hi = scatter["data"][0]["y"], scatter["data"][1]["y"]
    assert band_hi[0] / band_lo[0] == pytest.approx(1.1 / 0.9)
    assert "Spearman" in scatter["layout"]["title"]["text"]
    front_names = [t.get("name") for t in front["data"]]
    assert "Pareto front" in front_names and "chosen (best feasible)" in front_names
    assert "drift: 1 of 1 drift checks exceeded" in page and "unstable: 1 architecture(s) on ort-cpu" in page
    assert "Test CPU 3000" in page and "visit_runs" in page  # host and protocol metadata
    assert not list(tmp_path.glob(".*.tmp"))


def test_an_existing_report_is_refused_unless_overwrite(tiny_inputs, tmp_path, capsys):
    out = tmp_path / "r.html"
    out.write_text("keep me")
    with pytest.raises(ConfigError, match="exists; give --overwrite to replace it"):
        build_report([tiny_inputs["store"]], out)
    assert "exists; give --overwrite" in one_line_error(capsys, "report", tiny_inputs["store"], "-o", out)
    assert out.read_text() == "keep me"
    code, stdout, err = run(capsys, "report", tiny_inputs["store"], "-o", out, "--overwrite", "--title", "again")
    assert code == 0, err
    assert "<title>again</title>" in out.read_text(encoding="utf-8") and "wrote" in stdout
    with pytest.raises(ConfigError, match="is a directory"):
        build_report([tiny_inputs["store"]], tmp_path)


def test_extra_sections_are_typed_tables(tiny_inputs, tmp_path):
    table = ReportTable(("architecture", "predicted ms", "measured ms"), (("|a<b|", 1.23456, 1.3), ("x", None, 2)),
                        note="measured after the search")  # fmt: skip
    page = build_report([tiny_inputs["store"]], tmp_path / "r.html", extra={"chosen architectures": table}).read_text()
    assert "<h2>chosen architectures</h2>" in page and "|a&lt;b|" in page and ">1.235<" in page
    assert "measured after the search" in page
    with pytest.raises(ConfigError, match="row 0 has 2 values; expected 3"):
        ReportTable(("a", "b", "c"), (("x", 1),))
    with pytest.raises(ConfigError, match="expected a ReportTable"):
        build_report([tiny_inputs["store"]], tmp_path / "r2.html", extra={"rows": [("a", 1)]})  # type: ignore[dict-item]


def test_a_modnas_front_json_is_drawn_per_device(tmp_path):
    """The file `hwprof modnas front --json` writes (its FrontEntry.to_json entries)."""
    from nas.search.modnas import FrontEntry

    entries = [FrontEntry((w, 1 - w), f"|arch{i}|", (i,), 0.5 + w, 2.0 + 3 * w, 10.0 - 5 * w).to_json()
               for i, w in enumerate((0.0, 0.5, 1.0))]  # fmt: skip
    path = tmp_path / "front.json"
    path.write_text(json.dumps({"device": "pixel3", "accuracy_source": "surrogate: test", "mode": "surrogate", "front": entries}))
    assert detect_kind(path) == "modnas-front"
    data = load_input(path)
    assert isinstance(data, ModnasInput) and data.fronts[0].device == "pixel3"
    assert data.fronts[0].latency == (2.0, 3.5, 5.0) and data.fronts[0].latency_unit == "ms"
    (spec,) = figures(build_report([path], tmp_path / "r.html").read_text(encoding="utf-8"))
    trace = spec["figure"]["data"][0]
    assert trace["name"] == "pixel3" and trace["x"] == [2.0, 3.5, 5.0] and trace["y"] == [90.0, 92.5, 95.0]


@pytest.mark.slow
def test_a_trained_modnas_directory_gives_a_front_per_training_device(tmp_path):
    from nas.search.modnas import train_modnas
    from tests.nas.test_modnas_train import DEVICES, tiny

    out = train_modnas(tiny(tmp_path / "modnas"))
    assert detect_kind(out) == "modnas"
    data = load_input(out)
    assert [f.device for f in data.fronts] == list(DEVICES) and all(len(f.specs) == 24 for f in data.fronts)
    assert all(f.latency_unit == "ms" for f in data.fronts)  # table devices: absolute latency from the table
    (spec,) = figures(build_report([out], tmp_path / "r.html").read_text(encoding="utf-8"))
    assert [t["name"] for t in spec["figure"]["data"]] == list(DEVICES)
    assert main(["modnas", "front", str(out), "--device", "samsung_s7", "--json", str(tmp_path / "s7.json")]) == 0
    (front,) = load_input(tmp_path / "s7.json").fronts
    assert front.device == "samsung_s7" and len(front.specs) == 24 and front.latency_unit == "ms"


def test_make_store_fixture_is_an_hwprof_store(tmp_path):
    """The fixture's store is what `hwprof show` reads (so the report tests read a real store)."""
    db = make_store(tmp_path / "s.db", drift_exceeded=False)
    data = load_input(db)
    assert isinstance(data, StoreInput) and data.summary.counts["measurements"] == N_ARCHS
    page = build_report([db], tmp_path / "r.html").read_text(encoding="utf-8")
    assert "all 1 drift checks stayed within their threshold" in page


def test_a_large_group_draws_its_outliers_only():
    from reporting.inputs import LatencyGroup
    from reporting.sections import MAX_BOX_POINTS, latency_distribution

    def group(n: int) -> LatencyGroup:
        return LatencyGroup("d", "rt 1", "fp32", "min", {}, tuple(map(str, range(n))), tuple(1.0 + i for i in range(n)), 0)

    data = StoreInput(None, None, (group(10), group(MAX_BOX_POINTS + 1)), (), (), {})  # type: ignore[arg-type]
    small, large = latency_distribution(data).data
    assert small.boxpoints == "all" and large.boxpoints == "outliers"
