"""The report's sections, one builder per input kind: plotly figures, tables and notes from the loaded records."""

from __future__ import annotations

import math
import re
from typing import Any, Iterable, Mapping, Sequence

from reporting.inputs import ModnasFront, ModnasInput, PredictorInput, SearchInput, StoreInput
from reporting.page import Block, Note, Plot, ReportTable, Section

BAND = 0.10  # the +-10% band of the predicted-vs-measured plot (the metrics' within_10pct)
MAX_RUNS_SHOWN = 20
MAX_LISTED = 10
MAX_BOX_POINTS = 2000  # beyond this a box draws only its outliers: thousands of SVG points make the page crawl
HOST_FIELDS = (
    ("hostname", "host"), ("cpu_model", "CPU"), ("cores_logical", "logical cores"), ("cores_physical", "physical cores"),
    ("cpu_affinity", "CPU affinity"), ("scaling_governor", "frequency governor"), ("intel_pstate_no_turbo", "intel_pstate no_turbo"),
    ("cpufreq_boost", "cpufreq boost"), ("cpu_freq_mhz", "CPU MHz"), ("loadavg", "load average"),
    ("mem_total_mb", "memory MB"), ("os", "OS"), ("kernel", "kernel"), ("python", "Python"), ("thread_env", "thread variables"),
)  # fmt: skip


def _figure(**layout: Any) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    layout.setdefault("height", 440)  # the div takes the figure's height (page.py sets none)
    fig.update_layout(template="plotly_white", margin=dict(l=60, r=20, t=60, b=50), **layout)
    return fig


def _value(v: Any) -> str | int | float | None:
    if v is None or isinstance(v, (str, int, float)):
        return v
    if isinstance(v, Mapping):
        return ", ".join(f"{k}={_value(x)}" for k, x in v.items()) or "-"
    if isinstance(v, (list, tuple)):
        return ", ".join(str(_value(x)) for x in v) or "-"
    return str(v)


def _wide(values: Iterable[float]) -> bool:
    """Whether values span enough orders of magnitude to want a log axis."""
    vals = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    return bool(vals) and max(vals) / min(vals) > 20


# --- store ------------------------------------------------------------------------------------------------------


def store_section(data: StoreInput) -> Section:
    blocks: list[Block] = []
    counts = data.summary.counts
    blocks.append(Note(
        f"schema v{data.summary.schema_version}: {counts.get('measurements', 0)} measurements of "
        f"{counts.get('architectures', 0)} architectures on {len(data.summary.per_device)} device(s), "
        f"{counts.get('runs', 0)} run(s). Latencies are each architecture's newest primary estimate."
    ))
    blocks.append(ReportTable(
        ("device", "runtime", "precision", "estimator", "architectures", "median ms", "min ms", "max ms", "unstable"),
        tuple((g.device, g.runtime, g.precision, g.estimator, len(g.specs), _median(g.latency_ms), min(g.latency_ms),
               max(g.latency_ms), g.n_unstable) for g in data.groups),
    ))  # fmt: skip
    blocks.append(Plot(latency_distribution(data)))
    blocks += _warnings(data)
    blocks.append(_host_table(data))
    blocks.append(_protocol_table(data))
    blocks.append(ReportTable(
        ("device · runtime · precision", "device settings"), tuple((g.label, _value(g.settings)) for g in data.groups),
    ))
    runs = data.runs[-MAX_RUNS_SHOWN:]
    blocks.append(ReportTable(
        ("run", "device", "started", "finished", "status", "measurements", "command"),
        tuple((r.id, r.device, r.started_at, r.finished_at, r.status, r.n_measurements, r.command) for r in runs),
        note=f"the last {len(runs)} of {len(data.runs)} runs" if len(data.runs) > len(runs) else "",
    ))
    return Section(f"Measurements: {data.path.name}", tuple(blocks), subtitle=str(data.path))


