"""report.html: one self-contained page (Bokeh, its JavaScript inlined: no network, opens from disk) that a person
explores rather than reads: the headline, a roofline per phase whose points say what they are on hover (kernel,
model operation, layer, phase, calls, time, FLOPs, bytes, % of roof, bound, flag), the wall time of every step
stacked (GPU busy per class, GPU idle in and after the step), the kernels of a chosen step, and sortable,
filterable kernel and model-operation tables; for a comparison, the runs side by side in the PNGs' colours
(kernel class) and markers (run). Drawing is Bokeh's; the only script of ours is the tables' row filter."""
from __future__ import annotations

import html

import numpy as np
import pandas as pd

from analysis.reports.plots import CLASS_COLORS, IDLE_COLORS
from analysis.reports.report_data import (compute_roofs, kernel_table, memory_roofs, operation_table, roofline_points,
                                  step_kernels, step_key, steps_per_phase)
from analysis.reports.tables import PHASE_ORDER

RUN_MARKERS = ("circle", "square", "diamond", "triangle", "inverted_triangle", "plus", "x")  # plots.RUN_MARKERS
ROOF_DASH = ("solid", "dashed", "dotted", "dotdash")
ALL = "(all)"
CSS = """
:host { font-family: system-ui, sans-serif; font-size: 13px; }
h1 { font-size: 20px; margin: 4px 0; } h2 { font-size: 16px; margin: 14px 0 4px; }
p.headline { max-width: 1200px; line-height: 1.45; }
.notice { color: #8a4b00; } .small { color: #555; font-size: 12px; }
table.topic { border-collapse: collapse; margin: 2px 0 10px; font-size: 12px; }
table.topic th, table.topic td { border: 1px solid #ddd; padding: 2px 6px; text-align: right; }
table.topic th { background: #f4f4f4; } table.topic td:first-child, table.topic th:first-child { text-align: left; }
"""
# The tables' row filter: keep the rows whose columns equal every chosen value and whose text columns contain the
# typed text. Bokeh has no text filter of its own; this sets an IndexFilter, Bokeh redraws the table.
FILTER_JS = """
const d = source.data, n = source.get_length() ?? 0, needle = text.value.trim().toLowerCase(), idx = [];
for (let i = 0; i < n; i++) {
  let ok = selects.every(([col, sel]) => sel.value === all || String(d[col][i]) === sel.value);
  if (ok && needle) ok = text_cols.some((col) => String(d[col][i]).toLowerCase().includes(needle));
  if (ok) idx.push(i);
}
filter.indices = idx;
"""


def _bokeh():
    import bokeh.models as m
    from bokeh.layouts import column, row
    from bokeh.plotting import figure
    return m, column, row, figure


def source(df: pd.DataFrame):
    """A ColumnDataSource of the frame's columns (handed columns, not the frame, which Bokeh would reindex)."""
    m, *_ = _bokeh()
    return m.ColumnDataSource({str(c): df[c].to_numpy() for c in df.columns})


def _div(text: str, **kw):
    m, *_ = _bokeh()
    return m.Div(text=text, stylesheets=[m.InlineStyleSheet(css=CSS)], **kw)


def _lean(renderer):
    """A renderer without the glyphs shown when unselected or muted: nothing here selects or mutes (legends
    hide), and each is one more model to serialise (a tenth of a small trace's report.html time)."""
    renderer.nonselection_glyph = None
    renderer.muted_glyph = None
    return renderer


def _phases(values) -> list[str]:
    seen = {str(v) for v in values}
    return [p for p in PHASE_ORDER if p in seen] + sorted(seen - set(PHASE_ORDER))


# --- roofline ---------------------------------------------------------------------------------------------------

HOVER = [("kernel", "@kernel"), ("run", "@run"), ("model op", "@model_op"), ("layer", "@layer"), ("phase", "@phase"),
         ("class", "@kernel_class"), ("calls", "@calls{0,0}"), ("time", "@time_ms{0.000} ms (mean @mean_us{0.00} us)"),
         ("FLOPs", "@flops{0.000a}"), ("DRAM bytes", "@dram_bytes{0.000 b}"), ("L2 bytes", "@l2_bytes{0.000 b}"),
         ("intensity", "@intensity{0.00} FLOP/B"), ("attained", "@tflops{0.000} TFLOP/s"),
         ("% of roof", "@roof_pct{0.0}% (@roof roof)"), ("bound", "@bound"), ("flag", "@flag"), ("full name", "@name")]


