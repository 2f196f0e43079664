"""train/evaluate/predict/adapt: outputs not silently replaced, ignored options refused, CSVs read one way,
bad rows named by file line, saved predictors checked on load, a replaced predictor leaves no stale files."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from hwprof.errors import ConfigError, DataError, PersistenceError
from hwprof.store import Store
from hwprof.types import Architecture
from predictors.data import from_csv, from_store, read_latency_table
from predictors.persistence import check_save_target, load_predictor
from tests.cli_helpers import one_line_error, run
from tests.hwprof.test_store import Bench, artifact_for, device_info, measurement
from tests.predictors.conftest import write_table

N = 60


@pytest.fixture(scope="module")
def files(tmp_path_factory, nb201_rows):
    archs, lat = nb201_rows
    root = tmp_path_factory.mktemp("inputs")
    table = root / "t.csv"
    write_table(table, archs[:N], {"cpu": lat["titanx_1"][:N]})
    plain = "".join(f"{a},{float(v)!r}\n" for a, v in zip(archs[:N], lat["titanx_1"][:N]))
    fixture = root / "fixture.csv"  # like benchmarks/data/ort-cpu-nb201.csv: comments, then arch,latency_ms
    fixture.write_text("# made by hand\n# second comment\narch,latency_ms\n" + plain, encoding="utf-8")
    bom = root / "excel.csv"  # as Excel saves it: a byte-order mark before the header
    bom.write_text("\ufeffarch,latency_ms\n" + plain, encoding="utf-8")
    return {"root": root, "table": table, "fixture": fixture, "bom": bom, "archs": archs, "lat": lat}


@pytest.fixture(scope="module")
def linear_dir(files, tmp_path_factory):
    out = tmp_path_factory.mktemp("pred") / "lin"
    from predictors.data import load_latency_data
    from predictors.training import train_predictor

    data = load_latency_data(csv_path=files["table"], target="cpu")
    train_predictor(data, "linear", val_fraction=0.2).save(out)
    return out


# --- 1: -o FILE of predict and adapt --suggest ------------------------------------------------------


def test_predict_output_is_not_replaced_without_overwrite(capsys, files, linear_dir, tmp_path):
    archs = tmp_path / "a.txt"
    archs.write_text("\n".join(files["archs"][:3]) + "\n")
    meta = linear_dir / "predictor.json"
    before = meta.read_text()
    assert "--overwrite" in one_line_error(capsys, "predict", linear_dir, "--archs", archs, "-o", meta)
    assert meta.read_text() == before  # the predictor's own file is intact
    out = tmp_path / "p.csv"
    out.write_text("keep\n")
    assert "exists; give --overwrite" in one_line_error(capsys, "predict", linear_dir, "--archs", archs, "-o", out)
    assert out.read_text() == "keep\n"
    code, _, err = run(capsys, "predict", linear_dir, "--archs", archs, "-o", out, "--overwrite")
    assert code == 0, err
    assert out.read_text().splitlines()[0] == "arch,predicted_ms" and len(out.read_text().splitlines()) == 4


def test_adapt_suggest_output_is_not_replaced_without_overwrite(capsys, files):
    out = files["root"] / "suggest.txt"
    out.write_text("keep\n")
    msg = one_line_error(capsys, "adapt", "--suggest", "-k", "3", "--sources-csv", files["table"], "-o", out)
    assert "exists; give --overwrite" in msg and out.read_text() == "keep\n"


# --- 2: --calibrated on a store without calibrated rows ------------------------------------------------


def test_calibrated_without_calibrated_rows_is_refused(tmp_path, files):
    db = tmp_path / "m.db"
    with Store(db) as store:
        bench = Bench(store, device_info(name="ort-cpu"))
        for spec, ms in zip(files["archs"][:5], files["lat"]["titanx_1"][:5]):
            arch = Architecture("nb201", spec)
            with store.transaction():
                store.add_architecture(arch)
                store.add_artifact(artifact_for(arch))
                store.add_measurement(bench.run_id, bench.device_id, measurement(arch, float(ms), device="ort-cpu"))
    assert len(from_store(db, "ort-cpu")) == 5  # raw data loads
    with pytest.raises(ConfigError, match="none of the 5 'ort-cpu' measurements .* has a calibrated latency.*--no-calibrate"):
        from_store(db, "ort-cpu", calibrated=True)


# --- 3: MLP scales ------------------------------------------------------------------------------------


@pytest.mark.parametrize("edit, needle", [
    (lambda d: d.update(y=np.array([d["y"][0], 0.0])), "the y scale is 0"),
    (lambda d: d.update(x_std=np.zeros_like(d["x_std"])), r"x_std\[0\] is 0"),
    (lambda d: d.update(x_std=-np.ones_like(d["x_std"])), r"x_std\[0\] is -1"),
])  # fmt: skip
def test_mlp_non_positive_scales_are_corrupt(tmp_path, files, edit, needle):
    from predictors.data import load_latency_data
    from predictors.training import train_predictor

    out = tmp_path / "mlp"
    data = load_latency_data(csv_path=files["table"], target="cpu")
    train_predictor(data, "mlp", {"max_epochs": 3}, val_fraction=0.0).save(out)
    arrays = dict(np.load(out / "scaling.npz"))
    edit(arrays)
    np.savez(out / "scaling.npz", **arrays)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(PersistenceError, match=rf"scaling\.npz is corrupt: {needle}; expected scales > 0"):
            load_predictor(out)


# --- 4: options a command would ignore ---------------------------------------------------------------


def test_ignored_options_are_refused(capsys, files, linear_dir, tmp_path):
    t, out = files["table"], tmp_path / "never"
    cases = [
        (["train", "--csv", t, "-m", "linear", "--node-runs", "3", "-o", out], "--node-runs applies to"),
        (["train", "--csv", t, "-m", "linear", "--cache-dir", tmp_path, "-o", out], "--cache-dir applies to"),
        (["train", "--csv", t, "-m", "linear", "--n-train", "10", "--val-fraction", "0.5", "-o", out], "not both"),
        (["evaluate", linear_dir, "--csv", t, "-d", "foo"], "--device 'foo' contradicts --target 'lat_cpu_ms'"),
        (["predict", linear_dir, "--arch", files["archs"][0], "--cache-dir", tmp_path], "--cache-dir applies to"),
        (["adapt", "--samples", files["fixture"], "--sources-csv", t, "--pool", files["fixture"]], "--pool restricts what --suggest"),
        (["adapt", "--samples", files["fixture"], "--sources-csv", t, "--select", "bogus"], "unknown --select 'bogus'"),
    ]
    for argv, needle in cases:
        assert needle in one_line_error(capsys, *argv), argv
    assert not out.exists()


# --- 5: save targets -------------------------------------------------------------------------------


def test_non_empty_folder_without_a_predictor_is_refused(tmp_path, linear_dir):
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("mine")
    with pytest.raises(PersistenceError, match="holds 1 file.*'notes.txt'.* but no predictor.json"):
        check_save_target(junk)
    with pytest.raises(PersistenceError, match=r"holds a saved model \(predictor.json\) but no transfer.json"):
        check_save_target(linear_dir, what="pretrained transfer model", marker="transfer.json")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert check_save_target(empty) == empty and check_save_target(linear_dir) == linear_dir


def test_replacing_a_predictor_removes_its_old_model_files(tmp_path, files):
    from predictors.data import load_latency_data
    from predictors.training import train_predictor

    out = tmp_path / "p"
    data = load_latency_data(csv_path=files["table"], target="cpu")
    train_predictor(data, "mlp", {"max_epochs": 3}).save(out)
    assert {"mlp.pt", "scaling.npz"} <= {p.name for p in out.iterdir()}
    train_predictor(data, "linear").save(out)
    assert sorted(p.name for p in out.iterdir()) == ["held_out_predictions.json", "linear.npz", "predictor.json"]
    assert load_predictor(out).name == "linear"


def test_adapt_refuses_a_predictor_folder_for_save_sources(capsys, files, linear_dir):
    msg = one_line_error(capsys, "adapt", "--samples", files["fixture"], "--sources-csv", files["table"], "--save-sources", linear_dir)
    assert "cannot save a pretrained transfer model" in msg


# --- 6/7: one CSV reading, rows by file line -----------------------------------------------------------------


def test_comments_bom_and_plain_latency_column(files):
    for path in (files["fixture"], files["bom"]):
        data = from_csv(path, None)
        assert len(data) == N and data.device == path.stem
        assert data.lines[0] == (4 if path == files["fixture"] else 2)
        np.testing.assert_allclose(data.latency_ms, files["lat"]["titanx_1"][:N])
    assert from_csv(files["fixture"], "latency_ms", label="pixel").device == "pixel"
    table = read_latency_table(files["table"])  # lat_<device>_ms tables read as before
    assert table.devices == ["cpu"] and table.lines[0] == 2


def test_train_reads_the_projects_fixture_csv(capsys, tmp_path):
    fixture = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "ort-cpu-nb201.csv"
    code, _, err = run(capsys, "train", "--csv", fixture, "-m", "linear", "-o", tmp_path / "p")
    assert code == 0, err
    assert json.loads((tmp_path / "p" / "predictor.json").read_text())["device"] == "ort-cpu-nb201"


def test_bad_rows_are_named_by_file_line(tmp_path, files):
    bad = tmp_path / "bad.csv"
    bad.write_text("# c\narch,lat_x_ms\n\n" + f"{files['archs'][0]},1.0\n{files['archs'][1]},oops\n")
    with pytest.raises(DataError, match="column 'lat_x_ms' line 5 holds 'oops'"):
        read_latency_table(bad)


def test_predict_names_the_line_of_a_bad_architecture(capsys, files, linear_dir, tmp_path):
    archs = tmp_path / "a.txt"
    archs.write_text(f"arch\n# comment\n\n{files['archs'][0]}\n|bogus|\n")
    assert "line 5 '|bogus|'" in one_line_error(capsys, "predict", linear_dir, "--archs", archs)


# --- 8: predictor.json fields ----------------------------------------------------------------------------


@pytest.mark.parametrize("patch, needle", [
    ({"device": 5}, "device must be a string or null, got 5"),
    ({"extra": "x"}, "extra must be a JSON object"),
    ({"state": {"file": "../t.csv"}}, "names the model file '../t.csv'"),
    ({"state": {"file": "/etc/passwd"}}, "names the model file '/etc/passwd'"),
])  # fmt: skip
def test_predictor_json_fields_are_checked(tmp_path, linear_dir, patch, needle):
    copy = tmp_path / "c"
    shutil.copytree(linear_dir, copy)
    meta = json.loads((copy / "predictor.json").read_text())
    meta.update(patch)
    (copy / "predictor.json").write_text(json.dumps(meta))
    with pytest.raises(PersistenceError, match=rf"predictor.json is corrupt: .*{needle.replace('(', '.').replace('[', '.')}"):
        load_predictor(copy)


def test_garbage_npz_is_a_corrupt_file(tmp_path, linear_dir):
    copy = tmp_path / "c"
    shutil.copytree(linear_dir, copy)
    (copy / "linear.npz").write_text("garbage")
    with pytest.raises(PersistenceError, match=r"linear\.npz is corrupt \(not a numpy \.npz of arrays\)$"):
        load_predictor(copy)


# --- 9: evaluate names the store's devices --------------------------------------------------------------


def test_evaluate_names_the_stores_devices(capsys, tmp_path, files, linear_dir):
    db = tmp_path / "m.db"
    with Store(db) as store:
        bench = Bench(store, device_info(name="ort-cpu"))
        arch = Architecture("nb201", files["archs"][0])
        with store.transaction():
            store.add_architecture(arch)
            store.add_artifact(artifact_for(arch))
            store.add_measurement(bench.run_id, bench.device_id, measurement(arch, 1.0, device="ort-cpu"))
    msg = one_line_error(capsys, "evaluate", linear_dir, "--db", db, "--other-device")
    assert "no measurements of the predictor's device 'cpu'; it holds ort-cpu: choose one with -d" in msg
