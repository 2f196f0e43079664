"""The `hwprof adapt` workflow as library calls: sources, suggestions, adapting with held-out metrics."""

from __future__ import annotations

import numpy as np
import pytest

from hwprof.errors import ConfigError, DataError
from predictors.data import LatencyData
from predictors.transfer import workflow
from predictors.transfer.workflow import (
    AdaptOptions,
    SourceSpec,
    adapt_device,
    choose_samples,
    open_sources,
    suggest,
)
from tests.predictors.conftest import write_table

DEVICES = ("titanx_1", "titanx_32", "silver_4114", "pixel3")


@pytest.fixture(scope="module")
def table(tmp_path_factory, nb201_rows):
    archs, lat = nb201_rows
    path = tmp_path_factory.mktemp("src") / "t.csv"
    write_table(path, archs, {d: lat[d] for d in DEVICES})
    return path


def _samples(tmp_path, nb201_rows, n, device="titanx_1"):
    archs, lat = nb201_rows
    path = tmp_path / "s.csv"
    path.write_text("arch,latency_ms\n" + "".join(f"{a},{v}\n" for a, v in zip(archs[:n], lat[device][:n])))
    return path


def test_adapt_from_samples_drops_the_new_device_from_the_sources(table, tmp_path, nb201_rows):
    sources = open_sources(SourceSpec(csv=table), new_device="titanx_1")
    assert sources.model is None and sources.method == "auto" and "titanx_1" not in sources.table.devices
    result = adapt_device(AdaptOptions(device="titanx_1", samples=_samples(tmp_path, nb201_rows, 10)), sources)
    assert result.method == "auto" and result.held_out is None and result.sample_metrics.n == 10
    assert result.extra["transfer"]["select"] == "given" and result.extra["transfer"]["samples"] == list(nb201_rows[0][:10])
    assert set(result.source_weights) == {"titanx_32", "silver_4114", "pixel3"}
    result.save(tmp_path / "a")
    assert (tmp_path / "a" / "predictor.json").is_file()


def test_the_new_device_data_is_checked_before_pretraining(table, tmp_path, nb201_rows, monkeypatch):
    def no_pretraining(*args, **kwargs):
        raise AssertionError("pretrained before the samples were checked")

    monkeypatch.setattr(workflow, "pretrain", no_pretraining)
    sources = open_sources(SourceSpec(csv=table, method="ridge"), new_device="titanx_1")
    with pytest.raises(DataError, match="needs at least 2 measured architectures"):
        adapt_device(AdaptOptions(device="titanx_1", samples=_samples(tmp_path, nb201_rows, 1)), sources)
    with pytest.raises(ConfigError, match="exactly one of --db STORE"):
        AdaptOptions(device="titanx_1")


def test_suggest_chooses_within_the_pool_and_is_seeded(table, nb201_rows):
    sources = open_sources(SourceSpec(csv=table), new_device="titanx_1")
    pool = list(nb201_rows[0][:30])
    a = suggest(sources, 5, seed=2, pool=pool)
    assert a == suggest(sources, 5, seed=2, pool=pool)
    assert len(a.archs) == 5 and set(a.archs) <= set(pool) and a.how == "farthest" and a.n_source_devices == 3
    assert all(a.rows[s] == pool.index(s) for s in a.archs)
    with pytest.raises(DataError, match="not in the source table"):
        suggest(sources, 5, pool=["|bogus|"], pool_name="pool.txt")


def test_an_embedding_pretrained_to_suggest_has_k_references():
    spec = SourceSpec(csv=None, method="embedding").for_suggesting(4)
    assert spec.params["n_refs"] == 4
    assert SourceSpec(method="nnls").for_suggesting(4).params == {}


def test_samples_outside_the_source_table_are_chosen_at_random_with_a_note(table, nb201_rows):
    sources = open_sources(SourceSpec(csv=table), new_device="titanx_1").pretrained()
    archs, lat = nb201_rows
    data = LatencyData(("x", "y", "z", "w"), np.ones(4), "nb201", "new", "test")
    chosen, notes = choose_samples(sources, data, 2, 0, "farthest")
    assert len(chosen) == 2 and "holds only 0 of the 4 measured architectures" in notes[0]
    inside = LatencyData(tuple(archs[:40]), lat["titanx_1"][:40], "nb201", "titanx_1", "test")
    chosen, notes = choose_samples(sources, inside, 8, 0, "farthest")
    assert len(set(chosen.tolist())) == 8 and notes == []
