"""`hwprof modnas front --json FILE`: checked before the front is computed, never replaced unasked, written whole."""

import json

from tests.nas.test_modnas_cli import hypernet_dir, one_line_error, run  # noqa: F401 (a fixture)


def test_an_existing_json_is_refused_before_the_model_is_read(tmp_path, capsys):
    existing = tmp_path / "pixel3.json"
    existing.write_text("another device's front")
    line = one_line_error(capsys, "modnas", "front", tmp_path / "no-model", "--device", "pixel3", "--json", existing)
    assert line == f"error: --json {str(existing)!r} exists; give --overwrite to replace it, or another path"
    assert existing.read_text() == "another device's front"


def test_a_folder_or_a_missing_folder_is_refused_in_one_line(tmp_path, capsys):
    line = one_line_error(capsys, "modnas", "front", tmp_path / "no-model", "--device", "pixel3", "--json", tmp_path)
    assert "is a folder; expected a file path" in line
    line = one_line_error(capsys, "modnas", "front", tmp_path / "no-model", "--device", "pixel3",
                          "--json", tmp_path / "nope" / "f.json")
    assert "does not exist" in line and "Errno" not in line


def test_overwrite_replaces_the_json(hypernet_dir, tmp_path, capsys):  # noqa: F811
    path = tmp_path / "f.json"
    path.write_text("old")
    code, out, err = run(capsys, "modnas", "front", hypernet_dir, "--device", "samsung_s7", "--rays", 3, "--json", path,
                         "--overwrite")
    assert code == 0, err
    assert json.loads(path.read_text())["device"] == "samsung_s7"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]  # no temporary file left beside it


def test_a_reference_latency_below_a_nanosecond_is_refused_naming_its_row(hypernet_dir, tmp_path, capsys):  # noqa: F811
    from nas.search.modnas import ModnasModel
    from nas.tabular import load_nb201

    table = load_nb201()
    specs = ModnasModel.load(hypernet_dir).refs.specs
    lat = table.latency_ms["samsung_s7"]
    rows = [f"{s},{1e-300 if i == 2 else lat[table.index_of(s)]}\n" for i, s in enumerate(specs)]
    path = tmp_path / "refs.csv"
    path.write_text("arch,latency_ms\n" + "".join(rows))
    for command in (["front"], ["pick", "--preference", "0.5"]):
        line = one_line_error(capsys, "modnas", *command[:1], hypernet_dir, *command[1:], "--ref-latencies", path)
        assert line == "error: refs.csv: line 4 has latency 1e-300 ms; expected milliseconds of at least 1e-06 (a unit slip?)"


def test_device_embedding_refuses_sub_nanosecond_latencies():
    import pytest

    from hwprof.errors import DataError
    from nas.search.modnas.refs import device_embedding

    with pytest.raises(DataError, match="reference latency 1 is 1e-300 ms; expected milliseconds of at least 1e-06"):
        device_embedding([1.0, 1e-300, 2.0])


def test_a_trained_directory_of_another_configuration_names_the_differing_field(hypernet_dir, capsys):  # noqa: F811
    from tests.nas.test_modnas_cli import tiny_params
    from tests.nas.test_modnas_train import DEVICES

    params = [p.replace("steps=12", "steps=13") for p in tiny_params()]
    line = one_line_error(capsys, "search", "--algo", "modnas", "--devices", ",".join(DEVICES), "-o", hypernet_dir, *params)
    assert "already holds a trained hypernetwork of a different configuration (steps 12 there, 13 now)" in line


def test_a_checkpoint_and_a_set_up_of_another_configuration_name_the_differing_field(tmp_path):
    import pytest

    from hwprof.errors import ConfigError
    from nas.search.modnas import train_modnas
    from tests.nas.test_modnas_train import tiny

    out = tmp_path / "m"

    def stop(progress):
        if progress.phase == "hypernetwork" and progress.done >= 7:  # after the checkpoint of step 5
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_modnas(tiny(out), stop)
    assert (out / "checkpoint.json").is_file()
    with pytest.raises(ConfigError, match=r"holds a checkpoint of a different configuration \(steps 12 there, 14 now\)"):
        train_modnas(tiny(out, steps=14))
    with pytest.raises(ConfigError, match=r"holds the set-up of a different configuration \(n_refs 4 there, 5 now\)"):
        train_modnas(tiny(out, n_refs=5))


def test_a_negative_seed_names_the_option(tmp_path, capsys):
    line = one_line_error(capsys, "search", "--seed", "-1", "--algo", "random", "--cost", "macs", "--multi-objective",
                          "-o", tmp_path / "s")
    assert line == "error: --seed -1 is not a non-negative integer; expected a seed like 0 or 42"
    assert not (tmp_path / "s").exists()
