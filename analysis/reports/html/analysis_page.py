"""report.html of an analysis or a comparison, a page that a person explores rather than reads: the headline, a
roofline per phase whose points say what they are on hover (kernel, model operation, layer, phase, calls, time,
FLOPs, bytes, % of roof, bound, flag), the wall time of every step stacked (GPU busy per class, GPU idle in and
after the step), the kernels of a chosen step, and sortable, filterable kernel and model-operation tables; for a
comparison, the runs side by side in the PNGs' colours (kernel class) and markers (run). The numbers come from
analysis.reports.report_data; the page's frame and drawing from page.py."""
from __future__ import annotations

import html

import numpy as np
import pandas as pd

from analysis.reports.html.page import (ZOOM_NOTE, bar_chart, chart, charts_section, html_section, line, page_html,
                                        points, rgba, table_section)
from analysis.reports.plots import CLASS_COLORS, IDLE_COLORS
from analysis.reports.report_data import (compute_roofs, kernel_table, memory_roofs, operation_table, roofline_points,
                                          step_kernels, steps_per_phase)
from analysis.reports.tables import PHASE_ORDER

RUN_MARKERS = ("circle", "rect", "rectRot", "triangle", "star", "cross", "crossRot")   # plots.RUN_MARKERS, as Chart.js
ROOF_DASH = ((), (6, 4), (2, 3), (6, 3, 2, 3))
OTHER = "#7f7f7f"


def _phases(values) -> list[str]:
    seen = {str(v) for v in values}
    return [p for p in PHASE_ORDER if p in seen] + sorted(seen - set(PHASE_ORDER))


# --- roofline ---------------------------------------------------------------------------------------------------

HOVER = [("run", "{run}"), ("model op", "{model_op}"), ("layer", "{layer}"), ("phase", "{phase}"),
         ("class", "{kernel_class}"), ("calls", "{calls:int}"), ("time", "{time_ms:f3} ms (mean {mean_us:f2} us)"),
         ("FLOPs", "{flops:si}"), ("DRAM bytes", "{dram_bytes:bytes}"), ("L2 bytes", "{l2_bytes:bytes}"),
         ("intensity", "{intensity:f2} FLOP/B"), ("attained", "{tflops:f3} TFLOP/s"),
         ("% of roof", "{roof_pct:f1}% ({roof} roof)"), ("bound", "{bound}"), ("flag", "{flag}"),
         ("full name", "{name}")]
HOVER_FIELDS = ["kernel", "run", "model_op", "layer", "phase", "kernel_class", "calls", "time_ms", "mean_us", "flops",
                "dram_bytes", "l2_bytes", "intensity", "tflops", "roof_pct", "roof", "bound", "flag", "name"]