def roofline_figure(phase: str, pts: pd.DataFrame, peaks_by_run: list[tuple[str, dict | None]], runs: list[str]):
    """Log-log roofline of one phase's points (all runs), axes fit to the points, the roofs they use."""
    m, _, _, figure = _bokeh()
    x0, x1 = pts["intensity"].min() / 3, pts["intensity"].max() * 3
    # roofs run far past the axes (which fit the points), so that zooming out shows where a roof turns
    lo, hi = x0 / 1e4, x1 * 1e4
    roofs = []   # (label, xs, ys, dash, colour)
    ymax = pts["tflops"].max()
    drawn: list[str] = []
    for run, peaks in peaks_by_run:
        if not peaks or str(peaks) in drawn:
            continue
        prefix, ink = (f"{run}: ", "#888888") if drawn else ("", "black")
        drawn.append(str(peaks))
        used = pts.loc[pts["run"].isin([x for x, p in peaks_by_run if str(p) == str(peaks)]), "peak_tflops"]
        comp = compute_roofs(peaks, used) or [("bf16", float(peaks["bf16"]))]
        top = max(v for _, v in comp)
        mems = memory_roofs(peaks)
        for label, gbps in mems:   # TFLOP/s = FLOP/B x GB/s / 1e3, up to the highest compute roof
            xe = top * 1e3 / gbps
            roofs.append((f"{prefix}{label} {gbps:,.0f} GB/s", [lo, xe], [lo * gbps / 1e3, top],
                          "solid" if label == "DRAM" else "dashed", ink))
            ymax = max(ymax, min(top, x1 * gbps / 1e3))   # the roof at the right edge
        dram = mems[0][1] if mems else None
        for i, (label, tflops) in enumerate(comp):   # from where the DRAM slope meets it
            roofs.append((f"{prefix}{label} {tflops:,.4g} TFLOP/s", [tflops * 1e3 / dram if dram else lo, hi],
                          [tflops, tflops], ROOF_DASH[(i + 1) % len(ROOF_DASH)] if i else "solid", ink))
    p = figure(title=f"Roofline: {phase}", x_axis_type="log", y_axis_type="log", x_range=(x0, x1),
               y_range=(pts["tflops"].min() / 3, ymax * 2), width=700, height=470,
               tools="pan,wheel_zoom,box_zoom,reset,save", active_scroll="wheel_zoom",
               x_axis_label="arithmetic intensity (FLOP / DRAM byte; hollow: per L2 byte)",
               y_axis_label="attained TFLOP/s")
    for label, xs, ys, dash, ink in roofs:
        _lean(p.line(xs, ys, line_color=ink, line_dash=dash, line_width=1.6 if dash == "solid" else 1.3,
                     legend_label=label))
    size_max = float(pts["time_us"].max())
    pts = pts.assign(time_ms=pts["time_us"] / 1e3, size=6 + 18 * np.sqrt(pts["time_us"] / size_max),
                     fill=np.where(pts["hollow"], 0.0, 0.55),
                     color=pts["kernel_class"].map(lambda c: CLASS_COLORS.get(c, "#7f7f7f")),
                     marker=pts["run"].map({r: RUN_MARKERS[i % len(RUN_MARKERS)] for i, r in enumerate(runs)}),
                     line=np.where(pts["flag"] != "", "red", pts["kernel_class"].map(
                         lambda c: CLASS_COLORS.get(c, "#7f7f7f"))))
    points = []
    for cls, g in sorted(pts.groupby("kernel_class"), key=lambda t: list(CLASS_COLORS).index(t[0])
                         if t[0] in CLASS_COLORS else 99):
        src = source(g.drop(columns=["hollow"]))
        points.append(_lean(p.scatter("intensity", "tflops", source=src, size="size", marker="marker",
                                      fill_color="color", fill_alpha="fill", line_color="line", line_width=1.3,
                                      legend_label=cls)))
    p.add_tools(m.HoverTool(renderers=points, tooltips=HOVER))
    p.legend.click_policy = "hide"
    p.legend.label_text_font_size = "8pt"
    p.add_layout(p.legend[0], "right")   # beside the plot: inside, it hid the points of the lower right
    return p


