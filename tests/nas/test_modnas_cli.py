"""`hwprof search --algo modnas` and `hwprof modnas front|pick|refs` through the real entry point."""

import csv
import json

import numpy as np
import pytest

from hwprof.cli.main import main
from hwprof.errors import DataError
from nas.search.modnas import ModnasModel
from nas.tabular import load_nb201
from tests.nas.test_modnas_train import DEVICES, TINY


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(capsys, *argv):
    code, out, err = run(capsys, *argv)
    assert code == 1, out
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def tiny_params():
    """TINY as --param KEY=VALUE (a tuple as comma-separated values, ``16,`` for one element)."""
    out = []
    for k, v in TINY.items():
        if k != "devices":
            out += ["--param", f"{k}={','.join(map(str, v)) + ',' if isinstance(v, tuple) else v}"]
    return out


@pytest.fixture(scope="module")
def table():
    return load_nb201()


@pytest.fixture(scope="module")
def hypernet_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "hypernet"
    code = main(["search", "--algo", "modnas", "--space", "nb201", "--devices", ",".join(DEVICES), "-o", str(out), *tiny_params()])
    assert code == 0
    return out


def test_search_algo_modnas_trains_a_loadable_hypernetwork(hypernet_dir):
    model = ModnasModel.load(hypernet_dir)
    assert model.train_devices == list(DEVICES) and model.mode == "surrogate"
    assert model.meta["config"]["steps"] == TINY["steps"] and model.meta["config"]["dataset"] == "cifar10"


def test_front_for_a_table_device_prints_24_rays_and_writes_json(hypernet_dir, tmp_path, capsys):
    code, out, err = run(capsys, "modnas", "front", hypernet_dir, "--device", "samsung_s7", "--json", tmp_path / "f.json")
    assert code == 0, err
    data = json.loads((tmp_path / "f.json").read_text())
    assert data["mode"] == "surrogate" and data["accuracy_source"].startswith("surrogate")
    assert len(data["front"]) == 24 and data["front"][0]["preference"] == [1.0, 0.0]
    assert "24 rays" in out and "a model, not a measurement" in out.replace("\n", " ")


def test_a_new_device_given_only_by_reference_latencies_gets_the_same_front(hypernet_dir, tmp_path, capsys, table):
    template = tmp_path / "refs.csv"
    code, out, err = run(capsys, "modnas", "refs", hypernet_dir, "--template", template)
    assert code == 0, err
    specs = [row["arch"] for row in csv.DictReader(open(template))]
    assert specs == list(ModnasModel.load(hypernet_dir).refs.specs) and specs[0][:15] in out.replace("\n", "")
    filled = tmp_path / "my_phone.csv"
    lat = table.latency_ms["samsung_s7"]
    filled.write_text("arch,latency_ms\n" + "".join(f"{s},{lat[table.index_of(s)]}\n" for s in reversed(specs)))
    run(capsys, "modnas", "front", hypernet_dir, "--device", "samsung_s7", "--json", tmp_path / "a.json")
    code, _, err = run(capsys, "modnas", "front", hypernet_dir, "--ref-latencies", filled, "--json", tmp_path / "b.json")
    assert code == 0, err
    a, b = (json.loads((tmp_path / n).read_text()) for n in ("a.json", "b.json"))
    assert [e["arch"] for e in a["front"]] == [e["arch"] for e in b["front"]]
    assert np.allclose([e["predicted_latency_ms"] for e in a["front"]], [e["predicted_latency_ms"] for e in b["front"]])


def test_pick_prints_one_architecture_and_matches_the_library(hypernet_dir, capsys):
    code, out, err = run(capsys, "modnas", "pick", hypernet_dir, "--device", "pixel3", "--preference", "0.3")
    assert code == 0, err
    model = ModnasModel.load(hypernet_dir)
    emb, lat = model.embedding(device="pixel3")
    expected = model.pick(emb, 0.3, lat)
    assert out.splitlines()[0] == expected.spec
    assert "accuracy 0.300 / latency 0.700" in out and "surrogate error" in out
    code, out2, _ = run(capsys, "modnas", "pick", hypernet_dir, "--device", "pixel3", "--preference", "0.3,0.7")
    assert code == 0 and out2.splitlines()[0] == expected.spec


