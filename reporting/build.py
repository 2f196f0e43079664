"""``build_report``: what ``hwprof report`` does, as one library call (the quickstart calls it too)."""

from __future__ import annotations

import datetime as _dt
import socket
from pathlib import Path
from typing import Callable, Mapping, Sequence

from hwprof import __version__
from hwprof.errors import ConfigError
from reporting.inputs import ModnasInput, PredictorInput, SearchInput, StoreInput, detect_kinds, load_input
from reporting.page import ReportTable, Section, check_target, render, write_report
from reporting.sections import extra_sections, modnas_section, predictor_section, search_sections, store_section

DEFAULT_TITLE = "hwprof report"
# on_progress(task, done, total, info): the shape of hwprof.cli.progress.ProgressDisplay.update
ProgressCallback = Callable[[str, int, "int | None", str], None]


def build_report(
    inputs: Sequence[Path | str],
    out: Path | str,
    *,
    title: str | None = None,
    overwrite: bool = False,
    extra: Mapping[str, ReportTable] | None = None,
    on_progress: ProgressCallback | None = None,
) -> Path:
    """Write one self-contained HTML report of ``inputs`` to ``out``; returns ``out``.

    Each input is recognised by its contents (``reporting.inputs.detect_kinds``):
    a store, a predictor directory, a search output directory or a MODNAS
    directory or front; a directory holding several (MODNAS beside other
    searches' results) is drawn as each of them. ``extra`` adds titled tables after them (e.g. the
    quickstart's chosen architectures, predicted vs measured). An existing
    ``out`` is refused unless ``overwrite``; the file appears whole or not at all.
    """
    out = Path(out)
    if not inputs:
        raise ConfigError("give at least one report input (a store, predictor, search or MODNAS directory)")
    for name, table in (extra or {}).items():
        if not isinstance(table, ReportTable):
            raise ConfigError(f"extra report section {name!r} is a {type(table).__name__}; expected a ReportTable")
    check_target(out, overwrite)
    sections: list[Section] = []
    kinds = [detect_kinds(path) for path in inputs]  # every path checked before the slow reads
    for done, (path, path_kinds) in enumerate(zip(inputs, kinds), 1):
        for kind in path_kinds:
            sections.extend(_sections(load_input(path, kind)))
        if on_progress is not None:
            on_progress("reading report inputs", done, len(inputs), str(path))
    sections.extend(extra_sections(extra or {}))
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    preamble = (
        f"written {now} on {socket.gethostname()} by hwprof {__version__}",
        "inputs: " + ", ".join(str(p) for p in inputs),
    )
    check_target(out, overwrite)  # again: loading the inputs took a while
    return write_report(out, render(title or DEFAULT_TITLE, sections, preamble))


def _sections(data: StoreInput | PredictorInput | SearchInput | ModnasInput) -> list[Section]:
    if isinstance(data, StoreInput):
        return [store_section(data)]
    if isinstance(data, PredictorInput):
        return [predictor_section(data)]
    if isinstance(data, SearchInput):
        return search_sections(data)
    return [modnas_section(data)]
