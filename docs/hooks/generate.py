"""mkdocs hook: the pages generated at build time, so they can never go stale.

- ``cli.md``: the CLI reference, walked from the typer app's click command tree
  (``hwprof.cli.command_tree``, the same walk that applies ``[defaults]``):
  every command, its help, every argument and option with its default.
- ``results.md``: the benchmark tables, from ``benchmarks/results/*.json``:
  how each was obtained (the benchmark script's own docstring), on which
  machine (the host metadata in the JSON), and its figures.

``mkdocs build`` runs it (``hooks:`` in mkdocs.yml); the functions are plain
and tested in ``tests/docs/``.
"""

from __future__ import annotations

import ast
import inspect
import json
import math
import re
import sys
from pathlib import Path
from typing import Any, Iterable, Iterator

ROOT = Path(__file__).resolve().parents[2]
# Imported now, from this checkout: mkdocs puts the path back after loading a hook, and an installed hwprof
# elsewhere must not document another tree.
sys.path.insert(0, str(ROOT))
try:
    from hwprof.cli import command_tree
    from hwprof.cli.main import app
finally:
    sys.path.remove(str(ROOT))

GENERATED = {"cli.md": "cli_reference", "results.md": "results_page"}


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    for name, function in GENERATED.items():
        files.append(File.generated(config, name, content=globals()[function]()))
    return files


# -- shared markdown helpers ------------------------------------------------------------------------------------

def _escape(text: str) -> str:
    """Markdown-safe prose: ``<dev>`` and ``*`` outside code spans stay literal; newlines become spaces."""
    parts = str(text).split("`")
    for i in range(0, len(parts), 2):  # outside backticks
        parts[i] = parts[i].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("*", r"\*")
    return "`".join(parts)


def _cell(text: Any) -> str:
    return _escape(" ".join(str(text).split())).replace("|", r"\|")


def _code(text: Any) -> str:
    text = str(text).replace("|", "&#124;")
    return f"``{text}``" if "`" in text else f"`{text}`"


def _table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


# -- CLI reference ----------------------------------------------------------------------------------------------

def cli_reference() -> str:
    root = command_tree.root_command(app)
    lines = [
        "# CLI reference",
        "",
        "Generated from the command tree of `hwprof.cli.main.app` when the documentation is built.",
        "Every option's default can be changed for a project in `hwprof.toml` (`[defaults]`, see",
        "[Getting started](getting-started.md#project-defaults-hwproftoml)); an option given on the command line wins.",
        "",
    ]
    for path, command in command_tree.walk(root):
        name = " ".join(("hwprof", *path))
        lines += [f"{'#' * min(2 + max(len(path) - 1, 0), 4)} `{name}`" if path else "## `hwprof` (global options)", ""]
        help_text = inspect.cleandoc(command.help or "") if path else ""
        if help_text:
            lines += [_escape(paragraph) + "\n" for paragraph in help_text.split("\n\n")]
        if command_tree.is_group(command):
            subs = [f"`{name} {sub}`" for sub in command.commands]
            if path:
                lines += ["Commands: " + ", ".join(subs) + ".", ""]
        usage = " ".join([name, "[OPTIONS]", *(_argument_usage(a) for a in command_tree.arguments(command))])
        if command_tree.is_group(command):
            usage += " COMMAND [ARGS]..."
        lines += ["```", usage, "```", ""]
        args = command_tree.arguments(command)
        if args:
            lines += _table(["argument", "required", "default", "description"],
                            ([_code(a.name.upper()), "yes" if a.required else "no", _default(a), _cell(_help(a))]
                             for a in args))
        opts = command_tree.options(command)
        if opts:
            lines += _table(["option", "default", "description"],
                            ([", ".join(_code(o) for o in (*p.opts, *p.secondary_opts)), _default(p), _cell(_help(p))]
                             for p in opts))
    return "\n".join(lines)


def _help(param: Any) -> str:
    return getattr(param, "help", None) or ""


def _argument_usage(argument: Any) -> str:
    return argument.name.upper() if argument.required else f"[{argument.name.upper()}]"


