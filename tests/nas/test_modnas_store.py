"""MODNAS for a device you profiled: reference latencies from a real store (ort-cpu), profiling what is missing,
store devices in training, and the measured check of a front."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from hwprof.errors import ConfigError, DataError
from hwprof.protocol import ProtocolSettings
from hwprof.store import Store
from hwprof.types import Architecture
from nas.search.modnas import ModnasModel, train_modnas
from nas.search.modnas.store_devices import profile_networks, read_store_device
from nas.search.modnas.store_front import check_front, store_device_embedding
from tests.cli_helpers import one_line_error, run
from tests.nas.test_modnas_train import tiny

pytest.importorskip("onnxruntime")

DEVICE = "ort-cpu"
# Enough for a stable-looking number in a fraction of a second per network; the figures are not what is tested.
FAST = ProtocolSettings(min_warmup=1, max_warmup=3, warmup_window=2, min_runs=3, max_runs=10, max_time_s=0.3,
                        check_every=3, stop_quantile=0.5)
EXTRA = 3  # networks measured besides the references


def measured_db(path, specs):
    """A store with ``specs`` profiled on ort-cpu (one thread), through the real Profiler."""
    target = read_store_device(path, DEVICE) if path.is_file() else None
    if target is None:
        Store(path).close()
        target = read_store_device(path, DEVICE, {"intra_op_threads": 1})
    return profile_networks(target, specs, FAST)


@pytest.fixture(scope="module")
def hypernet(tmp_path_factory):
    return train_modnas(tiny(tmp_path_factory.mktemp("modnas_store") / "run"))


@pytest.fixture(scope="module")
def model(hypernet):
    return ModnasModel.load(hypernet)


@pytest.fixture(scope="module")
def full_db(tmp_path_factory, model):
    """Every reference of the tiny hypernetwork and EXTRA other networks, measured on ort-cpu."""
    from nas.spaces.nb201 import NB201Space

    space = NB201Space()
    others = [a.spec for a in space.sample(20, np.random.default_rng(1)) if a.spec not in model.refs.specs][:EXTRA]
    db = tmp_path_factory.mktemp("store") / "hwprof.db"
    measured_db(db, list(model.refs.specs) + others)
    return db


def copy_db(src, tmp_path):
    dst = tmp_path / "hwprof.db"
    shutil.copy(src, dst)
    return dst


# --- reading the store ----------------------------------------------------------------------------


def test_reference_latencies_come_from_the_store(model, full_db):
    target = read_store_device(full_db, DEVICE)
    with Store(full_db, create=False) as store:
        newest = {r.spec: r.latency_ms for r in store.measurements(device=DEVICE, space="nb201", latest_only=True)}
    emb, lat, again = store_device_embedding(model, target)
    assert lat.tolist() == [newest[s] for s in model.refs.specs]  # the primary estimate, in reference order
    assert np.allclose(emb, model.refs.embedding(lat)) and again is target  # nothing was missing: nothing profiled
    assert target.settings["intra_op_threads"] == 1 and target.precision == "fp32" and target.note == ""
    front = model.front(emb, lat, 6)
    level = float(np.exp(np.mean(np.log(lat))))
    assert all(e.predicted_latency_ms == pytest.approx(e.predicted_latency_rel * level) for e in front)


def test_several_settings_are_named_and_one_can_be_chosen(model, hypernet, full_db, tmp_path, capsys):
    db = copy_db(full_db, tmp_path)
    two = read_store_device(db, DEVICE, {"intra_op_threads": 2})
    assert two.settings_hash is None and not two.latencies_ms  # nothing stored with 2 threads yet
    two = profile_networks(two, model.refs.specs[:2], FAST)
    assert two.settings["intra_op_threads"] == 2 and len(two.latencies_ms) == 2
    default = read_store_device(db, DEVICE)  # the setting with the most networks
    assert default.settings["intra_op_threads"] == 1 and len(default.latencies_ms) == len(model.refs) + EXTRA
    assert f"with intra_op_threads=1 ({len(model.refs) + EXTRA} networks)" in default.note and "intra_op_threads=2 (2 networks)" in default.note
    assert "inter_op_threads" not in default.note  # only what tells the settings apart
    assert read_store_device(db, DEVICE, precision="int8").settings_hash is None
    assert read_store_device(db, DEVICE, {"intra_op_threads": 2.0}).settings_hash == two.settings_hash
    n = len(model.refs)
    line = one_line_error(capsys, "modnas", "front", hypernet, "--db", db, "--device", DEVICE, "--set", "intra_op_threads=2")
    assert f"lacks {n - 2} of the {n} reference networks" in line and "intra_op_threads=2" in line
    code, out, err = run(capsys, "modnas", "front", hypernet, "--db", db, "--device", DEVICE, "--rays", 3)
    assert code == 0 and "using the measurements with intra_op_threads=1" in err and "intra_op_threads=2" in err


def test_missing_references_are_counted_in_one_line(model, hypernet, full_db, tmp_path, capsys):
    db = tmp_path / "few.db"
    measured_db(db, list(model.refs.specs[:1]))
    with pytest.raises(DataError, match=rf"lacks {len(model.refs) - 1} of the {len(model.refs)} reference networks"):
        store_device_embedding(model, read_store_device(db, DEVICE))
    line = one_line_error(capsys, "modnas", "front", hypernet, "--db", db, "--device", DEVICE)
    assert f"lacks {len(model.refs) - 1} of the {len(model.refs)}" in line and "--profile-missing" in line
    line = one_line_error(capsys, "modnas", "front", hypernet, "--db", db, "--device", "pi4")
    assert f"lacks {len(model.refs)} of the {len(model.refs)}" in line  # a device never profiled: every one missing
    assert "no store at" in one_line_error(capsys, "modnas", "front", hypernet, "--db", tmp_path / "none.db", "--device", DEVICE)
    assert "--db" in one_line_error(capsys, "modnas", "front", hypernet, "--device", "pixel3", "--measure")


def test_profile_missing_measures_only_the_missing_references_into_the_store(model, full_db, tmp_path):
    db = tmp_path / "partial.db"
    measured_db(db, list(model.refs.specs[:2]))
    emb, lat, target = store_device_embedding(model, read_store_device(db, DEVICE), profile_missing=True, protocol=FAST)
    assert set(target.latencies_ms) == set(model.refs.specs) and np.all(lat > 0)
    with Store(db, create=False) as store:
        rows = store.measurements(device=DEVICE, space="nb201")
    assert sorted(r.spec for r in rows) == sorted(model.refs.specs)  # the first two were not measured again
    assert len({r.settings_hash for r in rows}) == 1  # the new rows joined the stored setting


def test_front_cli_reads_the_store(hypernet, model, full_db, tmp_path, capsys):
    out_json = tmp_path / "front.json"
    code, out, err = run(capsys, "modnas", "front", hypernet, "--db", full_db, "--device", DEVICE, "--rays", 5, "--json", out_json)
    assert code == 0, err
    data = json.loads(out_json.read_text())
    lat = read_store_device(full_db, DEVICE).latencies_of(model.refs.specs)
    assert np.allclose(data["embedding"], model.refs.embedding(lat))
    assert all(e["predicted_latency_ms"] > 0 for e in data["front"]) and data["store"]["settings"]["intra_op_threads"] == 1
    assert "5 rays" in out and "reference latencies" in out
    code, out, err = run(capsys, "modnas", "pick", hypernet, "--db", full_db, "--device", DEVICE, "--preference", 1.0)
    assert code == 0, err
    assert out.replace("\n", "").startswith(data["front"][0]["arch"])  # the preference-1.0 ray's network
    line = one_line_error(capsys, "modnas", "front", hypernet, "--device", DEVICE, "--set", "intra_op_threads=2")
    assert "give --db" in line


# --- the measured check ---------------------------------------------------------------------------------


def test_check_front_measures_the_front_and_scores_both_fronts_alike(model, full_db, tmp_path):
    db = copy_db(full_db, tmp_path)
    target = read_store_device(db, DEVICE)
    emb, lat, target = store_device_embedding(model, target)
    entries = model.front(emb, lat, 6)
    specs = list(dict.fromkeys(e.spec for e in entries))
    check = check_front(model, entries, emb, target, protocol=FAST)
    stored = read_store_device(db, DEVICE)
    assert [n.spec for n in check.networks] == specs
    assert [n.measured_latency_ms for n in check.networks] == [stored.latencies_ms[s] for s in specs]
    assert check.n_profiled == len(target.missing(specs)) and all(s in stored.latencies_ms for s in specs)
    # recompute both hypervolumes by hand from the reported bounds
    from nas.pareto import modnas_hypervolume

    (elo, ehi), (llo, lhi) = check.error_bounds_pct, check.latency_bounds_ms
    pred = modnas_hypervolume([100 - n.predicted_error_pct for n in check.networks],
                              [n.predicted_latency_ms for n in check.networks], [elo, llo], [ehi, lhi])
    meas = modnas_hypervolume([100 - n.table_error_pct for n in check.networks],
                              [n.measured_latency_ms for n in check.networks], [elo, llo], [ehi, lhi])
    assert (check.hv_predicted, check.hv_measured) == (pytest.approx(pred), pytest.approx(meas))
    assert 0 < check.hv_measured < 1 and 0 < check.hv_predicted < 1
    assert all(llo <= n.measured_latency_ms <= lhi and llo <= n.predicted_latency_ms <= lhi for n in check.networks)
    again = check_front(model, entries, emb, stored, protocol=FAST)
    assert again.n_profiled == 0 and again.hv_measured == check.hv_measured  # resumable: the stored rows are reused


# --- store devices in training -----------------------------------------------------------------------------


def test_a_store_device_trains_beside_table_devices(hypernet, model, full_db, tmp_path):
    out = train_modnas(tiny(tmp_path / "with_store", store_devices=(DEVICE,), store_db=str(full_db)))
    trained = ModnasModel.load(out)
    assert trained.train_devices == [*tiny(tmp_path).devices, DEVICE]
    assert trained.refs.specs == model.refs.specs  # references are chosen over the table devices alone
    info = trained.meta["store_devices"][DEVICE]
    lat = read_store_device(full_db, DEVICE).latencies_of(model.refs.specs)
    assert info["reference_latencies_ms"] == pytest.approx(lat.tolist()) and info["n_networks"] == len(model.refs) + EXTRA
    assert info["fit_in_sample"]["n"] == len(model.refs) + EXTRA and np.isfinite(info["fit_in_sample"]["rmse_log"])
    assert np.allclose(trained.meta["train_embeddings"][DEVICE], model.refs.embedding(lat))
    assert trained.meta["run_hash"] != ModnasModel.load(hypernet).meta["run_hash"]
    from nas.search.modnas.algorithm import training_summary

    line = next(x for x in training_summary(out) if x.startswith(f"store device {DEVICE}"))
    assert f"{len(model.refs) + EXTRA} measured networks from {full_db}" in line and "Spearman" in line
    emb, rel = trained.embedding(device=DEVICE)
    assert rel is None and len(trained.front(emb, None, 3)) == 3


def test_a_store_device_without_its_references_is_refused_or_profiled(model, tmp_path):
    db = tmp_path / "few.db"
    measured_db(db, list(model.refs.specs[:1]))
    config = tiny(tmp_path / "run", store_devices=(DEVICE,), store_db=str(db))
    with pytest.raises(DataError, match=rf"lacks {len(model.refs) - 1} of the {len(model.refs)} reference networks that training chose"):
        train_modnas(config)
    out = train_modnas(config, profile_missing=True, profile_protocol=FAST)
    assert ModnasModel.load(out).meta["store_devices"][DEVICE]["n_networks"] == len(model.refs)


def test_store_device_options_are_checked(tmp_path, capsys):
    with pytest.raises(ConfigError, match="give its path"):
        tiny(tmp_path / "a", store_devices=(DEVICE,))
    assert tiny(tmp_path / "a", store_devices=DEVICE, store_db="x.db").store_devices == (DEVICE,)  # one name, not its letters
    with pytest.raises(ConfigError, match="both a table device and a store device"):
        tiny(tmp_path / "b", store_devices=("pixel3",), store_db="x.db")
    line = one_line_error(capsys, "modnas", "train", "-o", tmp_path / "c", "--db", "x.db")
    assert "--store-devices" in line


def test_old_configurations_keep_their_hashes(tmp_path):
    from hwprof.types import stable_hash

    config = tiny(tmp_path / "a")
    data = config.to_json()
    assert "store_devices" not in data and "store_db" not in data  # written only when set
    without = {k: v for k, v in data.items() if k not in ("out_dir", "checkpoint_every")}
    assert config.run_hash() == stable_hash(without)  # runs trained before store devices existed still resume
    setup = {k: data[k] for k in ("mode", "space", "dataset", "table", "devices", "n_refs", "surrogate_hidden",
                                  "accuracy_epochs", "latency_epochs", "max_table_archs", "seed")}
    assert config.setup_hash() == stable_hash(setup)  # and their set-ups are still found
    stored = tiny(tmp_path / "b", store_devices=(DEVICE,), store_db="a.db")
    assert stored.run_hash() != config.run_hash() and stored.setup_hash() != config.setup_hash()
    assert stored.run_hash() == tiny(tmp_path / "c", store_devices=(DEVICE,), store_db="moved.db").run_hash()


@pytest.mark.slow
def test_cli_trains_with_a_store_device_and_measures_its_front(model, full_db, tmp_path, capsys):
    from tests.nas.test_modnas_cli import tiny_params

    db = copy_db(full_db, tmp_path)
    out = tmp_path / "run"
    code, text, err = run(capsys, "search", "--algo", "modnas", "--space", "nb201", "--devices", "pixel3,titanx_1,gold_6240",
                          "-o", out, *tiny_params(), "--param", f"store_devices={DEVICE},", "--param", f"store_db={db}")
    assert code == 0, err
    assert f"store device {DEVICE}: {len(model.refs) + EXTRA} measured networks" in text.replace("\n", " ")
    code, text, err = run(capsys, "modnas", "front", out, "--db", db, "--device", DEVICE, "--rays", 4, "--measure",
                          "--json", tmp_path / "f.json")
    assert code == 0, err
    check = json.loads((tmp_path / "f.json").read_text())["check"]
    assert "hypervolume: predicted" in text and check["hv_predicted"] > 0 and check["reference_point"] == [1.0, 1.0]
    arch_ids = {Architecture("nb201", n["arch"]).arch_id for n in check["networks"]}
    with Store(db, create=False) as store:
        assert arch_ids <= {r.arch_id for r in store.measurements(device=DEVICE)}
