"""`hwprof train/evaluate/predict/adapt` through the real entry point: outputs, saved metadata, one-line errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from hwprof.cli.main import main
from hwprof.store import Store
from hwprof.types import Architecture
from predictors.persistence import load_predictor, read_info
from tests.hwprof.test_store import Bench, artifact_for, device_info, measurement
from tests.predictors.conftest import write_table


DEVICES = ("titanx_1", "titanx_32", "silver_4114", "pixel3", "2080ti_1")
GBDT_FAST = ["--param", "n_estimators=40", "--param", "learning_rate=0.2"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got: {err!r}"
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def table(tmp_path_factory, nb201_rows):
    """A 400-row NB201 benchmark CSV with five device columns."""
    archs, lat = nb201_rows
    path = tmp_path_factory.mktemp("table") / "bench.csv.gz"
    write_table(path, archs, {d: lat[d] for d in DEVICES}, gz=True)
    return path, archs, lat


@pytest.fixture(scope="module")
def store_db(tmp_path_factory, nb201_rows):
    """A store with 80 NB201 architectures measured on 'ort-cpu' (latencies of silver_4114) and on 'other'."""
    archs, lat = nb201_rows
    db = tmp_path_factory.mktemp("store") / "h.db"
    with Store(db) as store:
        for name, column in (("ort-cpu", "silver_4114"), ("other", "titanx_1")):
            bench = Bench(store, device_info(name=name))
            for spec, ms in zip(archs[:80], lat[column][:80]):
                arch = Architecture("nb201", spec)
                with store.transaction():
                    store.add_architecture(arch)
                    store.add_artifact(artifact_for(arch))
                    store.add_measurement(bench.run_id, bench.device_id, measurement(arch, float(ms), device=name))
    return db


def train_argv(path, out):
    return ["train", "--csv", path, "--target", "lat_titanx_1_ms", "--n-train", 300, *GBDT_FAST, "-o", out]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, table):
    """A gbdt predictor of titanx_1 trained on 300 rows of the table."""
    out = tmp_path_factory.mktemp("trained") / "p"
    assert main([str(a) for a in train_argv(table[0], out)]) == 0
    return out, ""


# --- train / evaluate / predict ----------------------------------------------------------------


def test_train_csv_prints_metrics_and_saves_held_out_metrics(table, tmp_path, capsys):
    out = tmp_path / "p"
    code, stdout, err = run(capsys, *train_argv(table[0], out))
    assert code == 0, err
    for col in ("RMSE ms", "MAPE", "±5%", "±10%", "Spearman", "Kendall"):
        assert col in stdout
    assert "validation" in stdout and "100" in stdout
    info = read_info(out)
    assert info.name == "gbdt" and info.device == "titanx_1" and info.n_train == 300
    assert info.metrics is not None and info.metrics.n == 100 and info.metrics.spearman > 0.8
    assert info.extra["split"] == {"seed": 0, "val_fraction": 0.2, "n_train": 300, "n_val": 100}
    assert info.schema.kind == "onehot+counts:nb201"


def test_predict_one_and_many(trained, table, tmp_path, capsys):
    out, _ = trained
    _, archs, _ = table
    expected = load_predictor(out).predict_archs(archs[:3])
    code, stdout, err = run(capsys, "predict", out, "--arch", archs[0])
    assert code == 0, err
    assert stdout.strip() == f"{expected[0]:.4f} ms"
    arch_file = tmp_path / "archs.txt"
    arch_file.write_text("# three networks\n" + "\n".join(archs[:3]) + "\n\n")
    code, stdout, err = run(capsys, "predict", out, "--archs", arch_file)
    assert code == 0, err
    code, dash, err = run(capsys, "predict", out, "--archs", arch_file, "-o", "-")  # "-" is stdout, not a file named "-"
    assert code == 0 and dash == stdout and not (tmp_path / "-").exists(), err
    rows = list(csv.DictReader(stdout.splitlines()))
    assert [r["arch"] for r in rows] == archs[:3]
    np.testing.assert_allclose([float(r["predicted_ms"]) for r in rows], expected, rtol=1e-5)
    csv_out = tmp_path / "pred.csv"
    code, _, err = run(capsys, "predict", out, "--archs", arch_file, "-o", csv_out)
    assert code == 0, err
    assert list(csv.DictReader(csv_out.open()))[2]["arch"] == archs[2]


def test_evaluate_on_csv_matches_library_metrics(trained, table, capsys):
    out, _ = trained
    path, archs, lat = table
    code, stdout, err = run(capsys, "evaluate", out, "--csv", path, "--target", "titanx_1")
    assert code == 0, err
    assert "400" in stdout
    from predictors.metrics import evaluate_predictions

    m = evaluate_predictions(lat["titanx_1"], load_predictor(out).predict_archs(archs))
    assert f"{m.spearman:.4f}" in stdout


def test_train_and_evaluate_from_a_store(store_db, tmp_path, capsys):
    out = tmp_path / "lin"
    code, stdout, err = run(capsys, "train", "--db", store_db, "--device", "ort-cpu", "--model", "linear", "--features", "onehot", "-o", out)
    assert code == 0, err
    info = read_info(out)
    assert info.name == "linear" and info.device == "ort-cpu" and info.metrics.n == 16
    assert info.schema.kind == "onehot:nb201"
    code, stdout, err = run(capsys, "evaluate", out, "--db", store_db)
    assert code == 0, err
    assert "80" in stdout


def test_train_mlp_with_params_and_seed_is_reproducible(table, tmp_path, capsys):
    path, archs, _ = table
    outs = []
    for name in ("m1", "m2"):
        out = tmp_path / name
        code, _, err = run(capsys, "train", "--csv", path, "--target", "pixel3", "--model", "mlp", "--n-train", 60, "--param", "max_epochs=5",
                           "--param", "hidden_sizes=8,8", "--seed", 4, "-o", out)
        assert code == 0, err
        outs.append(load_predictor(out))
    assert outs[0].hidden_sizes == (8, 8) and outs[0].random_state == 4
    np.testing.assert_array_equal(outs[0].predict_archs(archs[:20]), outs[1].predict_archs(archs[:20]))


@pytest.mark.slow
def test_ops_predictor_profiles_kernels_and_predicts_unseen_architectures(nb201_rows, tmp_path, capsys):
    archs, lat = nb201_rows
    db = tmp_path / "ops.db"
    settings = {"intra_op_threads": 1}
    with Store(db) as store:
        bench = Bench(store, device_info(name="ort-cpu", settings=settings))
        for spec, ms in zip(archs[:6], lat["silver_4114"][:6]):
            arch = Architecture("nb201", spec)
            with store.transaction():
                store.add_architecture(arch)
                store.add_artifact(artifact_for(arch))
                store.add_measurement(bench.run_id, bench.device_id, measurement(arch, float(ms), settings=settings))
    out = tmp_path / "ops"
    code, stdout, err = run(capsys, "train", "--db", db, "--model", "ops", "--node-runs", 3, "--val-fraction", 0.34,
                            "--cache-dir", tmp_path / "cache", "-o", out)
    assert code == 0, err
    info = read_info(out)
    assert info.name == "ops" and info.extra["space"] == "nb201" and info.metrics.n == 2
    code, stdout, err = run(capsys, "predict", out, "--arch", archs[10], "--cache-dir", tmp_path / "cache")
    assert code == 0, err
    assert float(stdout.split()[0]) > 0


# --- adapt -------------------------------------------------------------------------------------


def test_suggest_prints_k_architectures_and_writes_them(table, tmp_path, capsys):
    path, archs, _ = table
    listing = tmp_path / "measure.txt"
    code, stdout, err = run(capsys, "adapt", "--sources-csv", path, "--source-devices", "titanx_32,silver_4114,pixel3",
                            "--suggest", "-k", 6, "-o", listing)
    assert code == 0, err
    chosen = listing.read_text().split()
    assert len(chosen) == 6 and len(set(chosen)) == 6 and set(chosen) <= set(archs)
    for spec in chosen:
        assert str(archs.index(spec)) in stdout  # its row in the source table


def test_adapt_from_samples_saves_a_predictor(table, tmp_path, capsys):
    path, archs, lat = table
    samples = tmp_path / "s.csv"
    samples.write_text("arch,latency_ms\n" + "".join(f"{a},{v}\n" for a, v in zip(archs[:10], lat["titanx_1"][:10])))
    out = tmp_path / "adapted"
    code, stdout, err = run(capsys, "adapt", "--samples", samples, "--device", "titanx_1", "--sources-csv", path,
                            "--method", "nnls", "-o", out)
    assert code == 0, err
    assert "main sources" in stdout
    info = read_info(out)
    assert info.device == "titanx_1" and info.extra["transfer"]["method"] == "nnls"
    assert "titanx_1" not in info.extra["transfer"]["source_devices"]  # the new device is never its own source
    code, stdout, err = run(capsys, "evaluate", out, "--csv", path, "--target", "titanx_1")
    assert code == 0, err


def test_adapt_from_a_store_reports_held_out_metrics_and_reuses_a_saved_model(store_db, table, tmp_path, capsys):
    path, _, _ = table
    model_dir = tmp_path / "transfer"
    code, stdout, err = run(capsys, "adapt", "--db", store_db, "--device", "ort-cpu", "-k", 8, "--sources-csv", path,
                            "--method", "ridge", "--save-sources", model_dir, "-o", tmp_path / "a1")
    assert code == 0, err
    assert "held out" in stdout
    assert read_info(tmp_path / "a1").metrics.n == 72
    code, stdout, err = run(capsys, "adapt", "--db", store_db, "--device", "ort-cpu", "-k", 8, "--sources-model", model_dir)
    assert code == 0, err
    assert "ridge from 8 samples" in stdout


def test_embedding_suggests_its_references_and_adapts_from_a_saved_model(table, tmp_path, capsys):
    path, archs, lat = table
    model_dir, listing = tmp_path / "emb", tmp_path / "refs.txt"
    code, stdout, err = run(capsys, "adapt", "--sources-csv", path, "--source-devices", "titanx_32,silver_4114,pixel3",
                            "--method", "embedding", "--param", "steps=30", "--param", "mix_devices=2",
                            "--suggest", "-k", 4, "-o", listing, "--save-sources", model_dir)
    assert code == 0, err
    refs = listing.read_text().split()
    assert len(refs) == 4 and "reference architectures" in " ".join(stdout.split())
    samples = tmp_path / "s.csv"
    samples.write_text("".join(f"{a},{lat['titanx_1'][archs.index(a)]}\n" for a in refs))
    code, stdout, err = run(capsys, "adapt", "--samples", samples, "--device", "titanx_1", "--sources-model", model_dir,
                            "-o", tmp_path / "a")
    assert code == 0, err
    info = read_info(tmp_path / "a")
    assert info.name == "mlp" and info.extra["transfer"]["method"] == "embedding"
    assert info.extra["transfer"]["samples"] == refs
    code, _, err = run(capsys, "adapt", "--samples", samples, "--sources-model", model_dir, "--method", "nnls")
    assert code == 1 and "pretrained 'embedding' model" in one_line_error(err)


# --- bad input: one line, exit 1 ------------------------------------------------------------------


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory, table, trained, store_db):
    path, archs, lat = table
    out, _ = trained
    tmp_path = tmp_path_factory.mktemp("bad")
    negative = tmp_path / "neg.csv"
    write_table(negative, archs[:50], {"dev": np.where(np.arange(50) == 7, -1.0, lat["titanx_1"][:50])})
    nan = tmp_path / "nan.csv"
    nan.write_text("arch,lat_dev_ms\n" + "".join(f"{a},{'nan' if i == 3 else 1.5}\n" for i, a in enumerate(archs[:20])))
    fbnet = tmp_path / "fb.csv"
    fbnet.write_text("arch,lat_titanx_1_ms\n" + "".join(f"{'|'.join(['skip'] * (22 - i) + ['k3_e1'] * i)},1.0\n" for i in range(3)))
    newer = tmp_path / "newer"
    newer.mkdir()
    for f in out.iterdir():
        (newer / f.name).write_bytes(f.read_bytes())
    meta = json.loads((newer / "predictor.json").read_text())
    meta["format_version"] = 99
    (newer / "predictor.json").write_text(json.dumps(meta))
    (tmp_path / "emptydir").mkdir()
    empty_db = tmp_path / "empty.db"
    Store(empty_db).close()
    bad_samples = tmp_path / "bad_samples.csv"
    bad_samples.write_text(f"{archs[0]},1.0\n{archs[1]},-3\n")
    one_sample = tmp_path / "one.csv"
    one_sample.write_text(f"arch,latency_ms\n{archs[0]},1.0\n")
    return {
        "csv": path, "p": out, "neg": negative, "nan": nan, "fb": fbnet, "newer": newer, "db": store_db,
        "empty": empty_db, "emptydir": tmp_path / "emptydir", "bad_samples": bad_samples, "one": one_sample, "missing": tmp_path / "nope.db",
    }  # fmt: skip


BAD = [
    (["train", "--csv", "{csv}", "--target", "titanx_1", "--n-train", "3", "-o", "{tmp}"], "at least 5 training architectures, got 3"),
    (["train", "--csv", "{neg}", "--target", "dev", "-o", "{tmp}"], "latency of"),
    (["train", "--csv", "{nan}", "--target", "dev", "-o", "{tmp}"], "expected a finite number"),
    (["train", "--csv", "{csv}", "--target", "lat_nope_ms", "-o", "{tmp}"], "no latency column 'lat_nope_ms'"),
    (["train", "--csv", "{csv}", "-o", "{tmp}"], "--csv needs --target"),
    (["train", "--csv", "{csv}", "--db", "{db}", "--target", "x", "-o", "{tmp}"], "exactly one data source"),
    (["train", "--csv", "{csv}", "--target", "titanx_1", "--features", "magic", "-o", "{tmp}"], "unknown --features 'magic'"),
    (["train", "--csv", "{csv}", "--target", "titanx_1", "--model", "forest", "-o", "{tmp}"], "unknown predictor 'forest'"),
    (["train", "--csv", "{csv}", "--target", "titanx_1", "--param", "depth=3", "-o", "{tmp}"], "no parameter 'depth'"),
    (["train", "--csv", "{csv}", "--target", "titanx_1", "--param", "n_estimators=0", "-o", "{tmp}"], "n_estimators must be"),
    (["train", "--csv", "{csv}", "--target", "titanx_1", "--val-fraction", "1.5", "-o", "{tmp}"], "--val-fraction must be in"),
    (["train", "--db", "{empty}", "--device", "ort-cpu", "-o", "{tmp}"], "holds no measurements"),
    (["train", "--db", "{missing}", "--device", "ort-cpu", "-o", "{tmp}"], "no such database"),
    (["train", "--db", "{db}", "-o", "{tmp}"], "choose the device with --device"),
    (["train", "--db", "{db}", "--device", "ort-cpu", "--space", "fbnet", "-o", "{tmp}"], "no measurements of space 'fbnet'"),
    (["train", "--csv", "{csv}", "--target", "titanx_1", "--model", "ops", "-o", "{tmp}"], "train it with --db, not --csv"),
    (["train", "--db", "{db}", "--device", "ort-cpu", "--model", "ops", "--features", "onehot", "-o", "{tmp}"], "has fixed features"),
    (["train", "--db", "{db}", "--device", "other", "--model", "ops", "-o", "{tmp}"], "is not one of ort-cpu"),
    (["evaluate", "{p}", "--csv", "{csv}", "--target", "pixel3"], "trained for device 'titanx_1'"),
    (["evaluate", "{p}", "--csv", "{fb}", "--target", "titanx_1"], "does not hold architectures of the predictor's space 'nb201'"),
    (["evaluate", "{newer}", "--csv", "{csv}", "--target", "titanx_1"], "newer than this hwprof supports"),
    (["predict", "{newer}", "--arch", "x"], "newer than this hwprof supports"),
    (["predict", "{emptydir}", "--arch", "x"], "predictor.json is missing"),
    (["predict", "{p}", "--arch", "|bogus|"], "architectures of the predictor's space 'nb201'"),
    (["predict", "{p}"], "exactly one of --arch"),
    (["adapt", "--samples", "{bad_samples}", "--sources-csv", "{csv}"], "line 2 has latency -3.0"),
    (["adapt", "--samples", "{one}", "--sources-csv", "{csv}"], "at least 2 measured architectures"),
    (["adapt", "--samples", "{one}", "--sources-csv", "{csv}", "--method", "magic"], "unknown few-shot method 'magic'"),
    (["adapt", "--samples", "{one}", "--sources-csv", "{csv}", "--source-devices", "nope"], "unknown source device"),
    (["adapt", "--samples", "{one}", "--device", "pixel3", "--sources-csv", "{csv}", "--source-devices", "pixel3"], "cannot be one of its own"),
    (["adapt", "--samples", "{one}"], "exactly one of --sources-csv"),
    (["adapt", "--db", "{db}", "--device", "ort-cpu", "-k", "80", "--sources-csv", "{csv}"], "leaves no test architectures"),
    (["adapt", "--sources-model", "{p}", "--suggest"], "transfer.json is missing"),
]


@pytest.mark.parametrize("argv, needle", BAD, ids=[f"{a[0]}-{n[:30]}" for a, n in (getattr(b, "values", b) for b in BAD)])
def test_bad_input_is_one_line_and_exit_1(bad_inputs, tmp_path, capsys, argv, needle):
    fill = {**bad_inputs, "tmp": tmp_path / "out"}
    code, _, err = run(capsys, *[a.format(**fill) for a in argv])
    assert code == 1
    line = one_line_error(err)
    assert line.startswith("error:") and needle in line, line
