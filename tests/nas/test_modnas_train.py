"""MODNAS training end to end on tiny configurations: determinism, resume, save/load, answers, bad input."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from hwprof.errors import ConfigError, DataError, PersistenceError, UnknownNameError
from nas.search.modnas import ARGMAX, ModnasConfig, ModnasModel, preference_rays, train_modnas
from nas.search.modnas.hypernet import HyperNetwork
from nas.tabular import load_nb201

DEVICES = ("pixel3", "titanx_1", "gold_6240")
# Small enough for a few seconds: 200 table rows for the surrogates, narrow networks, a few steps.
TINY = dict(
    devices=DEVICES, steps=12, max_table_archs=200, latency_epochs=2, accuracy_epochs=3, hidden=(16,),
    surrogate_hidden=(16,), tasks_per_step=3, samples_per_task=2, checkpoint_every=5, n_refs=4,
)


def tiny(out, **overrides) -> ModnasConfig:
    return ModnasConfig.create(str(out), **{**TINY, **overrides})


def hypernet_state(directory):
    return torch.load(directory / "hypernet.pt", weights_only=True)


def same_state(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def table():
    return load_nb201()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_modnas(tiny(tmp_path_factory.mktemp("modnas") / "run"))


class Stop(Exception):
    pass


def test_same_seed_same_result_and_an_interrupted_run_resumes_to_it(trained, tmp_path):
    out = tmp_path / "resumed"
    seen = []

    def stop_at_7(p):
        seen.append(p.phase)
        if p.phase == "hypernetwork" and p.done == 7:
            raise Stop

    with pytest.raises(Stop):
        train_modnas(tiny(out), stop_at_7)
    assert {"latency surrogate", "accuracy surrogate", "hypernetwork"} <= set(seen)
    assert json.loads((out / "checkpoint.json").read_text())["step"] == 5
    with pytest.raises(PersistenceError, match="unfinished MODNAS training run.*step 5 of 12"):
        ModnasModel.load(out)
    with pytest.raises(ConfigError, match="different configuration"):
        train_modnas(tiny(out, lr=2e-3))  # another run cannot continue this one
    steps = []
    train_modnas(tiny(out), lambda p: steps.append(p.done) if p.phase == "hypernetwork" else None)
    assert steps[0] == 6 and steps[-1] == 12  # the set-up is read back, training goes on after the checkpoint
    assert same_state(hypernet_state(out), hypernet_state(trained))
    assert not (out / "checkpoint.pt").exists() and not (out / "checkpoint.json").exists()


def test_another_seed_gives_another_hypernetwork(trained, tmp_path):
    other = train_modnas(tiny(tmp_path / "seed1", seed=1))
    assert not same_state(hypernet_state(other), hypernet_state(trained))


def test_a_finished_directory_is_reused_or_refused(trained):
    before = (trained / "modnas.json").read_text()
    assert train_modnas(tiny(trained)) == trained  # same run: nothing to do
    assert (trained / "modnas.json").read_text() == before
    with pytest.raises(ConfigError, match="different configuration"):
        train_modnas(tiny(trained, steps=13))
    assert ModnasModel.load(trained).meta["training"]["steps"] == 12


def test_saved_metadata_says_where_accuracy_comes_from(trained):
    meta = json.loads((trained / "modnas.json").read_text())
    assert meta["mode"] == "surrogate" and meta["accuracy_source"].startswith("surrogate:")
    assert meta["train_devices"] == list(DEVICES) and len(meta["references"]["specs"]) == 4
    assert set(meta["files"]) >= {"hypernet.pt", "accuracy_surrogate.pt", "latency_predictor/predictor.json"}
    assert meta["latency_surrogate"]["fit"]["n_train"] > 0
    model = ModnasModel.load(trained)
    assert model.mode == "surrogate" and model.embed_dim == 4


def test_front_and_pick_agree_and_give_absolute_latency_from_reference_latencies(trained, table):
    model = ModnasModel.load(trained)
    emb, lat = model.embedding(device="pixel3")
    assert lat is not None and lat.shape == (4,)
    ref_emb, _ = model.embedding(ref_latencies_ms=model.refs.latencies_from_table(table.archs, table.latency_ms["pixel3"]))
    assert np.allclose(emb, ref_emb)
    front = model.front(emb, lat)
    assert len(front) == 24
    assert [e.preference for e in front] == [tuple(r) for r in preference_rays(24)]
    geo = float(np.exp(np.mean(np.log(lat))))
    for e in front:
        assert e.predicted_latency_ms == pytest.approx(e.predicted_latency_rel * geo)
        assert e.surrogate_error_pct is not None and 0 < e.surrogate_error_pct < 100
        assert model.space.parse(e.spec).spec == e.spec
    mid = front[11]
    picked = model.pick(emb, list(mid.preference), lat)
    assert picked.spec == mid.spec and picked.predicted_latency_ms == pytest.approx(mid.predicted_latency_ms)
    # without reference latencies (an embedding only) there is no absolute level
    assert model.pick(emb, 0.5).predicted_latency_ms is None


@pytest.mark.parametrize("pref", [1.5, -0.1, [0.5, 0.6], [0.2, 0.3, 0.5], float("nan")])
def test_preferences_off_the_simplex_are_refused(trained, pref):
    model = ModnasModel.load(trained)
    emb, _ = model.embedding(device="pixel3")
    with pytest.raises(ConfigError, match="simplex|weights"):
        model.pick(emb, pref)


def test_embeddings_of_the_wrong_length_or_unknown_devices_are_refused(trained):
    model = ModnasModel.load(trained)
    with pytest.raises(DataError, match="expected 4 values"):
        model.pick(np.zeros(5), 0.5)
    with pytest.raises(DataError, match="non-finite"):
        model.pick(np.array([0.0, np.nan, 0.0, 0.0]), 0.5)
    with pytest.raises(DataError, match="expected latencies of 4 reference"):
        model.embedding(ref_latencies_ms=[1.0, 2.0, 3.0])
    with pytest.raises(UnknownNameError, match="--ref-latencies"):
        model.embedding(device="my_phone")
    with pytest.raises(DataError, match=r"shape \(n, 4\)"):
        model.hypernet(torch.zeros(2, 3), torch.full((2, 2), 0.5))


def copy_dir(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_tampered_incomplete_or_missing_directories_fail_clearly(trained, tmp_path):
    bad = copy_dir(trained, tmp_path / "tampered")
    state = hypernet_state(bad)
    state["net.0.bias"] = state["net.0.bias"] + 1.0
    torch.save(state, bad / "hypernet.pt")
    with pytest.raises(PersistenceError, match="does not match the checksum"):
        ModnasModel.load(bad)
    gone = copy_dir(trained, tmp_path / "incomplete")
    (gone / "latency_predictor" / "mlp.pt").unlink()
    with pytest.raises(PersistenceError, match="mlp.pt.*missing"):
        ModnasModel.load(gone)
    newer = copy_dir(trained, tmp_path / "newer")
    meta = json.loads((newer / "modnas.json").read_text())
    meta["format_version"] = 99
    (newer / "modnas.json").write_text(json.dumps(meta))
    with pytest.raises(PersistenceError, match="format version 99"):
        ModnasModel.load(newer)
    (newer / "modnas.json").write_text("{not json")
    with pytest.raises(PersistenceError, match="as JSON"):
        ModnasModel.load(newer)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(PersistenceError, match="no trained hypernetwork"):
        ModnasModel.load(empty)
    with pytest.raises(PersistenceError, match="no MODNAS directory"):
        ModnasModel.load(tmp_path / "nowhere")


def test_untrained_hypernetwork_is_uniform_so_training_is_what_separates_the_rays(trained):
    net = HyperNetwork(4, [5] * 6, hidden=(16,))
    logits = net(torch.randn(3, 4), torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]))
    assert torch.all(logits == 0)  # every option equally likely for every device and preference


@pytest.mark.parametrize(("combine", "scalarisation"), [
    ("mgd", "weighted_sum"), ("mgd", "chebyshev"), pytest.param("linear", "weighted_sum", marks=pytest.mark.slow)])
def test_training_moves_accuracy_rays_to_accurate_and_latency_rays_to_fast_networks(tmp_path, combine, scalarisation, table):
    """A short real run: the accuracy-only ray must find a network far more accurate than the latency-only ray's,
    which must be faster. An untrained or sign-flipped search gives the same or the reversed order. Decoded by argmax:
    this is the hypernetwork's own answer (a tiny surrogate that predicts errors below 0 % would steer a selection)."""
    out = train_modnas(tiny(tmp_path / combine, steps=300, combine=combine, hidden=(32,), max_table_archs=2000,
                            accuracy_epochs=20, latency_epochs=4, scalarisation=scalarisation))
    model = ModnasModel.load(out)
    acc = table.accuracy["cifar10"]
    for device in DEVICES:
        emb, _ = model.embedding(device=device)
        first, last = (table.index_of(a.spec) for a in model.architectures(emb, np.array([[1.0, 0.0], [0.0, 1.0]]), ARGMAX))
        lat = table.latency_ms[device]
        assert acc[first] > acc[last] + 1 and lat[first] > 1.2 * lat[last], device
        assert acc[first] > np.quantile(acc, 0.9), device  # among the best tenth of all networks