def _default(param: Any) -> str:
    value = param.default
    if callable(value) or value is None or (getattr(param, "required", False) and value is None):
        return "—"
    if isinstance(value, (list, tuple)):
        return "—" if not value else _code(", ".join(map(str, value)))
    if isinstance(value, bool) and getattr(param, "secondary_opts", None):
        return _code(param.opts[0] if value else param.secondary_opts[0])
    if isinstance(value, bool):
        return "on" if value else "off"
    return _code(value)


# -- benchmark results ------------------------------------------------------------------------------------------

HOST_FIELDS = ("hostname", "cpu_model", "cores_logical", "cores_physical", "cpu_affinity", "cpu_freq_mhz",
               "scaling_governor", "os", "kernel", "machine", "python", "mem_total_mb", "loadavg", "thread_env",
               "versions")
SETTINGS_KEYS = ("settings", "config")
MAX_TABLE_ROWS = 40
MAX_TABLE_COLUMNS = 14
MAX_LEVEL = 5  # headings below ##### are summarised, not expanded
MAX_INLINE_VALUES = 8


def results_page(results_dir: Path = ROOT / "benchmarks" / "results") -> str:
    files = sorted(results_dir.glob("*.json"))
    lines = [
        "# Benchmark results",
        "",
        "Generated when the documentation is built from every `benchmarks/results/*.json` (the measured",
        "figures), with how each was obtained (the docstring of the benchmark script that wrote it: run it",
        "again to reproduce) and the machine it ran on (the host metadata the JSON records). The discussion",
        "of the figures is in the topic pages: [Profiling](profiling.md), [Predictors](predictors.md),",
        "[Search](search.md), [MODNAS](modnas.md), [Runtimes](runtimes.md).",
        "",
        "Tables show up to 40 rows and 14 columns; what is left out is counted and stays in the JSON.",
        "",
    ]
    lines += [f"- [{f.stem}](#{_slug(f.stem)})" for f in files] + [""]
    for f in files:
        lines += _result_section(f)
    return "\n".join(lines)


def _slug(text: str) -> str:
    return re.sub(r"[^\w\- ]", "", text.lower()).strip().replace(" ", "-")


def script_for(json_path: Path) -> Path | None:
    """benchmarks/<stem>.py, or for ``profiling-loaded`` the ``profiling`` script that wrote it."""
    bench = json_path.parent.parent
    for stem in (json_path.stem, json_path.stem.split("-")[0]):
        if (bench / f"{stem}.py").is_file():
            return bench / f"{stem}.py"
    return None


def _result_section(path: Path) -> list[str]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        data = {"results": data}
    lines = [f"## {path.stem}", "", f"File: `benchmarks/results/{path.name}`.", ""]
    script = script_for(path)
    if script is not None:
        doc = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8"))) or ""
        lines += [f"**How it was obtained** (`benchmarks/{script.name}`):", ""]
        lines += _quote(doc) + [""]
    lines += ["**Machine**:", ""] + _machine(data) + [""]
    settings = {k: data[k] for k in SETTINGS_KEYS if isinstance(data.get(k), dict)}
    for key, value in settings.items():
        lines += [f"**{key.capitalize()}**:", ""] + _key_values(value) + [""]
    scalars = {k: v for k, v in data.items() if _is_scalar(v) or _is_short_list(v)}
    if scalars:
        lines += _key_values(scalars) + [""]
    for key, value in data.items():
        if key in SETTINGS_KEYS or key == "host" or key in scalars:
            continue
        lines += _render(value, [key], level=3)
    return lines


def _quote(doc: str) -> list[str]:
    """The docstring as a block quote; its indented command lines (``python ...``) stay a code block.

    An indented code block, not a fence: Python-Markdown's fences do not work inside a block quote.
    """
    out: list[str] = []
    in_code = False
    for line in doc.splitlines():
        if line.startswith("    ") and line.strip().startswith(("python ", "hwprof ", "nice ", "$ ")):
            if not in_code:
                out.append(">")
                in_code = True
            out.append(">     " + line.strip())
            continue
        if in_code:
            out.append(">")
            in_code = False
        out.append("> " + _escape(line) if line.strip() else ">")
    return out


