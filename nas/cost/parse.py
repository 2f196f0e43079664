"""Cost models from short text specs: what ``hwprof search --cost`` accepts, for notebooks too.

Grammar (one spec per cost objective; ``KIND`` or ``KIND:ARG`` or ``KIND:ARG1:ARG2``)::

    lookup:DEVICE           a lat_<DEVICE>_ms column of the NB201 table (bundled, or ``table``); nb201 only
    lookup-csv:FILE:COLUMN  a column of a benchmark-style CSV (``arch`` + ``lat_<device>_ms``); COLUMN is
                            <device> or the full column name
    store:DB:DEVICE         median latencies measured on DEVICE in the hwprof store DB
    predictor:DIR           a latency predictor saved with ``hwprof predict train``
    measure:DEVICE          profile each architecture on the DEVICE adapter as the search proposes it, into ``db``
    params                  parameter count
    macs                    multiply-accumulates of one forward pass

FILE and DB may contain ``:``; the last ``:`` separates them from COLUMN/DEVICE.
Every latency is named ``latency_ms``; ``parse_costs`` renames several of them
``latency_ms_<tag>`` (tag: DEVICE, COLUMN or DIR's last part) so that
constraints can tell them apart.
"""

from __future__ import annotations

import re
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from hwprof.errors import ConfigError
from nas.cost.base import CostModel
from nas.cost.counts import MacsCost, ParamsCost
from nas.cost.lookup import LookupCost
from nas.cost.measured import MeasuredCost
from nas.cost.predictor import PredictorCost
from nas.tabular import nb201_table_for

if TYPE_CHECKING:
    from hwprof.spaces import SearchSpace

COST_FORMS = (
    "lookup:DEVICE (column of the bundled NB201 table) | lookup-csv:FILE:COLUMN | store:DB:DEVICE | "
    "predictor:DIR | measure:DEVICE (profile into the store) | params | macs"
)
LATENCY = "latency_ms"


@dataclass(frozen=True)
class CostSpec:
    """A cost spec split into its kind and arguments (nothing opened or read yet)."""

    text: str
    kind: str
    args: tuple[str, ...]

    @property
    def tag(self) -> str:
        """What tells this latency from another: DEVICE, COLUMN or DIR's last part."""
        if not self.args:
            return self.kind
        return Path(self.args[-1]).name if self.kind == "predictor" else self.args[-1]


@dataclass(frozen=True)
class _Form:
    usage: str  # e.g. "lookup-csv:FILE:COLUMN"
    example: str
    build: Callable[..., CostModel]

    @property
    def n_args(self) -> int:
        return self.usage.count(":")


def split_cost(text: str) -> CostSpec:
    """Check a spec against the grammar; ConfigError naming the expected form."""
    kind, sep, rest = str(text).partition(":")
    form = _FORMS.get(kind)
    if form is None:
        raise ConfigError(f"unknown cost objective {text!r}; expected {COST_FORMS}")
    if form.n_args == 0:
        if sep:
            raise ConfigError(f"cost {text!r}: {kind} takes no argument; expected {form.usage}")
        return CostSpec(text, kind, ())
    if form.n_args == 1:
        args: tuple[str, ...] = (rest,)
    else:
        first, sep2, last = rest.rpartition(":")
        args = (first, last) if sep2 else ("",)
    if len(args) != form.n_args or not all(args):
        raise ConfigError(f"cost {text!r}: expected {form.usage}, e.g. {form.example}")
    return CostSpec(text, kind, args)


def parse_cost(
    text: str,
    space: "SearchSpace",
    *,
    table: str | Path | None = None,
    db: str | Path = "hwprof.db",
    resources: ExitStack | None = None,
    command: str = "",
) -> CostModel:
    """The cost model a spec names (grammar in the module docstring).

    ``table``: the NB201 CSV for ``lookup:`` (default: the bundled copy).
    ``db``: the store ``measure:`` profiles into; the profiler it opens is
    closed by ``resources`` when given (otherwise when it is garbage collected).
    ``command`` is recorded with the measurements ``measure:`` stores.
    """
    return parse_costs([text], space, table=table, db=db, resources=resources, command=command)[0]


def parse_costs(
    texts: Sequence[str],
    space: "SearchSpace",
    *,
    table: str | Path | None = None,
    db: str | Path = "hwprof.db",
    resources: ExitStack | None = None,
    command: str = "",
) -> list[CostModel]:
    """Several specs (one per objective); two or more latencies are named ``latency_ms_<tag>``."""
    specs = [split_cost(t) for t in texts]
    costs = [_FORMS[s.kind].build(s, space, table=table, db=db, resources=resources, command=command) for s in specs]
    if sum(c.name == LATENCY for c in costs) > 1:
        for cost, spec in zip(costs, specs):
            if cost.name == LATENCY:
                cost.name = f"{LATENCY}_" + re.sub(r"[^A-Za-z0-9_]", "_", spec.tag)
    return costs


# --- one builder per form --------------------------------------------------------------
def _lookup(spec: CostSpec, space: "SearchSpace", *, table: str | Path | None, **_: object) -> CostModel:
    return LookupCost.from_nb201(nb201_table_for(space, table, f"cost {spec.text!r}"), spec.args[0])


def _lookup_csv(spec: CostSpec, space: "SearchSpace", **_: object) -> CostModel:
    path, column = spec.args
    return LookupCost.from_csv(path, column, space=space)


def _store(spec: CostSpec, space: "SearchSpace", **_: object) -> CostModel:
    from hwprof.store import Store

    path, device = spec.args
    with Store(path, create=False) as store:  # the lookup copies the latencies: nothing stays open
        return LookupCost.from_store(store, device, space=space)


def _predictor(spec: CostSpec, space: "SearchSpace", **_: object) -> CostModel:
    return PredictorCost.load(spec.args[0], space=space)


def _measure(
    spec: CostSpec, space: "SearchSpace", *, db: str | Path, resources: ExitStack | None, command: str, **_: object
) -> CostModel:
    from hwprof.profiling import open_profiler

    profiler = open_profiler(spec.args[0], db, space.name, command=command)
    if resources is not None:
        resources.callback(profiler.close)
    return MeasuredCost(profiler)


def _params(spec: CostSpec, space: "SearchSpace", **_: object) -> CostModel:
    return ParamsCost(space)


def _macs(spec: CostSpec, space: "SearchSpace", **_: object) -> CostModel:
    return MacsCost(space)


_FORMS: dict[str, _Form] = {
    "lookup": _Form("lookup:DEVICE", "lookup:pixel3", _lookup),
    "lookup-csv": _Form("lookup-csv:FILE:COLUMN", "lookup-csv:mine.csv:pixel3", _lookup_csv),
    "store": _Form("store:DB:DEVICE", "store:hwprof.db:ort-cpu", _store),
    "predictor": _Form("predictor:DIR", "predictor:models/pixel3", _predictor),
    "measure": _Form("measure:DEVICE", "measure:ort-cpu", _measure),
    "params": _Form("params", "params", _params),
    "macs": _Form("macs", "macs", _macs),
}
