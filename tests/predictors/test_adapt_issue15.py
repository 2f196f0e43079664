"""`hwprof adapt` as a new user meets it (issue 15): -k with a samples file, bad headers, another space, --pool with
embedding, the pretrained-model cache, and live-equivalent NB201 architectures."""

from __future__ import annotations

import numpy as np
import pytest

from hwprof.cli.main import main
from hwprof.errors import DataError
from nas.spaces.nb201 import NB201Space, live_choices
from predictors.transfer import SourceLatencies, workflow
from predictors.transfer.workflow import AdaptOptions, SourceSpec, adapt_device, open_sources, suggest
from tests.predictors.conftest import write_table

FAST_EMBEDDING = {"steps": 20, "mix_devices": 2, "embedding_steps": 5}


@pytest.fixture(scope="module")
def source_table(tmp_path_factory, nb201_rows):
    """A source CSV of four NB201 devices; the new device (titanx_1) is dropped from it by adapt."""
    path = tmp_path_factory.mktemp("src") / "t.csv"
    write_table(path, nb201_rows[0], {d: nb201_rows[1][d] for d in ("titanx_1", "titanx_32", "silver_4114", "pixel3")})
    return path


def _samples(path, archs, values, header="arch,latency_ms"):
    path.write_text((header + "\n" if header else "") + "".join(f"{a},{v}\n" for a, v in zip(archs, values)))
    return path


def _cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# --- -k with --samples -----------------------------------------------------------------------------


def test_k_with_a_samples_file_adapts_from_k_of_them_and_holds_out_the_rest(source_table, tmp_path, nb201_rows):
    archs, lat = nb201_rows
    path = _samples(tmp_path / "s.csv", archs[:20], lat["titanx_1"][:20])
    sources = open_sources(SourceSpec(csv=source_table), new_device="titanx_1")
    result = adapt_device(AdaptOptions(device="titanx_1", samples=path, k=5), sources)
    assert len(result.fit_data) == 5 and len(result.test_data) == 15 and result.held_out.n == 15
    assert set(result.fit_data.archs) | set(result.test_data.archs) == set(archs[:20])
    assert any("5 of the 20 samples" in n for n in result.notes)
    again = adapt_device(AdaptOptions(device="titanx_1", samples=path, k=5), sources)
    assert again.fit_data.archs == result.fit_data.archs  # deterministic (seeded)
    every = adapt_device(AdaptOptions(device="titanx_1", samples=path), sources)  # no -k: all of them
    assert len(every.fit_data) == 20 and every.test_data is None and not every.notes
    with pytest.raises(DataError, match="more samples than"):
        adapt_device(AdaptOptions(device="titanx_1", samples=path, k=21), sources)


def test_cli_k_with_samples_says_how_many_it_used(source_table, tmp_path, capsys, nb201_rows):
    archs, lat = nb201_rows
    path = _samples(tmp_path / "s.csv", archs[:20], lat["titanx_1"][:20])
    code, out, err = _cli(capsys, "adapt", "--samples", path, "-k", 5, "--device", "titanx_1", "--sources-csv", source_table)
    assert code == 0, err
    assert "5 of the 20 samples" in " ".join(err.split()) and "auto from 5 samples" in out and "held out" in out


# --- a header other than arch,latency_ms ---------------------------------------------------------------


def test_a_samples_header_other_than_arch_latency_ms_is_refused(source_table, tmp_path, capsys, nb201_rows):
    archs, lat = nb201_rows
    path = _samples(tmp_path / "s.csv", archs[:10], lat["titanx_1"][:10], header="arch,lat_ms")
    code, out, err = _cli(capsys, "adapt", "--samples", path, "--device", "titanx_1", "--sources-csv", source_table)
    assert code == 1 and "'arch,latency_ms'" in err and "'arch,lat_ms'" in err and "Traceback" not in err


# --- FBNet samples, NB201 sources ------------------------------------------------------------------------


def test_samples_of_another_space_are_a_space_mismatch(source_table, tmp_path, capsys):
    from nas.tabular import load_fbnet

    fb = load_fbnet()
    path = _samples(tmp_path / "fb.csv", fb.archs[:10], np.full(10, 3.0))
    code, out, err = _cli(capsys, "adapt", "--samples", path, "--device", "x", "--sources-csv", source_table)
    assert code == 1 and "space mismatch" in err and "'fbnet'" in err and "'nb201'" in err
    assert "node(s) separated by" not in err  # not the NB201 parser's complaint


# --- --suggest --method embedding --pool -------------------------------------------------------------------