def _machine(data: dict) -> list[str]:
    host = data.get("host") if isinstance(data.get("host"), dict) else None
    if host is None:
        partial = {k: v for src in (data, *(data.get(k) for k in SETTINGS_KEYS)) if isinstance(src, dict)
                   for k, v in src.items() if k in ("python", "machine", "processor", "torch", "threads", "torch_threads")}
        if not partial:
            return ["not recorded in this file."]
        return ["only partly recorded in this file: " + ", ".join(f"{k} {_fmt(v)}" for k, v in partial.items()) + "."]
    rows = [[k, _cell(_fmt(host[k]))] for k in HOST_FIELDS if k in host and host[k] not in (None, {}, [])]
    return _table(["host", "value"], rows)[:-1]


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _is_short_list(value: Any) -> bool:
    return isinstance(value, list) and len(value) <= MAX_INLINE_VALUES and all(_is_scalar(v) for v in value)


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower() if value is not None else "—"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, list):
        if all(_is_scalar(v) for v in value) and len(value) <= MAX_INLINE_VALUES:
            return ", ".join(_fmt(v) for v in value)
        return f"{len(value)} values"
    if isinstance(value, dict):
        if all(_is_scalar(v) for v in value.values()) and len(value) <= MAX_INLINE_VALUES:
            return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
        return f"{len(value)} entries"
    return str(value)


def _key_values(mapping: dict) -> list[str]:
    return _table(["key", "value"], ([_code(k), _cell(_fmt(v))] for k, v in mapping.items()))[:-1]


def _flatten(record: dict, prefix: str = "", depth: int = 2) -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}, ``depth`` levels down; deeper values are summarised by ``_fmt``."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and depth > 1 and value:
            out.update(_flatten(value, name + ".", depth - 1))
        else:
            out[name] = value
    return out


def _records_table(label: str, records: list[tuple[str, dict]]) -> list[str]:
    flat = [(name, _flatten(r)) for name, r in records]
    cols = list(dict.fromkeys(c for _, r in flat for c in r))
    more_cols = cols[MAX_TABLE_COLUMNS:]
    cols = cols[:MAX_TABLE_COLUMNS]
    shown = flat[:MAX_TABLE_ROWS]
    lines = _table([label, *(_cell(c) for c in cols)],
                   ([_code(name), *(_cell(_fmt(r[c])) if c in r else "" for c in cols)] for name, r in shown))
    notes = []
    if len(flat) > len(shown):
        notes.append(f"{len(flat) - len(shown)} more rows")
    if more_cols:
        notes.append(f"{len(more_cols)} more columns ({_escape(', '.join(more_cols[:6]))}{', ...' if len(more_cols) > 6 else ''})")
    if notes:
        lines[-1:-1] = ["", "Not shown here, in the JSON: " + "; ".join(notes) + "."]
    return lines


def _render(value: Any, path: list[str], level: int) -> list[str]:
    name = " / ".join(path)
    heading = "#" * min(level, 6) + " " + name
    if _is_scalar(value) or _is_short_list(value):
        return [f"`{name}`: {_cell(_fmt(value))}", ""]
    if isinstance(value, list):
        if value and all(isinstance(v, dict) for v in value):
            return [heading, ""] + _records_table("#", [(str(i), v) for i, v in enumerate(value)])
        return [f"`{name}`: {_fmt(value)} (in the JSON)", ""]
    if not isinstance(value, dict) or not value:
        return []
    if all(_is_scalar(v) or _is_short_list(v) for v in value.values()):
        return [heading, ""] + _key_values(value) + [""]
    if all(isinstance(v, dict) for v in value.values()) and len(value) > 1:
        return [heading, ""] + _records_table("", list(value.items()))
    if all(isinstance(v, list) for v in value.values()):
        return [f"`{name}`: {len(value)} series ({_escape(', '.join(list(value)[:6]))}, ...) in the JSON", ""]
    if level >= MAX_LEVEL:
        return [f"`{name}`: {_fmt(value)} (in the JSON)", ""]
    out = [heading, ""]
    flat = {k: v for k, v in value.items() if _is_scalar(v) or _is_short_list(v)}
    if flat:
        out += _key_values(flat) + [""]
    for key, sub in value.items():
        if key not in flat:
            out += _render(sub, path + [str(key)], level + 1)
    return out


def iter_generated() -> Iterator[tuple[str, str]]:
    """(page name, markdown) of every generated page (for tests and a manual look)."""
    for name, function in GENERATED.items():
        yield name, globals()[function]()