def test_config_checks_and_mode_defaults(tmp_path):
    supernet = ModnasConfig.create(str(tmp_path), "supernet")
    assert supernet.samples_per_task == 1 and supernet.scalarisation == "weighted_sum"  # its error is not range-scaled
    assert ModnasConfig.create(str(tmp_path)).scalarisation == "chebyshev"
    with pytest.raises(ConfigError, match="unknown setting"):
        ModnasConfig.create(str(tmp_path), bogus=1)
    with pytest.raises(ConfigError, match="samples_per_task=1"):
        ModnasConfig.create(str(tmp_path), "supernet", samples_per_task=4)
    with pytest.raises(ConfigError, match="dirichlet_alpha"):
        tiny(tmp_path, dirichlet_alpha=(1.0, -1.0))
    with pytest.raises(ConfigError, match="mode must be one of"):
        ModnasConfig.create(str(tmp_path), "oracle")
    cfg = tiny(tmp_path)
    assert replace(cfg, out_dir="elsewhere", checkpoint_every=7).run_hash() == cfg.run_hash()
    assert replace(cfg, seed=3).run_hash() != cfg.run_hash()
    assert replace(cfg, scalarisation="weighted_sum").run_hash() != cfg.run_hash()
    # a run made before the scalarisation option existed (its settings without the field) keeps its hash
    from hwprof.types import stable_hash

    weighted = tiny(tmp_path, scalarisation="weighted_sum")
    before = {k: v for k, v in weighted.to_json().items() if k not in ("out_dir", "checkpoint_every", "scalarisation")}
    assert stable_hash(before) == weighted.run_hash()
    assert ModnasConfig.from_json(cfg.to_json()) == cfg


def test_an_ablation_reuses_the_set_up_only_when_it_is_the_same(trained, tmp_path):
    from nas.search.modnas.trainer import reuse_setup

    linear = tiny(tmp_path / "linear", combine="linear", steps=3)
    assert reuse_setup(trained, linear)
    assert not reuse_setup(trained, linear)  # already seeded
    assert not reuse_setup(trained, tiny(tmp_path / "other", n_refs=5))  # another reference set
    assert not reuse_setup(tmp_path / "nowhere", tiny(tmp_path / "x"))
    phases = []
    train_modnas(linear, lambda p: phases.append(p.phase))
    assert "latency surrogate" not in phases and "accuracy surrogate" not in phases
    a, b = ModnasModel.load(trained), ModnasModel.load(linear.out_dir)
    assert a.refs == b.refs and a.meta["latency_normalisation"] == b.meta["latency_normalisation"]
    assert not same_state(hypernet_state(trained), hypernet_state(tmp_path / "linear"))


def test_unknown_training_device_is_named(tmp_path):
    with pytest.raises(UnknownNameError, match="my_phone"):
        train_modnas(tiny(tmp_path / "x", devices=("pixel3", "my_phone")))