def test_embedding_suggestions_come_from_the_pool(source_table, tmp_path, nb201_rows):
    archs, _ = nb201_rows
    pool = list(archs[100:130])
    sources = open_sources(SourceSpec(csv=source_table, method="embedding", params={**FAST_EMBEDDING, "n_refs": 4}), new_device="titanx_1")
    chosen = suggest(sources, 4, pool=pool)
    assert len(chosen.archs) == 4 and set(chosen.archs) <= set(pool) and chosen.how == "the model's reference architectures"
    saved = tmp_path / "emb"
    sources.pretrained().model.save(saved)  # references chosen over the whole table
    with pytest.raises(DataError, match="not in the pool"):
        suggest(open_sources(SourceSpec(model=saved)), 4, pool=pool[:5])


def test_cli_suggest_embedding_with_a_pool_stays_in_it(source_table, tmp_path, capsys, nb201_rows):
    archs, _ = nb201_rows
    pool_file = tmp_path / "pool.txt"
    pool_file.write_text("".join(a + "\n" for a in archs[200:230]))
    code, out, err = _cli(capsys, "adapt", "--sources-csv", source_table, "--source-devices", "titanx_32,silver_4114,pixel3",
                          "--method", "embedding", "--param", "steps=20", "--param", "mix_devices=2", "--suggest", "-k", 4,
                          "--pool", pool_file, "-o", tmp_path / "m.txt", "--cache-dir", tmp_path / "cache")
    assert code == 0, err
    assert set((tmp_path / "m.txt").read_text().split()) <= set(archs[200:230])


# --- the pretrained-model cache ---------------------------------------------------------------------------


def test_pretraining_is_cached_by_content_and_a_corrupt_entry_is_rebuilt(source_table, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    spec = SourceSpec(csv=source_table, method="embedding", params=FAST_EMBEDDING, cache_dir=cache)
    first = open_sources(spec, new_device="titanx_1").pretrained()
    entries = list((cache / workflow.CACHE_SUBDIR).iterdir())
    assert len(entries) == 1 and (entries[0] / "transfer.json").is_file()

    calls = []
    real = workflow.pretrain
    monkeypatch.setattr(workflow, "pretrain", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = open_sources(spec, new_device="titanx_1").pretrained()
    assert calls == [] and again.model.reference_archs == first.model.reference_archs  # loaded, not retrained

    other = open_sources(spec, new_device="pixel3").pretrained()  # other sources: another key
    assert calls == [1] and len(list((cache / workflow.CACHE_SUBDIR).iterdir())) == 2
    assert other.model.devices != first.model.devices

    (entries[0] / "transfer.json").write_text("{ not json")
    rebuilt = open_sources(spec, new_device="titanx_1").pretrained()
    assert calls == [1, 1] and rebuilt.model.reference_archs == first.model.reference_archs
    assert open_sources(spec, new_device="titanx_1").pretrained().model is not None and calls == [1, 1]  # fixed on disk


# --- live-equivalent NB201 architectures ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, live",
    [
        # node 2 feeds only a none edge: the convolutions into it are dead; node 1 then feeds nothing live either
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|",
         "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"),
        # node 1 reaches the output through node 2: everything is live
        ("|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|none~0|none~1|avg_pool_3x3~2|",
         "|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|none~0|none~1|avg_pool_3x3~2|"),
        # node 1's only way out goes into dead node 2
        ("|avg_pool_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|nor_conv_3x3~0|none~1|none~2|",
         "|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|"),
    ],
)
def test_live_equivalent_sets_edges_into_dead_nodes_to_none(spec, live):
    space = NB201Space()
    assert space.live_equivalent(space.parse(spec)).spec == live


def test_live_equivalent_is_idempotent_over_the_space():
    rng = np.random.default_rng(0)
    for _ in range(200):
        choices = tuple(int(c) for c in rng.integers(0, 5, size=6))
        once = live_choices(choices)
        assert live_choices(once) == once


def test_live_sources_take_the_latencies_of_the_live_architecture():
    dead = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|"
    live = "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
    other = "|skip_connect~0|+|none~0|none~1|+|skip_connect~0|none~1|skip_connect~2|"
    latencies = SourceLatencies((dead, live, other), ("a", "b"), np.array([[9.0, 8.0], [1.0, 2.0], [3.0, 4.0]]))
    mapped, changed = latencies.live_equivalent("nb201")
    assert changed == 1 and mapped.latency_ms.tolist() == [[1.0, 2.0], [1.0, 2.0], [3.0, 4.0]]
    assert AdaptOptions(device="d", db="x.db").live_archs and not AdaptOptions(samples="s.csv").live_archs
    assert AdaptOptions(samples="s.csv", live=True).live_archs