def _median(values: Sequence[float]) -> float:
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def latency_distribution(data: StoreInput) -> Any:
    import plotly.graph_objects as go

    all_ms = [v for g in data.groups for v in g.latency_ms]
    fig = _figure(title="Latency distribution per device · runtime · precision", yaxis_title="latency (ms)",
                  showlegend=False)  # fmt: skip
    for g in data.groups:
        fig.add_trace(go.Box(
            y=list(g.latency_ms), name=g.label, boxpoints="all" if len(g.latency_ms) <= MAX_BOX_POINTS else "outliers",
            jitter=0.4, pointpos=0, text=list(g.specs),
            hovertemplate="%{text}<br>%{y:.4g} ms<extra>" + g.label + "</extra>",
        ))  # fmt: skip
    if _wide(all_ms):
        fig.update_yaxes(type="log")
    return fig


def _warnings(data: StoreInput) -> list[Block]:
    out: list[Block] = []
    exceeded = [d for d in data.drift_checks if d.exceeded]
    if exceeded:
        out.append(Note(f"drift: {len(exceeded)} of {len(data.drift_checks)} drift checks exceeded their threshold; "
                        "the machine's speed changed during those runs", warning=True))  # fmt: skip
        out.append(ReportTable(
            ("run", "after models", "baseline ms", "now ms", "change"),
            tuple((d.run_id, d.n_done, d.baseline_ms, d.median_ms, f"{d.drift_rel:+.1%}") for d in exceeded),
        ))
    elif data.drift_checks:
        out.append(Note(f"drift: all {len(data.drift_checks)} drift checks stayed within their threshold"))
    else:
        out.append(Note("drift: no drift checks recorded (runs shorter than --drift-every models)"))
    for device, specs in data.unstable_specs.items():
        listed = "; ".join(specs[:MAX_LISTED]) + (f"; and {len(specs) - MAX_LISTED} more" if len(specs) > MAX_LISTED else "")
        out.append(Note(f"unstable: {len(specs)} architecture(s) on {device} were flagged unstable "
                        f"(re-measure with `hwprof profile --again` on a quieter machine): {listed}", warning=True))  # fmt: skip
    unfinished = [r for r in data.runs if r.status != "completed"]
    if unfinished:
        out.append(Note("runs not completed: " + ", ".join(f"#{r.id} {r.status}" for r in unfinished)
                        + " (the same command resumes them)", warning=True))  # fmt: skip
    return out


def _latest_runs(data: StoreInput) -> dict[str, Any]:
    latest: dict[str, Any] = {}
    for r in data.runs:
        latest[r.device] = r
    return latest


def _host_table(data: StoreInput) -> ReportTable:
    latest = _latest_runs(data)
    devices = list(latest)
    rows = [(label, *(_value(latest[d].host.get(key)) for d in devices)) for key, label in HOST_FIELDS]
    versions = sorted({k for d in devices for k in (latest[d].host.get("versions") or {})})
    rows += [(f"version: {k}", *(_value((latest[d].host.get("versions") or {}).get(k)) for d in devices)) for k in versions]
    rows.append(("hwprof", *(latest[d].hwprof_version for d in devices)))
    return ReportTable(("host of the newest run", *devices), tuple(rows), note="where each device's newest run measured")


def _protocol_table(data: StoreInput) -> ReportTable:
    latest = _latest_runs(data)
    devices = list(latest)
    keys = sorted({k for d in devices for k in latest[d].protocol})
    return ReportTable(
        ("protocol setting", *devices), tuple((k, *(_value(latest[d].protocol.get(k)) for d in devices)) for k in keys),
        note="the measurement protocol of each device's newest run (see docs/profiling.md)",
    )


# --- predictor --------------------------------------------------------------------------------------------------------


