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
import math
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


def _same_number(text: Any, value: Any) -> bool:
    """A CSV cell (the ``repr`` the search wrote) holds the number the JSON records (None there: not finite)."""
    try:
        number = float(text)
    except (TypeError, ValueError):
        return False
    return number == value if value is not None else not math.isfinite(number)


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
    again = "(pass --overwrite to start the search again)"
    # The JSON's history is the record; the CSV written with it must say exactly the same (an edited or cut
    # CSV, or a JSON that lost entries, is refused rather than trusted either way).
    try:
        entries = list(data["history"])
        # a non-finite accuracy is recorded as null (e.g. an evaluation that failed to train)
        recorded = [(str(e["spec"]), math.nan if e["accuracy"] is None else float(e["accuracy"])) for e in entries]
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"cannot resume from {str(json_path)!r}: its history is unreadable ({exc!r}) {again}") from None
    if len(recorded) != data.get("n_evaluations") or len({s for s, _ in recorded}) != len(recorded):
        raise DataError(f"cannot resume from {str(json_path)!r}: its history does not match its n_evaluations {again}")
    try:
        with open(csv_path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot resume from {str(csv_path)!r}: {exc} {again}") from None
    if len(rows) != len(recorded):
        raise DataError(
            f"cannot resume from {str(csv_path)!r}: {len(rows)} evaluations, {json_path.name} records {len(recorded)}; "
            f"expected the history written with it {again}"
        )
    for line, (row, entry, (spec, accuracy)) in enumerate(zip(rows, entries, recorded), start=2):
        same = row.get("spec") == spec and _same_number(row.get("accuracy"), entry.get("accuracy"))
        same = same and row.get("feasible") == str(int(bool(entry.get("feasible"))))
        costs = entry.get("costs") if isinstance(entry.get("costs"), dict) else {}
        same = same and all(_same_number(row.get(name), value) for name, value in costs.items())
        if not same:
            raise DataError(
                f"cannot resume from {str(csv_path)!r}: line {line} does not match evaluation {line - 1} of "
                f"{json_path.name} ({spec} at {accuracy!r}); the files were changed after the search wrote them {again}"
            )
    return dict(recorded)
