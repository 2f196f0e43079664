"""One self-contained HTML page: sections of figures, tables and notes, with plotly.js embedded (works offline).

Every figure is a ``div.report-plot`` drawn by one script from a JSON block,
after plotly.js (inlined, no CDN). A small collector, installed before
anything else runs, records uncaught errors, rejected promises and
``console.error`` calls into ``#report-console-errors`` (shown only when not
empty), and ``body[data-plots-rendered]`` says how many plots finished
drawing (``body[data-plot-boxes]``: where each is on the page), so a headless
browser can check the page as a reader would see it.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, Union

from hwprof.errors import ConfigError
from hwprof.outputs import output_file, write_atomic

Cell = Union[str, int, float, None]
FOLD_ROWS = 30


@dataclass(frozen=True)
class ReportTable:
    """A table of plain values: ``columns`` names, one tuple per row; ``note`` is shown under it.

    This is also the shape of the extra sections a caller adds to a report
    (``build_report(..., extra={"chosen architectures": ReportTable(...)})``).
    """

    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    note: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(str(c) for c in self.columns))
        object.__setattr__(self, "rows", tuple(tuple(r) for r in self.rows))
        if not self.columns:
            raise ConfigError("a report table needs at least one column")
        for i, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise ConfigError(f"report table row {i} has {len(row)} values; expected {len(self.columns)} ({', '.join(self.columns)})")
            for value in row:
                if value is not None and not isinstance(value, (str, int, float)):
                    raise ConfigError(f"report table row {i} holds a {type(value).__name__}; expected str, int, float or None")


@dataclass(frozen=True)
class Note:
    text: str
    warning: bool = False


@dataclass(frozen=True)
class Plot:
    """A plotly figure (``plotly.graph_objects.Figure``)."""

    figure: Any


Block = Union[ReportTable, Note, Plot]


@dataclass(frozen=True)
class Section:
    title: str
    blocks: tuple[Block, ...] = field(default_factory=tuple)
    subtitle: str = ""


def format_cell(value: Cell) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.4g}"
    return str(value)


_COLLECTOR = """(function () {
  var errors = [];
  function show() {
    var el = document.getElementById("report-console-errors");
    if (!el) return;
    el.textContent = errors.join("\\n");
    el.setAttribute("data-count", String(errors.length));
    el.style.display = errors.length ? "block" : "none";
  }
  function put(message) { errors.push(String(message)); show(); }
  window.addEventListener("error", function (e) { put("error: " + (e.message || e)); });
  window.addEventListener("unhandledrejection", function (e) {
    put("unhandled rejection: " + (e.reason && e.reason.message ? e.reason.message : e.reason));
  });
  var original = console.error;
  console.error = function () { put("console.error: " + Array.prototype.join.call(arguments, " ")); return original.apply(console, arguments); };
  document.addEventListener("DOMContentLoaded", show);
  window.reportError = put;
})();"""

_DRAW = """(function () {
  var specs = JSON.parse(document.getElementById("report-figures").textContent);
  var config = {displaylogo: false, responsive: true};
  Promise.all(specs.map(function (s) { return Plotly.newPlot(s.id, s.figure.data, s.figure.layout, config); }))
    .then(function () {
      var boxes = specs.map(function (s) {
        var r = document.getElementById(s.id).getBoundingClientRect();
        return [s.id, Math.round(r.left + window.scrollX), Math.round(r.top + window.scrollY), Math.round(r.width), Math.round(r.height)];
      });
      document.body.setAttribute("data-plot-boxes", JSON.stringify(boxes));
      document.body.setAttribute("data-plots-rendered", String(specs.length));
    },
          function (e) { window.reportError("plotting failed: " + (e && e.message ? e.message : e)); });
})();"""

_STYLE = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; margin: 0 auto; max-width: 1100px;
       padding: 1.5em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
.sub { color: #666; margin-top: 0; font-size: 0.9em; word-break: break-all; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.85em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
td { max-width: 40em; word-break: break-all; }
.note { color: #444; } .warn { background: #fff4e0; border-left: 4px solid #e8a33c; padding: 0.4em 0.8em; }
.report-plot { width: 100%; margin: 0.5em 0; }
#report-console-errors { display: none; background: #fde8e8; border: 1px solid #d33; padding: 0.6em; white-space: pre-wrap; }
"""


def render(title: str, sections: Sequence[Section], preamble: Sequence[str] = ()) -> str:
    """The whole page as text."""
    from plotly.offline import get_plotlyjs

    figures: list[dict[str, Any]] = []
    body: list[str] = [f"<h1>{html.escape(title)}</h1>"]
    body += [f'<p class="sub">{html.escape(line)}</p>' for line in preamble]
    body.append('<pre id="report-console-errors" data-count="0"></pre>')
    for section in sections:
        body.append(f"<section><h2>{html.escape(section.title)}</h2>")
        if section.subtitle:
            body.append(f'<p class="sub">{html.escape(section.subtitle)}</p>')
        for block in section.blocks:
            body.append(_block(block, figures))
        body.append("</section>")
    data = json.dumps(figures, allow_nan=False).replace("</", "<\\/")
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style>",
        f"<script>{_COLLECTOR}</script>",
        f"<script>{get_plotlyjs()}</script>",
        "</head><body>",
        *body,
        f'<script type="application/json" id="report-figures">{data}</script>',
        f"<script>{_DRAW}</script>",
        "</body></html>",
    ])  # fmt: skip


def _block(block: Block, figures: list[dict[str, Any]]) -> str:
    if isinstance(block, Note):
        return f'<p class="{"warn" if block.warning else "note"}">{html.escape(block.text)}</p>'
    if isinstance(block, Plot):
        div_id = f"plot-{len(figures)}"
        figures.append({"id": div_id, "figure": json.loads(block.figure.to_json())})
        return f'<div id="{div_id}" class="report-plot"></div>'
    return table_html(block)


def table_html(table: ReportTable) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    rows = []
    for row in table.rows:
        cells = "".join(
            f'<td class="num">{html.escape(format_cell(v))}</td>' if isinstance(v, (int, float)) and not isinstance(v, bool)
            else f"<td>{html.escape(format_cell(v))}</td>"
            for v in row
        )
        rows.append(f"<tr>{cells}</tr>")
    note = f'<p class="note">{html.escape(table.note)}</p>' if table.note else ""
    text = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    if len(table.rows) > FOLD_ROWS:  # long tables start folded so the plots stay in view
        text = f"<details><summary>{len(table.rows)} rows</summary>{text}</details>"
    return text + note


def check_target(out: Path, overwrite: bool) -> Path:
    """The file to write the report to (a link followed); ConfigError, before any input is read, unless it can be.

    As every ``-o`` file (``hwprof.outputs.output_file``): an existing file is kept unless ``--overwrite``,
    a folder, pipe or device is refused. A missing folder is created for the report (``write_report``).
    """
    if out.is_dir():
        raise ConfigError(f"report output {str(out)!r} is a directory; give a file name such as {str(out / 'report.html')!r}")
    parent = out.parent if str(out.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise ConfigError(f"cannot write the report to {str(out)!r}: {str(parent)!r} is not a directory")
    if not parent.exists():
        return out
    return output_file(out, overwrite=overwrite)


def write_report(out: Path, text: str) -> Path:
    """Create the report's folder when missing, then write it atomically (a reader never sees half a report)."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {str(out.parent)!r} for the report: {exc.strerror or exc}") from None
    write_atomic(check_target(out, overwrite=True), text)
    return out
