"""Whose results a search directory holds: a search never replaces another search's files unasked.

A budgeted search writes ``<algo>_seed<seed>.json`` and ``..._history.csv``;
its JSON records the settings that define the run (``run_settings``). Before
an expensive search starts, ``check_previous_results`` compares them with what
the directory already holds under the same names: the same search again is
fine (it is reproducible from its seed, so it rewrites the same results),
another search is refused unless the caller asks to overwrite. MODNAS output
directories follow the same rule through their run hash.

An interrupted search leaves its completed evaluations there (stop reason
``"interrupted"``, ``"partial": true``); ``recorded_evaluations`` reads them
back so the same search resumes instead of evaluating them again.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from hwprof.errors import ConfigError, DataError

if TYPE_CHECKING:
    from nas.cost.base import Constraint
    from nas.search.request import SearchRequest

SETTINGS_KEY = "settings"


def result_paths(directory: str | Path, stem: str) -> tuple[Path, Path]:
    """(history CSV, result JSON) of the search named ``stem`` (``<algo>_seed<seed>``) in ``directory``."""
    out = Path(directory)
    return out / f"{stem}_history.csv", out / f"{stem}.json"


def run_settings(request: "SearchRequest", budget: int, constraints: Sequence["Constraint"]) -> dict[str, Any]:
    """What defines a search's results, as JSON values: the request's specs, resolved budget and constraints."""
    settings = {
        "algorithm": request.algorithm,
        "space": request.space,
        "accuracy": request.accuracy,
        "costs": list(request.costs),
        "constraints": [str(c) for c in constraints],
        "budget": int(budget),
        "seed": int(request.seed),
        "multi_objective": bool(request.multi_objective),
        "params": dict(request.params),
        "table": None if request.table is None else str(request.table),
    }
    return json.loads(json.dumps(settings, default=str))  # the form it has once read back from the JSON


def check_previous_results(directory: str | Path, stem: str, settings: dict[str, Any], overwrite: bool) -> None:
    """ConfigError when ``directory`` holds ``stem`` results of a search with other settings (unless ``overwrite``)."""
    csv_path, json_path = result_paths(directory, stem)
    if overwrite or not (csv_path.exists() or json_path.exists()):
        return
    previous, why = _recorded_settings(json_path)
    if previous == settings:
        return
    if previous is not None:
        differ = sorted(k for k in settings.keys() | previous.keys() if settings.get(k) != previous.get(k))
        why = "; ".join(f"{k} {previous.get(k)!r} there, {settings.get(k)!r} now" for k in differ)
    raise ConfigError(
        f"{str(Path(directory))!r} already holds {stem} results of another search ({why}); "
        "choose another output directory or pass --overwrite to replace them"
    )


def _recorded_settings(json_path: Path) -> tuple[dict[str, Any] | None, str]:
    """The settings a result JSON records, or None and why they cannot be known."""
    if not json_path.is_file():
        return None, f"{json_path.name} is missing next to its history CSV"
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return None, f"{json_path.name} is unreadable: {exc}"
    settings = data.get(SETTINGS_KEY) if isinstance(data, dict) else None
    if not isinstance(settings, dict):
        return None, f"{json_path.name} records no search settings"
    return settings, ""


def recorded_evaluations(directory: str | Path, stem: str, settings: dict[str, Any]) -> dict[str, float] | None:
    """spec -> accuracy of the evaluations an interrupted run of the same search left in ``directory``; None when
    there is none (no results, finished results, or another search's)."""
    csv_path, json_path = result_paths(directory, stem)
    previous, _ = _recorded_settings(json_path)
    if previous != settings:
        return None
    data = json.loads(json_path.read_text(encoding="utf-8"))  # readable: _recorded_settings parsed it
    if not data.get("partial"):
        return None
    scores: dict[str, float] = {}
    try:
        with open(csv_path, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                scores[row["spec"]] = float(row["accuracy"])
    except (OSError, UnicodeDecodeError, csv.Error, KeyError, TypeError, ValueError) as exc:
        raise DataError(
            f"cannot resume from {str(csv_path)!r}: {exc}; expected the history of the interrupted search "
            "(pass --overwrite to start it again)"
        ) from None
    if len(scores) != data.get("n_evaluations"):
        raise DataError(
            f"cannot resume from {str(csv_path)!r}: {len(scores)} evaluations, {json_path.name} records "
            f"{data.get('n_evaluations')!r}; expected the history written with it (pass --overwrite to start it again)"
        )
    return scores