def roofline_chart(phase: str, pts: pd.DataFrame, peaks_by_run: list[tuple[str, dict | None]], runs: list[str]):
    """Log-log roofline of one phase's points (all runs), axes fit to the points, the roofs they use."""
    x0, x1 = pts["intensity"].min() / 3, pts["intensity"].max() * 3
    # roofs run far past the axes (which fit the points), so that zooming out shows where a roof turns
    lo, hi = x0 / 1e4, x1 * 1e4
    roofs = []
    ymax = pts["tflops"].max()
    drawn: list[str] = []
    for run, peaks in peaks_by_run:
        if not peaks or str(peaks) in drawn:
            continue
        prefix, ink = (f"{run}: ", "#888888") if drawn else ("", "#000000")
        drawn.append(str(peaks))
        used = pts.loc[pts["run"].isin([x for x, p in peaks_by_run if str(p) == str(peaks)]), "peak_tflops"]
        comp = compute_roofs(peaks, used) or [("bf16", float(peaks["bf16"]))]
        top = max(v for _, v in comp)
        mems = memory_roofs(peaks)
        for label, gbps in mems:   # TFLOP/s = FLOP/B x GB/s / 1e3, up to the highest compute roof
            xe = top * 1e3 / gbps
            roofs.append(line(f"{prefix}{label} {gbps:,.0f} GB/s", [lo, xe], [lo * gbps / 1e3, top], ink,
                              dash=() if label == "DRAM" else (6, 4), width=1.6 if label == "DRAM" else 1.3))
            ymax = max(ymax, min(top, x1 * gbps / 1e3))   # the roof at the right edge
        dram = mems[0][1] if mems else None
        for i, (label, tflops) in enumerate(comp):   # from where the DRAM slope meets it
            roofs.append(line(f"{prefix}{label} {tflops:,.4g} TFLOP/s", [tflops * 1e3 / dram if dram else lo, hi],
                              [tflops, tflops], ink, dash=ROOF_DASH[(i + 1) % len(ROOF_DASH)] if i else (),
                              width=1.3 if i else 1.6))
    size_max = float(pts["time_us"].max())
    pts = pts.assign(time_ms=pts["time_us"] / 1e3)
    marker_of = {r: RUN_MARKERS[i % len(RUN_MARKERS)] for i, r in enumerate(runs)}
    datasets = []
    order = {c: i for i, c in enumerate(CLASS_COLORS)}
    for cls, g in sorted(pts.groupby("kernel_class", observed=True), key=lambda t: order.get(t[0], 99)):
        color = CLASS_COLORS.get(cls, OTHER)
        hollow = g["hollow"].to_numpy(dtype=bool)
        datasets.append(points(
            str(cls), g["intensity"], g["tflops"], color, rows=g[HOVER_FIELDS],
            radius=(3 + 9 * np.sqrt(g["time_us"] / size_max)).round(2),
            marker=g["run"].map(marker_of), fill=np.where(hollow, rgba(color, 0.0), rgba(color, 0.55)),
            edge=np.where(g["flag"] != "", "red", color), edge_width=1.3))
    return chart(f"Roofline: {phase}", roofs + datasets,
                 {"label": "arithmetic intensity (FLOP / DRAM byte; hollow: per L2 byte)", "log": True,
                  "min": x0, "max": x1},
                 {"label": "attained TFLOP/s", "log": True, "min": pts["tflops"].min() / 3, "max": ymax * 2},
                 width=660, height=450, hover=HOVER, hover_title="{kernel}", legend="right")


def roofline_sections(points_: pd.DataFrame, peaks_by_run, runs: list[str]) -> list:
    if points_.empty:
        return [html_section("<h2>Roofline per phase</h2><p class='small'>No modeled kernels: no roofline "
                             "(unmodeled kernels and unknown devices have no place on one).</p>")]
    charts = [roofline_chart(ph, points_[points_["phase"] == ph], peaks_by_run, runs)
              for ph in _phases(points_["phase"])]
    marks = ", ".join(f"{r}: {RUN_MARKERS[i % len(RUN_MARKERS)]}" for i, r in enumerate(runs)) if len(runs) > 1 else ""
    note = ("Points: one per kernel name, model operation and layer, summed over the phase's launches; area: time; "
            "colour: kernel class; hollow: placed by L2 bytes (no DRAM traffic modeled); red edge: above its roof. "
            + (f"Markers by run ({marks}). " if marks else "") + ZOOM_NOTE)
    return [html_section(f"<h2>Roofline per phase</h2><p class='small'>{html.escape(note)}</p>"),
            charts_section(charts)]


# --- wall time per step --------------------------------------------------------------------------------------------

def _component_color(c: str) -> str:
    return CLASS_COLORS.get(c) or IDLE_COLORS.get(c, OTHER)


def _component_order(components) -> list[str]:
    cs = set(components)
    return sorted(cs - set(IDLE_COLORS), key=lambda c: list(CLASS_COLORS).index(c) if c in CLASS_COLORS else 99) \
        + [c for c in IDLE_COLORS if c in cs]


def step_chart(run: str, phase: str, sc: pd.DataFrame, y_max: float, max_width: int = 1100) -> dict:
    """Stacked bars, one per step in the phase's order: GPU busy per class, then GPU idle in and after the step
    (ms). vLLM numbers engine steps across phases, so the bars are labelled by their step number."""
    wide = sc.pivot_table(index="step", columns="component", values="us", aggfunc="sum").fillna(0.0) / 1e3
    comps = _component_order(wide.columns)
    return bar_chart(f"{run + ': ' if run else ''}{phase}: wall time per step", wide.index.astype(int).tolist(),
                     [(c, _component_color(c), wide[c].round(6).tolist()) for c in comps],
                     f"{phase} step", "ms", max(460, min(max_width, 300 + 14 * len(wide))), 330,
                     y_max=y_max * 1.05, hover_title="step ", footer="step period")