def predictor_section(data: PredictorInput) -> Section:
    blocks: list[Block] = []
    split = data.extra.get("split") or {}
    about = [
        ("predictor", data.name), ("device", data.device), ("space", data.space),
        ("features", data.extra.get("features")), ("trained on", f"{data.n_train} architectures"),
        ("data", data.extra.get("data")), ("split", _value(split) if split else None), ("saved", data.created_at),
        ("parameters", _value(dict(data.params))),
    ]  # fmt: skip
    blocks.append(ReportTable(("", "value"), tuple((k, _value(v)) for k, v in about)))
    m = data.metrics
    if m is None:
        blocks.append(Note("no held-out metrics: the predictor was saved without a validation split", warning=True))
    else:
        blocks.append(ReportTable(
            ("held-out architectures", "Spearman", "Kendall τ", "MAPE", "within ±10%", "within ±5%", "RMSE ms"),
            ((m.n, m.spearman, m.kendall_tau, f"{m.mape:.2%}", f"{m.within_10pct:.1%}", f"{m.within_5pct:.1%}", m.rmse_ms),),
            note="measured on architectures the predictor never saw in training",
        ))  # fmt: skip
    if data.held_out is not None:
        blocks.append(Plot(predicted_vs_measured(data)))
    else:
        blocks.append(Note(f"no predicted-vs-measured plot: {data.held_out_missing}", warning=True))
    title = f"Predictor: {data.name}" + (f" for {data.device}" if data.device else "") + f" ({data.path.name})"
    return Section(title, tuple(blocks), subtitle=str(data.path))


def predicted_vs_measured(data: PredictorInput) -> Any:
    import plotly.graph_objects as go

    assert data.held_out is not None
    h = data.held_out
    lo = min(min(h.measured_ms), min(h.predicted_ms)) * 0.9
    hi = max(max(h.measured_ms), max(h.predicted_ms)) * 1.1
    m = data.metrics
    subtitle = "" if m is None else (
        f"Spearman {m.spearman:.3f} · Kendall τ {m.kendall_tau:.3f} · MAPE {m.mape:.1%} · within ±10% {m.within_10pct:.0%}"
    )
    fig = _figure(
        title=dict(text=f"Predicted vs measured on {len(h.archs)} held-out architectures<br><sup>{subtitle}</sup>"),
        xaxis_title="measured latency (ms)", yaxis_title="predicted latency (ms)", height=480,
    )
    xs = [lo, hi]
    fig.add_trace(go.Scatter(x=xs, y=[x * (1 - BAND) for x in xs], mode="lines", line=dict(width=0), showlegend=False,
                             hoverinfo="skip"))  # fmt: skip
    fig.add_trace(go.Scatter(x=xs, y=[x * (1 + BAND) for x in xs], mode="lines", line=dict(width=0), fill="tonexty",
                             fillcolor="rgba(99,110,250,0.15)", name="±10%", hoverinfo="skip"))  # fmt: skip
    fig.add_trace(go.Scatter(x=xs, y=xs, mode="lines", line=dict(color="#888", dash="dash"), name="predicted = measured",
                             hoverinfo="skip"))  # fmt: skip
    inside = [abs(p - t) <= BAND * t for t, p in zip(h.measured_ms, h.predicted_ms)]
    fig.add_trace(go.Scatter(
        x=list(h.measured_ms), y=list(h.predicted_ms), mode="markers", name="held-out architecture",
        text=list(h.archs), marker=dict(size=7, color=["#636efa" if i else "#ef553b" for i in inside]),
        hovertemplate="%{text}<br>measured %{x:.4g} ms<br>predicted %{y:.4g} ms<extra></extra>",
    ))  # fmt: skip
    if _wide(xs):
        fig.update_xaxes(type="log")
        fig.update_yaxes(type="log")
    return fig


# --- search ---------------------------------------------------------------------------------------------------------------------


def search_sections(data: SearchInput) -> list[Section]:
    return [_search_section(data, r) for r in data.results]


def _cost_index(result: Any) -> int:
    """The objective on the x axis: the first latency cost, else the first cost."""
    return next((i for i, n in enumerate(result.cost_names) if "latency" in n), 0)