def roofline_section(points: pd.DataFrame, peaks_by_run, runs: list[str]) -> list:
    if points.empty:
        return [_div("<p class='small'>No modeled kernels: no roofline (unmodeled kernels and unknown devices "
                     "have no place on one).</p>")]
    from bokeh.layouts import gridplot
    figs = [roofline_figure(ph, points[points["phase"] == ph], peaks_by_run, runs) for ph in _phases(points["phase"])]
    marks = ", ".join(f"{r}: {RUN_MARKERS[i % len(RUN_MARKERS)]}" for i, r in enumerate(runs)) if len(runs) > 1 else ""
    note = ("Points: one per kernel name, model operation and layer, summed over the phase's launches; area: time; "
            "colour: kernel class; hollow: placed by L2 bytes (no DRAM traffic modeled); red edge: above its roof. "
            + (f"Markers by run ({marks}). " if marks else "")
            + "Hover a point; drag to pan, wheel or box to zoom; click a legend entry to hide it.")
    return [_div(f"<h2>Roofline per phase</h2><p class='small'>{html.escape(note)}</p>"),
            gridplot(figs, ncols=2, merge_tools=False, toolbar_location=None)]


# --- wall time per step --------------------------------------------------------------------------------------------

def _component_color(c: str) -> str:
    return CLASS_COLORS.get(c) or IDLE_COLORS.get(c, "#7f7f7f")


def _component_order(components) -> list[str]:
    cs = set(components)
    return sorted(cs - set(IDLE_COLORS), key=lambda c: list(CLASS_COLORS).index(c) if c in CLASS_COLORS else 99) \
        + [c for c in IDLE_COLORS if c in cs]


def step_figure(run: str, phase: str, sc: pd.DataFrame, y_max: float, max_width: int = 1100):
    """Stacked bars, one per step: GPU busy per class, then GPU idle in and after the step (ms)."""
    m, _, _, figure = _bokeh()
    wide = sc.pivot_table(index="step", columns="component", values="us", aggfunc="sum").fillna(0.0) / 1e3
    comps = _component_order(wide.columns)
    tops = wide[comps].cumsum(axis=1)
    # bars side by side in the phase's order: vLLM numbers engine steps across phases, so a phase's own steps
    # would stand apart by the others' numbers; the step number is in the hover and the chooser below. Each
    # component's column is named by the component (the hover reads the bar's own through "@$name"), its
    # bottom and top precomputed (vbar_stack's stacking expressions are two models per bar)
    data = {"pos": np.arange(len(wide)), "step": wide.index.to_numpy(dtype=int), "total": tops[comps[-1]].to_numpy()}
    for i, c in enumerate(comps):
        data |= {c: wide[c].to_numpy(), f"bottom{i}": (tops[c] - wide[c]).to_numpy(), f"top{i}": tops[c].to_numpy()}
    src = m.ColumnDataSource(data)
    p = figure(title=f"{run + ': ' if run else ''}{phase}: wall time per step",
               x_range=(-0.6, len(wide) - 0.4),
               y_range=(0, y_max * 1.05), width=max(460, min(max_width, 260 + 14 * len(wide))), height=330,
               tools="xpan,xwheel_zoom,box_zoom,reset,save", x_axis_label=f"{phase} steps in order (hover: step)",
               y_axis_label="ms")
    bars = [_lean(p.vbar(x="pos", bottom=f"bottom{i}", top=f"top{i}", source=src, width=0.85,
                         color=_component_color(c), line_color="#bbbbbb", line_width=0.3, legend_label=c, name=c))
            for i, c in enumerate(comps)]
    p.add_tools(m.HoverTool(renderers=bars, tooltips=[("step", "@step"), ("part", "$name: @$name{0.000} ms"),
                                                      ("step period", "@total{0.000} ms")]))
    p.xaxis.ticker = m.BasicTicker(min_interval=1)
    p.legend.label_text_font_size = "7pt"
    p.legend.click_policy = "hide"
    p.add_layout(p.legend[0], "right")
    return p