def test_refs_without_a_directory_lists_the_default_set(capsys):
    code, out, err = run(capsys, "modnas", "refs")
    assert code == 0, err
    assert "10 reference architectures" in out and "farthest-point" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["pick", "{dir}", "--device", "pixel3", "--preference", "1.2"], "not on the simplex"),
        (["pick", "{dir}", "--device", "pixel3", "--preference", "0.5,0.6"], "not on the simplex"),
        (["pick", "{dir}", "--device", "pixel3", "--preference", "high"], "--preference 'high' is not understood"),
        (["pick", "{dir}", "--preference", "0.3"], "give --device NAME"),
        (["front", "{dir}", "--device", "my_phone"], "neither a training device nor a table column"),
        (["front", "{dir}", "--ref-latencies", "{tmp}/none.csv"], "reference-latency file not found"),
        (["front", "{dir}", "--ref-latencies", "{tmp}/short.csv"], "lacks 3 of the 4 reference architectures"),
        (["front", "{dir}", "--ref-latencies", "{tmp}/extra.csv"], "extra.csv: line 6 '{extra}' is not a reference architecture"),
        (["front", "{dir}", "--ref-latencies", "{tmp}/huge.csv"], "huge.csv: line 3 has latency 1e+300 ms; expected milliseconds up to 1e+06"),
        (["front", "{dir}", "--device", "pixel3", "--rays", "1"], "preference rays must be an integer >= 2"),
        (["front", "{tmp}/untrained", "--device", "pixel3"], "no trained hypernetwork"),
        (["front", "{tmp}/nowhere", "--device", "pixel3"], "no MODNAS directory"),
        (["train", "-o", "{tmp}/run", "--scalarisation", "max"], "scalarisation must be one of"),
        (["train", "-o", "{tmp}/run", "--seed", "-1"], "--seed -1 is not a non-negative integer"),
    ],
)
def test_bad_input_is_one_line(hypernet_dir, tmp_path, capsys, argv, message):
    (tmp_path / "untrained").mkdir()
    specs = ModnasModel.load(hypernet_dir).refs.specs
    spec = specs[0]
    (tmp_path / "short.csv").write_text(f"arch,latency_ms\n{spec},3.5\n")
    extra = next(a for a in load_nb201().archs if a not in specs)
    rows = "".join(f"{s},{i + 2}\n" for i, s in enumerate(specs))
    (tmp_path / "extra.csv").write_text(f"arch,latency_ms\n{rows}{extra},3\n")
    (tmp_path / "huge.csv").write_text("arch,latency_ms\n" + "".join(f"{s},{1e300 if i == 1 else 5}\n" for i, s in enumerate(specs)))
    argv = [a.format(dir=hypernet_dir, tmp=tmp_path) for a in argv]
    assert message.format(extra=extra) in one_line_error(capsys, "modnas", *argv)


def test_a_non_finite_surrogate_answer_is_refused_not_printed(hypernet_dir, monkeypatch):
    """Whatever the embedding, a front never holds inf: the model refuses instead."""
    import torch

    model = ModnasModel.load(hypernet_dir)
    monkeypatch.setattr(model, "latency", lambda enc, emb: torch.full((enc.shape[0],), 1e4))
    with pytest.raises(DataError, match="the latency surrogate answers a non-finite latency for this device"):
        model.front(np.zeros(len(model.refs), dtype=np.float32), np.full(len(model.refs), 5.0), 3)