def _bound(result: Any, name: str) -> float | None:
    for c in result.constraints:
        match = re.fullmatch(r"\s*(\S+)\s*<=\s*([-+0-9.eE]+)\s*", str(c))
        if match and match.group(1) == name:
            return float(match.group(2))
    return None


def _search_section(data: SearchInput, result: Any) -> Section:
    blocks: list[Block] = []
    if not result.cost_names:
        blocks.append(Note("this search has no cost objective to draw a front against"))
        return Section(f"Search: {result.algorithm} seed {result.seed}", tuple(blocks), subtitle=str(data.path))
    i = _cost_index(result)
    name = result.cost_names[i]
    blocks.append(Note(
        f"{result.algorithm} on {result.space}: {result.n_evaluations} of {result.budget} evaluations, stopped: "
        f"{result.stop_reason}; accuracy from {result.evaluator} ({result.evaluator_unit}); "
        f"costs: {', '.join(result.cost_names)}; constraints: {', '.join(result.constraints) or 'none'}"
    ))
    if getattr(result, "partial", False):
        blocks.append(Note(
            f"partial: the search was interrupted after {result.n_evaluations} of {result.budget} evaluations; "
            "the same `hwprof search` command resumes it", warning=True,
        ))
    blocks.append(Plot(search_front(result, i)))
    if result.best is None:
        blocks.append(Note(f"no feasible architecture among the {result.n_evaluations} evaluated", warning=True))
    cost_cols = tuple(f"{n} ({u})" if u else n for n, u in zip(result.cost_names, result.cost_units))
    rows = tuple(
        ("best" if result.best is not None and e.index == result.best.index else "", e.index + 1, e.accuracy, *e.costs, e.spec)
        for e in result.pareto
    )
    blocks.append(ReportTable(
        ("", "evaluation", f"{result.evaluator} ({result.evaluator_unit})", *cost_cols, "architecture"), rows,
        note=f"the Pareto set of the feasible architectures (accuracy up, {name} down)",
    ))
    return Section(f"Search: {result.algorithm} seed {result.seed} ({data.path.name})", tuple(blocks), subtitle=str(data.path))


def search_front(result: Any, i: int) -> Any:
    import plotly.graph_objects as go

    name, unit = result.cost_names[i], result.cost_units[i]
    label = f"{name} ({unit})" if unit else name
    acc = f"{result.evaluator} ({result.evaluator_unit})"
    fig = _figure(title=f"Accuracy / {name}: {result.algorithm}, {result.n_evaluations} evaluations",
                  xaxis_title=label, yaxis_title=acc, height=480)  # fmt: skip
    hover = "%{text}<br>" + name + " %{x:.4g}<br>accuracy %{y:.4g}<extra></extra>"
    for feasible, colour, legend in ((True, "rgba(99,110,250,0.45)", "evaluated"), (False, "rgba(150,150,150,0.5)", "infeasible")):
        pts = [e for e in result.history if e.feasible == feasible and _finite(e.accuracy) and _finite(e.costs[i])]
        if pts:
            fig.add_trace(go.Scatter(x=[e.costs[i] for e in pts], y=[e.accuracy for e in pts], mode="markers", name=legend,
                                     text=[e.spec for e in pts], marker=dict(size=6, color=colour), hovertemplate=hover))  # fmt: skip
    front = sorted((e for e in result.pareto if _finite(e.costs[i]) and _finite(e.accuracy)), key=lambda e: e.costs[i])
    if front:
        fig.add_trace(go.Scatter(x=[e.costs[i] for e in front], y=[e.accuracy for e in front], mode="lines+markers",
                                 line=dict(shape="hv", color="#00a36c"), marker=dict(size=8), name="Pareto front",
                                 text=[e.spec for e in front], hovertemplate=hover))  # fmt: skip
    if result.best is not None:
        b = result.best
        fig.add_trace(go.Scatter(x=[b.costs[i]], y=[b.accuracy], mode="markers", name="chosen (best feasible)",
                                 text=[b.spec], marker=dict(symbol="star", size=16, color="#ef553b"), hovertemplate=hover))  # fmt: skip
    bound = _bound(result, name)
    if bound is not None:
        fig.add_vline(x=bound, line=dict(color="#ef553b", dash="dot"), annotation_text=f"{name} ≤ {bound:g}")
    return fig