def mean_step_figure(runs: list[tuple[str, dict]], phase: str):
    """The breakdown PNG's bars: one per run, the phase's wall time per step (ms), GPU busy per class and idle."""
    m, _, _, figure = _bokeh()
    walls = [(label, r["wall"][(r["wall"]["phase"] == phase) & (r["wall"]["kind"] != "wall")]) for label, r in runs]
    comps = _component_order({c for _, w in walls for c in w["component"]})
    cols = {c: f"c{i}" for i, c in enumerate(comps)}
    data = {"run": [label for label, _ in walls],
            **{cols[c]: [float(w.loc[w["component"] == c, "us_per_step"].sum()) / 1e3 for _, w in walls]
               for c in comps}}
    data["total"] = [sum(data[cols[c]][i] for c in comps) for i in range(len(walls))]
    p = figure(title=f"{phase}: mean step", x_range=data["run"], width=300, height=330, tools="save",
               y_axis_label="ms per step")
    bars = p.vbar_stack([cols[c] for c in comps], x="run", source=m.ColumnDataSource(data), width=0.7,
                        color=[_component_color(c) for c in comps], line_color="#bbbbbb", line_width=0.3)
    for c, r in zip(comps, bars):
        p.add_tools(m.HoverTool(renderers=[r], tooltips=[("run", "@run"), (c, f"@{cols[c]}{{0.000}} ms"),
                                                         ("wall per step", "@total{0.000} ms")]))
    p.xaxis.major_label_orientation = 0.5
    return p