def test_tampered_hypernetwork_is_one_line(hypernet_dir, tmp_path, capsys):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(hypernet_dir, bad)
    with open(bad / "accuracy_surrogate.pt", "ab") as f:
        f.write(b"\0")
    assert "does not match the checksum" in one_line_error(capsys, "modnas", "pick", bad, "--device", "pixel3", "-p", "0.5")


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--cost", "lookup:pixel3"], "takes no --cost"),
        (["--budget", "100"], "drop --budget/--multi-objective"),
        (["--multi-objective"], "drop --budget/--multi-objective"),
        (["--accuracy", "proxy:synflow"], "takes --accuracy tabular:DATASET"),
        (["--space", "fbnet"], "only 'nb201'"),
        (["--devices", "pixel3,my_phone"], "my_phone"),
        (["--devices", " , "], "names no device"),
        (["--param", "steps=0"], "steps must be an integer >= 1"),
        (["--param", "warp=9"], "unknown setting(s) ['warp']"),
        (["--param", "seed=3"], "set through its own option"),
    ],
)
def test_search_algo_modnas_bad_input_is_one_line(tmp_path, capsys, extra, message):
    assert message in one_line_error(capsys, "search", "--algo", "modnas", "-o", tmp_path / "h", *extra)


def test_train_piped_prints_plain_progress_lines_while_it_runs(tmp_path, capsys, monkeypatch):
    """stderr not a terminal (captured): plain `phase: done/total` lines, no bar control codes."""
    from nas.search.modnas import config

    tiny_defaults = {k: v for k, v in TINY.items() if k not in ("devices", "steps")}
    monkeypatch.setitem(config.MODE_DEFAULTS, "surrogate", tiny_defaults)  # `modnas train` has no option for these
    code, out, err = run(capsys, "modnas", "train", "-o", tmp_path / "run", "--steps", TINY["steps"],
                         "--devices", ",".join(DEVICES))
    assert code == 0, err
    assert "hypernetwork saved in" in out
    lines = err.splitlines()
    assert f"hypernetwork: {TINY['steps']}/{TINY['steps']}" in " ".join(lines)
    assert any(line.startswith("hypernetwork: 1/") for line in lines)  # the first step shows at once, not at the end
    assert any(line.startswith("latency surrogate: ") for line in lines)
    assert "\x1b" not in err and "\r" not in err


def test_modnas_is_a_registered_request_algorithm(table):
    """Found through the one registry like the others; a budgeted search() refuses it and says what to call."""
    from hwprof import registry
    from hwprof.errors import ConfigError
    from nas.evaluators import TabularEvaluator
    from nas.search import algorithm_kind, algorithm_names, algorithm_params, get_algorithm, search
    from nas.search.modnas import algorithm
    from nas.spaces import NB201Space

    assert "modnas" in registry.names("search") and "modnas" in algorithm_names()
    assert get_algorithm("modnas") is algorithm.run and algorithm_kind("modnas") == "request"
    assert algorithm_kind("layernas") == "problem"
    params = algorithm_params("modnas")
    assert params["steps"] == 5000 and "seed" not in params and "out_dir" not in params
    with pytest.raises(ConfigError, match=r"run_search\(SearchRequest\(algorithm='modnas'"):
        search("modnas", NB201Space(), TabularEvaluator(table), [], budget=10)


def test_run_search_trains_modnas_like_the_command(hypernet_dir, tmp_path):
    """The same request through the library: the finished directory is found (same configuration), not retrained."""
    from nas.search import SearchRequest, run_search

    params = {k: v for k, v in TINY.items() if k != "devices"}
    outcome = run_search(SearchRequest(algorithm="modnas", devices=DEVICES, out=hypernet_dir, params=params))
    assert outcome.result is None and outcome.files == (hypernet_dir / "modnas.json",)
    assert outcome.summary[0].startswith(f"hypernetwork saved in {hypernet_dir} (surrogate mode, ")
    assert outcome.summary[1].startswith("accuracy objective: surrogate")
