"""The documentation site builds with `mkdocs build --strict` and no warning; its generated pages are complete."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hwprof.cli import command_tree
from hwprof.cli.main import app

ROOT = Path(__file__).resolve().parents[2]


def _generator():
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "hooks" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_site_builds_strictly_without_warnings(tmp_path):
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (pip install -e '.[docs]')")
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"),
                           "--site-dir", str(site)], cwd=ROOT, capture_output=True, text=True, timeout=240)
    log = proc.stdout + proc.stderr
    warnings = [line for line in log.splitlines() if line.startswith(("WARNING", "ERROR"))]
    assert proc.returncode == 0 and not warnings, log
    cli = (site / "cli" / "index.html").read_text(encoding="utf-8")
    assert "hwprof init" in cli and "--force" in cli and "hwprof modnas train" in cli
    results = (site / "results" / "index.html").read_text(encoding="utf-8")
    assert results.count("How it was obtained") == len(list((ROOT / "benchmarks" / "results").glob("*.json")))
    assert not list(site.rglob("hooks")), "the hook is build code, not a page"


def test_the_cli_reference_lists_every_command_and_option():
    page = _generator().cli_reference()
    root = command_tree.root_command(app)
    n_options = 0
    for path, command in command_tree.walk(root):
        assert f"`{' '.join(('hwprof', *path))}`" in page or not path, path
        for option in command_tree.options(command):
            for flag in (*option.opts, *option.secondary_opts):
                assert f"`{flag}`" in page, (path, flag)
            n_options += 1
    assert n_options > 100  # the whole tree, not a stub of it
    assert "| `--device`, `-d` | `ort-cpu` |" in page  # profile's default, read from the option itself
    assert "| `--calibrate`, `--no-calibrate` | `--calibrate` |" in page


def test_help_text_is_escaped_outside_code_spans():
    gen = _generator()
    assert gen._escape("lat_<device>_ms and `lat_<dev>_ms`") == "lat_&lt;device&gt;_ms and `lat_<dev>_ms`"
    assert gen._cell("a | b\nc") == r"a \| b c"


def test_the_results_page_covers_every_results_file():
    gen = _generator()
    page = gen.results_page()
    files = sorted((ROOT / "benchmarks" / "results").glob("*.json"))
    assert files
    for path in files:
        data = json.loads(path.read_text())
        assert f"## {path.stem}\n" in page and f"`benchmarks/results/{path.name}`" in page
        script = gen.script_for(path)
        assert script is not None, f"no benchmark script wrote {path.name}"
        assert f"(`benchmarks/{script.name}`)" in page
        if isinstance(data.get("host"), dict) and data["host"].get("cpu_model"):
            assert f"| cpu_model | {data['host']['cpu_model']} |" in page
    # a measured figure, formatted, where the JSON has it
    profiling = json.loads((ROOT / "benchmarks" / "results" / "profiling.json").read_text())
    assert f"{profiling['estimators']['min']['spearman_mean']:.4g}" in page


def test_results_tables_are_cut_with_a_note(tmp_path):
    gen = _generator()
    (tmp_path / "results").mkdir()
    rows = [{"device": f"d{i}", "gap": i / 10} for i in range(55)]
    (tmp_path / "results" / "toy.json").write_text(json.dumps({"host": {"cpu_model": "Toy CPU", "cores_logical": 4},
                                                               "settings": {"seed": 0}, "rows": rows}))
    page = gen.results_page(tmp_path / "results")
    assert "| cpu_model | Toy CPU |" in page and "| `seed` | 0 |" in page
    assert "| `39` | d39 | 3.9 |" in page and "| `40` |" not in page and "15 more rows" in page
