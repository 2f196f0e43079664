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