def mean_step_chart(runs: list[tuple[str, dict]], phase: str) -> dict:
    """The breakdown PNG's bars: one per run, the phase's wall time per step (ms), GPU busy per class and idle."""
    walls = [(label, r["wall"][(r["wall"]["phase"] == phase) & (r["wall"]["kind"] != "wall")]) for label, r in runs]
    comps = _component_order({c for _, w in walls for c in w["component"]})
    stacks = [(c, _component_color(c), [float(w.loc[w["component"] == c, "us_per_step"].sum()) / 1e3
                                         for _, w in walls]) for c in comps]
    return bar_chart(f"{phase}: mean step", [label for label, _ in walls], stacks, "run", "ms per step", 420, 330,
                     footer="wall per step")


def steps_sections(runs: list[tuple[str, dict]], kernels_by_step: pd.DataFrame) -> list:
    out = [html_section("<h2>Wall time per step</h2><p class='small'>Each bar is one step from its start to the "
                        "next step's start: GPU busy per kernel class (overlaps counted once), GPU idle while the "
                        "step's range runs (launch gaps) and after it (host). Choose a step below to list its "
                        "kernels.</p>")]
    frames = [(label, r.get("step_classes")) for label, r in runs]
    frames = [(label, sc) for label, sc in frames if sc is not None and len(sc)]
    if not frames:
        return out + [html_section("<p class='small'>No steps in this trace.</p>")]
    multi = len(runs) > 1
    for phase in _phases(pd.concat([sc["phase"] for _, sc in frames])):
        per_run = [(label, sc[sc["phase"] == phase]) for label, sc in frames]
        per_run = [(label, sc) for label, sc in per_run if len(sc)]
        y_max = max(float(sc.groupby("step")["us"].sum().max()) / 1e3 for _, sc in per_run)
        charts = [step_chart(label if multi else "", phase, sc, y_max, 1100 // len(per_run)) for label, sc in per_run]
        if multi:
            charts.insert(0, mean_step_chart(runs, phase))
        out.append(charts_section(charts))
    if kernels_by_step.empty:
        return out
    keys = list(dict.fromkeys(kernels_by_step["step_key"]))
    first = next((k for k in keys if " decode step " in f" {k}"), keys[0])
    spec = [("kernel", "kernel", None), ("class", "kernel_class", None), ("model op", "model_op", None),
            ("calls", "calls", "int"), ("time (us)", "time_us", "f3"), ("% of step", "pct_of_step", "f1")]
    return out + [table_section(kernels_by_step, spec, [], [], "step-kernels", height=300,
                                choose=("step", "step_key", first))]


# --- tables --------------------------------------------------------------------------------------------------------

KERNEL_SPEC = [("run", "run", None), ("phase", "phase", None), ("kernel", "kernel", None),
               ("class", "kernel_class", None), ("model op", "model_op", None), ("calls", "calls", "int"),
               ("time (ms)", "time_ms", "f3"), ("ms per step", "ms_per_step", "f4"), ("mean (us)", "mean_us", "f2"),
               ("% of phase", "pct_of_phase", "f2"), ("% of roof", "roof_pct", "f1"), ("bound", "bound", None),
               ("above roof", "flagged", "int"), ("work", "work_source", None)]
OP_SPEC = [("run", "run", None), ("phase", "phase", None), ("model op", "model_op", None),
           ("kernels", "kernels", "int"), ("calls", "calls", "int"), ("time (ms)", "time_ms", "f3"),
           ("ms per step", "ms_per_step", "f4"), ("% of phase", "pct_of_phase", "f2"), ("% of roof", "roof_pct", "f1"),
           ("bound", "bound", None)]


def _by_phase(df: pd.DataFrame, *then: str) -> pd.DataFrame:
    """Rows in phase order (prefill, mixed, decode), then by `then` descending."""
    if df.empty:
        return df
    order = {p: i for i, p in enumerate(PHASE_ORDER)}
    return df.assign(_p=df["phase"].map(lambda p: order.get(p, 9))).sort_values(
        ["_p", *then], ascending=[True] + [False] * len(then), kind="stable").drop(columns="_p")


def tables_sections(kernels: pd.DataFrame, multi: bool) -> list:
    out = []
    runs = [("run", "run")] if multi else []
    ops = _by_phase(operation_table(kernels), "time_us")
    kernels = _by_phase(kernels, "time_us")
    if len(ops):
        out += [html_section("<h2>Model operations</h2><p class='small'>Kernel time per model operation (every "
                             "layer's kernels together); % of roof is time-weighted over its modeled kernels. Click "
                             "a header to sort.</p>"),
                table_section(ops.assign(time_ms=ops["time_us"] / 1e3), [c for c in OP_SPEC if multi or c[1] != "run"],
                              runs + [("phase", "phase"), ("bound", "bound")], ["model_op"], "operations",
                              height=300)]
    if len(kernels):
        out += [html_section("<h2>Kernels</h2><p class='small'>One row per phase, kernel name and model operation. "
                             "Click a header to sort; choose or type to filter. Per-launch rows: "
                             "kernels.parquet.</p>"),
                table_section(kernels.assign(time_ms=kernels["time_us"] / 1e3),
                              [c for c in KERNEL_SPEC if multi or c[1] != "run"],
                              runs + [("phase", "phase"), ("class", "kernel_class"), ("bound", "bound")],
                              ["kernel", "model_op"], "kernels")]
    return out


def topic_section(topic_tables) -> dict:
    parts = ["<h2>Tables</h2>"]
    for title, df in topic_tables:
        parts.append(f"<h3 style='font-size:14px;margin:10px 0 2px'>{html.escape(title)}</h3>"
                     + df.to_html(index=False, classes="topic", border=0, escape=True))
    return html_section("".join(parts))


# --- pages ---------------------------------------------------------------------------------------------------------

def _page(title: str, header: str, runs: list[tuple[str, dict]], topic_tables) -> str:
    labels = [label for label, _ in runs]
    pts = pd.concat([roofline_points(r["kernels"], label) for label, r in runs], ignore_index=True)
    kernels = pd.concat([kernel_table(r["kernels"], steps_per_phase(r), label) for label, r in runs],
                        ignore_index=True)
    by_step = pd.concat([step_kernels(r["kernels"], label if len(runs) > 1 else "") for label, r in runs],
                        ignore_index=True)
    sections = [html_section(header)]
    sections += roofline_sections(pts, [(label, r["peaks"]) for label, r in runs], labels)
    sections += steps_sections(runs, by_step)
    sections += tables_sections(kernels, len(runs) > 1)
    sections.append(topic_section(topic_tables))
    return page_html(title, sections)


def _header(title: str, headline: list[str], lines: list[str], notices: list[str], links: list[str]) -> str:
    out = [f"<h1>{html.escape(title)}</h1>", f"<p class='headline'>{html.escape(' '.join(headline))}</p>"]
    out += [f"<p class='small'>{html.escape(x)}</p>" for x in lines]
    out += [f"<p class='notice'>{html.escape(n)}</p>" for n in notices]
    if links:
        out.append("<p class='small'>Data: " + ", ".join(f"<a href='{html.escape(x)}'>{html.escape(x)}</a>"
                                                         for x in links) + "</p>")
    return "".join(out)


def analysis_html(result: dict, title: str, label: str, source_lines: list[str], topics: list) -> str:
    """report.html of one trace's analysis (analysis.reports.report.analyze's result), the run called `label`;
    `source_lines`: what was read and which peaks were used (analysis.reports.headline writes them); `topics`:
    the run's analysis.reports.tables.topic_tables (report.md shows them too)."""
    from analysis.reports.headline import headline

    s = result["summary"]
    runs = [(label, result)]
    header = _header(title, headline(runs), source_lines, s["notices"],
                     ["kernels.parquet", "summary.json", "report.md"])
    return _page(title, header, runs, topics)


def comparison_html(comparison: dict, runs: list[tuple[str, dict]], source_lines: list[str]) -> str:
    """report.html of a comparison (analysis.reports.compare.compare_results and its runs)."""
    title = "Comparison: " + " vs ".join(label for label, _ in runs)
    notices = [f"{label}: {n}" for label, r in runs for n in r["summary"]["notices"]]
    header = _header(title, comparison["headline"], source_lines, notices, ["comparison.json", "report.md"])
    return _page(title, header, runs, comparison["tables"])
