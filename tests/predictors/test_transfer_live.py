"""Few-shot to a device measured through hwprof: predictors fitted on, and predicting for, live-equivalent networks."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from hwprof import registry
from nas.tabular import load_nb201
from predictors import transfer
from predictors.features.encoding import ArchFeaturizer, ArchitectureError
from predictors.persistence import load_predictor, save
from predictors.schema import get_featurizer, register_featurizer
from predictors.transfer.live import LiveFeaturizer, adapt_live, live_specs
from predictors.transfer.workflow import AdaptOptions, SourceSpec, adapt_device, open_sources
from tests.predictors.conftest import write_table

ROOT = Path(__file__).resolve().parents[2]
if "live" not in registry.names("featurizer"):  # an editable install made before the entry point was added
    register_featurizer("live", "predictors.transfer.live:LiveFeaturizer.from_kind")

DEAD = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|"
DEAD_LIVE = "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"


def test_the_live_featurizer_is_an_entry_point_and_rebuilds_from_its_kind():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["entry-points"]["hwprof.featurizers"]["live"] == "predictors.transfer.live:LiveFeaturizer.from_kind"
    f = get_featurizer("live:onehot+counts:nb201")
    plain = ArchFeaturizer("nb201", "onehot+counts")
    assert f.schema.kind == "live:onehot+counts:nb201" and f.schema.names == plain.schema.names
    assert np.array_equal(f.transform([DEAD]), plain.transform([DEAD_LIVE]))
    assert not np.array_equal(plain.transform([DEAD]), plain.transform([DEAD_LIVE]))
    assert not hasattr(f, "matrix")  # not a linear map of the encoding: no differentiable module is offered


def test_a_bad_architecture_is_named_by_its_row():
    with pytest.raises(ArchitectureError, match="architecture 1"):
        LiveFeaturizer("nb201", "onehot").transform([DEAD, "|bogus|"])


@pytest.fixture(scope="module")
def synthetic():
    """Source devices measured on networks that keep dead operations; a new device measured on live networks.

    Every device costs an intercept plus a per-(edge, operation) cost; the new
    device is 1.5 x source ``a`` plus 0.2 ms, but on the work its exported
    network does (dead operations dropped).
    """
    archs = list(load_nb201().archs)
    onehot = ArchFeaturizer("nb201", "onehot")
    E, E_live = onehot.transform(archs), LiveFeaturizer("nb201", "onehot").transform(archs)
    rng = np.random.default_rng(0)
    costs = {d: rng.uniform(0.05, 1.0, size=E.shape[1]) * (E.sum(axis=0) > 0) for d in ("a", "b", "c")}
    sources = transfer.SourceLatencies.from_columns(archs, {d: 0.5 + E @ c for d, c in costs.items()})
    new = 0.2 + 1.5 * (0.5 + E_live @ costs["a"])
    return archs, sources, new


@pytest.mark.parametrize("method", ["auto", "nnls"])
def test_adapting_on_live_equivalents_recovers_a_device_measured_without_dead_operations(synthetic, method, tmp_path):
    archs, sources, new = synthetic
    model = transfer.pretrain(method, sources)
    rows = np.random.default_rng(1).choice(len(archs), size=12, replace=False)
    picked = [archs[i] for i in rows]
    live = adapt_live(model, picked, new[rows])
    plain = model.adapt(picked, new[rows])
    assert live.schema_.kind == "live:onehot+counts:nb201"
    relative = np.abs(live.predict_archs(archs) / new - 1)
    assert relative.max() < 0.02
    # The same sources, described to an additive predictor by the spec as given, cannot express the dropped work.
    assert np.abs(plain.predict_archs(archs) / new - 1).max() > 5 * relative.max()
    assert live.predict_archs([DEAD])[0] == pytest.approx(live.predict_archs([DEAD_LIVE])[0])
    save(live, tmp_path / "p", device="mine")
    loaded = load_predictor(tmp_path / "p")
    assert loaded.schema_.kind == "live:onehot+counts:nb201"
    assert np.allclose(loaded.predict_archs(archs[:50]), live.predict_archs(archs[:50]))


def test_samples_with_the_same_live_equivalent_are_one_network(synthetic):
    archs, sources, _ = synthetic
    model = transfer.pretrain("nnls", sources)
    others = [a for a in archs if live_specs("nb201", [a])[0] == a][:6]
    predictor = adapt_live(model, [DEAD, DEAD_LIVE, *others], [1.0, 3.0, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5])
    assert predictor.n_train_ == 7


def test_a_space_without_dead_operations_adapts_unchanged():
    from nas.tabular import load_fbnet

    table = load_fbnet()
    archs = list(table.archs[:200])
    sources = transfer.SourceLatencies.from_columns(archs, {d: np.asarray(table.latency_ms[d])[:200] for d in table.devices[:3]})
    model = transfer.pretrain("nnls", sources)
    y = np.asarray(table.latency_ms[table.devices[4]])[:10]
    predictor = adapt_live(model, archs[:10], y)
    assert predictor.schema_.kind == "onehot+counts:fbnet"
    assert np.allclose(predictor.predict_archs(archs), model.adapt(archs[:10], y).predict_archs(archs))


def test_the_workflow_adapts_live_when_asked_and_as_given_otherwise(synthetic, tmp_path):
    archs, sources, new = synthetic
    table = tmp_path / "t.csv"
    write_table(table, archs, {d: sources.latency_ms[:, j] for j, d in enumerate(sources.devices)})
    rows = np.random.default_rng(2).choice(len(archs), size=40, replace=False)
    samples = tmp_path / "mine.csv"
    samples.write_text("arch,latency_ms\n" + "".join(f"{archs[i]},{float(new[i])!r}\n" for i in rows))
    opened = open_sources(SourceSpec(csv=table, method="nnls"), new_device="mine")
    live = adapt_device(AdaptOptions(samples=samples, k=10, live=True), opened.live_equivalent())
    given = adapt_device(AdaptOptions(samples=samples, k=10), opened)
    assert live.predictor.schema_.kind.startswith("live:") and live.extra["transfer"]["live_equivalent"] is True
    assert given.predictor.schema_.kind == "onehot+counts:nb201"
    assert live.held_out.n == 30 and live.held_out.spearman > 0.99
    assert live.held_out.mape < given.held_out.mape
    # live equivalents are applied when adapting, not to the table: the pretrained model (and its cache entry) is shared
    assert opened.live_equivalent().table is opened.table