def steps_section(runs: list[tuple[str, dict]], kernels_by_step: pd.DataFrame) -> list:
    m, column, row, _ = _bokeh()
    out = [_div("<h2>Wall time per step</h2><p class='small'>Each bar is one step from its start to the next "
                "step's start: GPU busy per kernel class (overlaps counted once), GPU idle while the step's range "
                "runs (launch gaps) and after it (host). Choose a step below to list its kernels.</p>")]
    frames = [(label, r.get("step_classes")) for label, r in runs]
    frames = [(label, sc) for label, sc in frames if sc is not None and len(sc)]
    if not frames:
        return out + [_div("<p class='small'>No steps in this trace.</p>")]
    multi = len(runs) > 1
    for phase in _phases(pd.concat([sc["phase"] for _, sc in frames])):
        per_run = [(label, sc[sc["phase"] == phase]) for label, sc in frames]
        per_run = [(label, sc) for label, sc in per_run if len(sc)]
        y_max = max(float(sc.groupby("step")["us"].sum().max()) / 1e3 for _, sc in per_run)
        figs = [step_figure(label if multi else "", phase, sc, y_max, 1100 // len(per_run)) for label, sc in per_run]
        if multi:
            figs.insert(0, mean_step_figure(runs, phase))
        out.append(row(*figs))
    if kernels_by_step.empty:
        return out
    keys = list(dict.fromkeys(kernels_by_step["step_key"]))
    first = next((k for k in keys if " decode step " in f" {k}"), keys[0])
    src = source(kernels_by_step.assign(time_us=kernels_by_step["time_us"].round(3)))
    flt = m.GroupFilter(column_name="step_key", group=first)
    table = m.DataTable(source=src, view=m.CDSView(filter=flt), columns=_columns(
        [("kernel", "kernel", None), ("class", "kernel_class", None), ("model op", "model_op", None),
         ("calls", "calls", "0,0"), ("time (us)", "time_us", "0,0.000"), ("% of step", "pct_of_step", "0.0")]),
        sortable=True, width=1000, height=300, index_position=None, name="step-kernels")
    select = m.Select(title="step", value=first, options=keys, width=320, name="step-select")
    select.js_link("value", flt, "group")
    return out + [select, table]


# --- tables --------------------------------------------------------------------------------------------------------

WIDE = {"kernel": 330, "model_op": 150, "run": 190, "kernel_class": 90, "work_source": 90}   # px; numbers 80


def _columns(spec) -> list:
    m, *_ = _bokeh()
    return [m.TableColumn(field=f, title=t, width=WIDE.get(f, 80),
                          formatter=m.NumberFormatter(format=fmt, text_align="right") if fmt else m.StringFormatter())
            for t, f, fmt in spec]


def _by_phase(df: pd.DataFrame, *then: str) -> pd.DataFrame:
    """Rows in phase order (prefill, mixed, decode), then by `then` descending."""
    if df.empty:
        return df
    order = {p: i for i, p in enumerate(PHASE_ORDER)}
    return df.assign(_p=df["phase"].map(lambda p: order.get(p, 9))).sort_values(
        ["_p", *then], ascending=[True] + [False] * len(then), kind="stable").drop(columns="_p")


def filterable_table(df: pd.DataFrame, spec, filters: list[tuple[str, str]], text_cols: list[str], name: str,
                     height=360):
    """A sortable DataTable with a Select per (title, column) in `filters` and a text box over `text_cols`; the
    models are named `name`, `name-text` and `name-COLUMN`."""
    m, column, row, _ = _bokeh()
    src = source(df)
    flt = m.IndexFilter(indices=list(range(len(df))))
    table = m.DataTable(source=src, view=m.CDSView(filter=flt), columns=_columns(spec), sortable=True, width=1200,
                        height=height, index_position=None, name=name)
    selects = [m.Select(title=title, value=ALL, options=[ALL] + [str(v) for v in dict.fromkeys(df[col].astype(str))],
                        width=200, name=f"{name}-{col}") for title, col in filters if df[col].nunique() > 1]
    cols = [col for title, col in filters if df[col].nunique() > 1]
    text = m.TextInput(title="contains (" + ", ".join(text_cols) + ")", value="", width=300, name=f"{name}-text")
    cb = m.CustomJS(args=dict(source=src, filter=flt, selects=[[c, s] for c, s in zip(cols, selects)], text=text,
                              text_cols=text_cols, all=ALL), code=FILTER_JS)
    for s in selects:
        s.js_on_change("value", cb)
    text.js_on_change("value", cb)
    return column(row(*selects, text), table)


KERNEL_SPEC = [("run", "run", None), ("phase", "phase", None), ("kernel", "kernel", None),
               ("class", "kernel_class", None), ("model op", "model_op", None), ("calls", "calls", "0,0"),
               ("time (ms)", "time_ms", "0,0.000"), ("ms per step", "ms_per_step", "0,0.0000"),
               ("mean (us)", "mean_us", "0,0.00"), ("% of phase", "pct_of_phase", "0.00"),
               ("% of roof", "roof_pct", "0.0"), ("bound", "bound", None), ("above roof", "flagged", "0,0"),
               ("work", "work_source", None)]
OP_SPEC = [("run", "run", None), ("phase", "phase", None), ("model op", "model_op", None),
           ("kernels", "kernels", "0,0"), ("calls", "calls", "0,0"), ("time (ms)", "time_ms", "0,0.000"),
           ("ms per step", "ms_per_step", "0,0.0000"), ("% of phase", "pct_of_phase", "0.00"),
           ("% of roof", "roof_pct", "0.0"), ("bound", "bound", None)]


def tables_section(kernels: pd.DataFrame, multi: bool) -> list:
    out = []
    spec = [c for c in KERNEL_SPEC if multi or c[1] != "run"]
    filters = ([("run", "run")] if multi else []) + [("phase", "phase"), ("class", "kernel_class"), ("bound", "bound")]
    ops = _by_phase(operation_table(kernels), "time_us")
    kernels = _by_phase(kernels, "time_us")
    if len(ops):
        out += [_div("<h2>Model operations</h2><p class='small'>Kernel time per model operation (every layer's "
                     "kernels together); % of roof is time-weighted over its modeled kernels. Click a header to "
                     "sort.</p>"),
                filterable_table(ops.assign(time_ms=ops["time_us"] / 1e3),
                                 [c for c in OP_SPEC if multi or c[1] != "run"],
                                 ([("run", "run")] if multi else []) + [("phase", "phase"), ("bound", "bound")],
                                 ["model_op"], "operations", height=300)]
    if len(kernels):
        out += [_div("<h2>Kernels</h2><p class='small'>One row per phase, kernel name and model operation. Click a "
                     "header to sort; choose or type to filter. Per-launch rows: kernels.parquet.</p>"),
                filterable_table(kernels.assign(time_ms=kernels["time_us"] / 1e3), spec, filters,
                                 ["kernel", "model_op"], "kernels")]
    return out


def topic_section(topic_tables) -> list:
    parts = ["<h2>Tables</h2>"]
    for title, df in topic_tables:
        parts.append(f"<h3 style='font-size:14px;margin:10px 0 2px'>{html.escape(title)}</h3>"
                     + df.to_html(index=False, classes="topic", border=0, escape=True))
    return [_div("".join(parts))]


# --- pages ---------------------------------------------------------------------------------------------------------

def _page(title: str, header: str, runs: list[tuple[str, dict]], topic_tables) -> str:
    from bokeh.embed import file_html
    from bokeh.resources import INLINE
    from bokeh.settings import settings
    # Bokeh's check of the document (layout warnings) takes a third of file_html; the page is ours and fixed, and
    # tests/test_html_report.py opens it in a browser
    settings.perform_document_validation.set_value(False)
    _, column, _, _ = _bokeh()
    labels = [label for label, _ in runs]
    points = pd.concat([roofline_points(r["kernels"], label) for label, r in runs], ignore_index=True)
    kernels = pd.concat([kernel_table(r["kernels"], steps_per_phase(r), label) for label, r in runs],
                        ignore_index=True)
    by_step = pd.concat([step_kernels(r["kernels"], label if len(runs) > 1 else "") for label, r in runs],
                        ignore_index=True)
    body = [_div(header)]
    body += roofline_section(points, [(label, r["peaks"]) for label, r in runs], labels)
    body += steps_section(runs, by_step)
    body += tables_section(kernels, len(runs) > 1)
    body += topic_section(topic_tables)
    return file_html(column(*body), INLINE, title)


def _header(title: str, headline: list[str], lines: list[str], notices: list[str], links: list[str]) -> str:
    out = [f"<h1>{html.escape(title)}</h1>", f"<p class='headline'>{html.escape(' '.join(headline))}</p>"]
    out += [f"<p class='small'>{html.escape(x)}</p>" for x in lines]
    out += [f"<p class='notice'>{html.escape(n)}</p>" for n in notices]
    if links:
        out.append("<p class='small'>Data: " + ", ".join(f"<a href='{html.escape(x)}'>{html.escape(x)}</a>"
                                                         for x in links) + "</p>")
    return "".join(out)


def analysis_html(result: dict, title: str, label: str, source_lines: list[str]) -> str:
    """report.html of one trace's analysis (analysis.reports.report.analyze's result), the run called `label`;
    `source_lines`: what was read and which peaks were used (analysis.reports.headline writes them)."""
    from analysis.reports.headline import headline
    from analysis.reports.tables import topic_tables

    s = result["summary"]
    runs = [(label, result)]
    header = _header(title, headline(runs), source_lines, s["notices"],
                     ["kernels.parquet", "summary.json", "report.md"])
    return _page(title, header, runs, topic_tables(runs))


def comparison_html(comparison: dict, runs: list[tuple[str, dict]], source_lines: list[str]) -> str:
    """report.html of a comparison (analysis.reports.compare.compare_results and its runs)."""
    title = "Comparison: " + " vs ".join(label for label, _ in runs)
    notices = [f"{label}: {n}" for label, r in runs for n in r["summary"]["notices"]]
    header = _header(title, comparison["headline"], source_lines, notices, ["comparison.json", "report.md"])
    return _page(title, header, runs, comparison["tables"])