def _finite(x: float) -> bool:
    return x is not None and math.isfinite(x)


# --- MODNAS ---------------------------------------------------------------------------------------------------------------------


def modnas_section(data: ModnasInput) -> Section:
    blocks: list[Block] = []
    what = f"{data.mode} mode; " if data.mode else ""
    blocks.append(Note(
        f"{what}one architecture per preference ray and device, with the hypernetwork's predicted latency and "
        f"accuracy (accuracy: {data.accuracy_source or 'not recorded'}). These are model predictions, not measurements."
    ))
    by_unit: dict[str, list[ModnasFront]] = {}
    for f in data.fronts:
        by_unit.setdefault(f.latency_unit, []).append(f)
    for unit, fronts in by_unit.items():
        blocks.append(Plot(modnas_fronts(fronts, unit)))
    if data.surrogate_quality:
        keys = sorted({k for q in data.surrogate_quality.values() for k in q})
        blocks.append(ReportTable(("surrogate", *keys), tuple(
            (name, *(_value(q.get(k)) for k in keys)) for name, q in data.surrogate_quality.items()
        ), note="quality on the surrogates' own held-out table rows"))  # fmt: skip
    rows = []
    units = {f.latency_unit for f in data.fronts}
    latency_col = f"predicted latency ({units.pop()})" if len(units) == 1 else "predicted latency (ms, or relative)"
    for f in data.fronts:
        seen: set[str] = set()
        for spec, lat, err, pref in zip(f.specs, f.latency, f.error_pct, f.preference_accuracy):
            if spec not in seen:
                seen.add(spec)
                rows.append((f.device, pref, lat, None if err is None else 100.0 - err, spec))
    blocks.append(ReportTable(
        ("device", "accuracy weight", latency_col, "predicted accuracy %", "architecture"), tuple(rows),
        note="distinct architectures of each front (the first ray that gives each)",
    ))
    return Section(f"MODNAS fronts ({data.path.name})", tuple(blocks), subtitle=str(data.path))


def modnas_fronts(fronts: Sequence[ModnasFront], unit: str) -> Any:
    import plotly.graph_objects as go

    with_error = all(e is not None for f in fronts for e in f.error_pct)
    ytitle = "predicted accuracy (%, surrogate)" if with_error else "accuracy weight of the preference"
    xtitle = "predicted latency (ms)" if unit == "ms" else f"predicted latency ({unit})"
    fig = _figure(title=f"MODNAS front per device ({len(fronts)} device(s))", xaxis_title=xtitle, yaxis_title=ytitle,
                  height=480)  # fmt: skip
    for f in fronts:
        ys = [100.0 - e for e in f.error_pct] if with_error else list(f.preference_accuracy)  # type: ignore[operator]
        order = sorted(range(len(f.latency)), key=lambda k: f.latency[k])
        fig.add_trace(go.Scatter(
            x=[f.latency[k] for k in order], y=[ys[k] for k in order], mode="lines+markers", name=f.device,
            text=[f.specs[k] for k in order],
            hovertemplate="%{text}<br>latency %{x:.4g}<br>%{y:.4g}<extra>" + f.device + "</extra>",
        ))  # fmt: skip
    if _wide([x for f in fronts for x in f.latency]):
        fig.update_xaxes(type="log")
    return fig


# --- extras ------------------------------------------------------------------------------------------------------------------------


def extra_sections(extra: Mapping[str, ReportTable]) -> list[Section]:
    return [Section(str(title), (table,)) for title, table in extra.items()]
