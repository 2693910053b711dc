"""report.html of a sweep (`tracer sweep`: throughput and latency against batch, prompt length or request count)
and of a load sweep (`tracer load --rates`: latency percentiles and throughput against offered load), the PNGs'
panels with hover and zoom, and the runs as a sortable, filterable table; Bokeh, inlined (analysis.reports.html_report)."""
from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from analysis.reports.html_report import _bokeh, _div, filterable_table, source

SWEEP_COLORS = {"hf": "#d1495b", "vllm": "#00798c"}          # analysis.reports.sweep_plots.COLORS
LOAD_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")   # matplotlib's cycle, as load.png


def _spec(df: pd.DataFrame, cols: list[str]) -> list[tuple]:
    """DataTable columns: text as text, whole numbers with separators, others with two decimals."""
    def fmt(c):
        if not pd.api.types.is_numeric_dtype(df[c]):
            return None
        whole = pd.api.types.is_integer_dtype(df[c]) or (df[c].dropna() % 1 == 0).all()
        return "0,0" if whole else "0,0.00"
    return [(c.replace("_", " "), c, fmt(c)) for c in cols]


def _as_table(df: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    return df[cols].astype({c: str for c in cols if not pd.api.types.is_numeric_dtype(df[c])})


def _log_figure(title: str, x_label: str, y_label: str, ticks, y_log: bool = False):
    m, _, _, figure = _bokeh()
    p = figure(title=title, x_axis_type="log", y_axis_type="log" if y_log else "linear", width=460, height=330,
               tools="pan,wheel_zoom,box_zoom,reset,save", x_axis_label=x_label, y_axis_label=y_label)
    p.xaxis.ticker = m.FixedTicker(ticks=sorted(float(t) for t in ticks))
    return p


def _finish(p):
    p.legend.click_policy = "hide"
    p.legend.label_text_font_size = "8pt"
    p.legend.location = "top_left"
    p.legend.background_fill_alpha = 0.6
    return p


def sweep_html(out_dir) -> str:
    """report.html of a `tracer sweep` folder (its sweep.parquet)."""
    from bokeh.embed import file_html
    from bokeh.resources import INLINE
    m, column, row, _ = _bokeh()
    df = pd.read_parquet(Path(out_dir) / "sweep.parquet")
    ok = df[df["status"] == "ok"]
    figs = []
    if len(ok):
        mode = ok["mode"].iloc[0]
        x = "requests" if mode == "requests" else ("batch" if ok["batch"].nunique() > 1 else "prompt_tokens")
        g = ok.groupby(["backend", x]).agg(
            tps=("output_tokens_per_s", "median"), tps_min=("output_tokens_per_s", "min"),
            tps_max=("output_tokens_per_s", "max"), ttft=("ttft_ms", "median"),
            tpot=("decode_ms_per_token_mean", "median"), repeats=("output_tokens_per_s", "size")).reset_index()
        panels = (("tps", "output tokens/s (median; bars: min-max over repeats)", "tokens/s"),
                  ("ttft", "TTFT (ms, median)", "ms"), ("tpot", "decode ms per token (median)", "ms"))
        for col, title, unit in panels:
            p = _log_figure(title, x, unit, g[x].unique())
            for backend, b in g.groupby("backend"):
                src = source(b.assign(x=b[x].astype(float)))
                color = SWEEP_COLORS.get(backend, "#555555")
                if col == "tps":
                    p.segment("x", "tps_min", "x", "tps_max", source=src, color=color)
                p.line("x", col, source=src, color=color, legend_label=backend)
                r = p.scatter("x", col, source=src, color=color, size=8, legend_label=backend)
                p.add_tools(m.HoverTool(renderers=[r], tooltips=[
                    ("backend", "@backend"), (x, "@x{0,0}"), (unit, f"@{col}{{0,0.00}}"), ("repeats", "@repeats"),
                    *([("min-max", "@tps_min{0,0} - @tps_max{0,0}")] if col == "tps" else [])]))
            figs.append(_finish(p))
    cols = [c for c in ("backend", "mode", "batch", "prompt_tokens", "output_tokens", "requests", "repeat", "status",
                        "output_tokens_per_s", "ttft_ms", "decode_ms_per_token_mean", "decode_ms_per_token_p99",
                        "peak_allocated_bytes", "kv_cache_bytes", "gpu_util_pct_mean") if c in df]
    table = filterable_table(_as_table(df, cols), _spec(df, cols),
                             [("backend", "backend"), ("status", "status")], ["backend", "status"], "sweep")
    head = _div(f"<h1>Sweep: {html.escape(str(Path(out_dir).name))}</h1><p class='small'>{len(df)} runs "
                f"({len(ok)} ok). Hover a point; wheel or box to zoom; click a legend entry to hide it. "
                "Data: <a href='sweep.parquet'>sweep.parquet</a>, <a href='sweep.csv'>sweep.csv</a>.</p>")
    body = [head, row(*figs)] if figs else [head]
    return file_html(column(*body, _div("<h2>Runs</h2>"), table), INLINE, "tracer sweep")


def load_html(folders) -> str:
    """report.html of one or more `tracer load --rates` sweeps (their sweep.parquet), on the same axes."""
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    from analysis.reports.load_plots import PANELS, read_sweeps
    m, column, row, _ = _bokeh()
    sweeps = read_sweeps(folders)
    rates = sorted(set(pd.concat([df.offered_rate_per_s for _, df in sweeps]).dropna()))
    figs = []
    for metric, title in PANELS:
        p = _log_figure(title, "offered load (requests/s)", "ms", rates, y_log=True)
        for i, (label, df) in enumerate(sweeps):
            src = source(df.assign(label=label))
            color = LOAD_COLORS[i % len(LOAD_COLORS)]
            rs = []
            for q, dash, marker in (("p50", "solid", "circle"), ("p99", "dashed", "x")):
                p.line("offered_rate_per_s", f"{metric}_{q}", source=src, color=color, line_dash=dash,
                       legend_label=f"{label} {q}")
                rs.append(p.scatter("offered_rate_per_s", f"{metric}_{q}", source=src, color=color, marker=marker,
                                    size=8, legend_label=f"{label} {q}"))
            p.add_tools(m.HoverTool(renderers=rs, tooltips=[
                ("run", "@label"), ("offered", "@offered_rate_per_s{0,0.0} req/s"),
                ("achieved", "@achieved_rate_per_s{0,0.0} req/s"), ("p50", f"@{metric}_p50{{0,0.0}} ms"),
                ("p99", f"@{metric}_p99{{0,0.0}} ms"), ("completed", "@completed"), ("errors", "@errors")]))
        slo = sweeps[0][1].get(f"slo_{metric}") if sweeps else None
        if slo is not None and slo.notna().any():
            p.add_layout(m.Span(location=float(slo.dropna().iloc[0]), dimension="width", line_color="grey",
                                line_dash="dotted"))
        figs.append(_finish(p))
    p = _log_figure("throughput (requests/s)", "offered load (requests/s)", "requests/s", rates)
    for i, (label, df) in enumerate(sweeps):
        src = source(df.assign(label=label))
        color = LOAD_COLORS[i % len(LOAD_COLORS)]
        p.line("offered_rate_per_s", "request_throughput_per_s", source=src, color=color,
               legend_label=f"{label} completed")
        r1 = p.scatter("offered_rate_per_s", "request_throughput_per_s", source=src, color=color, size=8,
                       legend_label=f"{label} completed")
        p.line("offered_rate_per_s", "goodput_requests_per_s", source=src, color=color, line_dash="dashed",
               legend_label=f"{label} goodput (SLO)")
        r2 = p.scatter("offered_rate_per_s", "goodput_requests_per_s", source=src, color=color, marker="x", size=8,
                       legend_label=f"{label} goodput (SLO)")
        p.add_tools(m.HoverTool(renderers=[r1, r2], tooltips=[
            ("run", "@label"), ("offered", "@offered_rate_per_s{0,0.0} req/s"),
            ("completed", "@request_throughput_per_s{0,0.0} req/s"), ("goodput", "@goodput_requests_per_s{0,0.0}")]))
    p.line(rates, rates, color="grey", line_dash="dotted", legend_label="offered")
    figs.append(_finish(p))
    table_df = pd.concat([df.assign(label=label) for label, df in sweeps], ignore_index=True)
    cols = [c for c in ("label", "offered_rate_per_s", "achieved_rate_per_s", "completed", "errors", "timeouts",
                        "request_throughput_per_s", "goodput_requests_per_s", "output_tokens_per_s", "ttft_ms_p50",
                        "ttft_ms_p99", "tpot_ms_p50", "tpot_ms_p99", "e2e_ms_p99", "send_lag_ms_p99") if c in table_df]
    table = filterable_table(_as_table(table_df, cols), _spec(table_df, cols), [("run", "label")], ["label"], "load")
    head = _div("<h1>Load: " + html.escape(" vs ".join(label for label, _ in sweeps)) + "</h1><p class='small'>"
                "Latency percentiles and throughput against offered load (dotted: the SLO; the offered line). "
                "Hover a point; wheel or box to zoom; click a legend entry to hide it. Data: "
                "<a href='sweep.parquet'>sweep.parquet</a>, <a href='sweep.csv'>sweep.csv</a>.</p>")
    return file_html(column(head, row(*figs[:2]), row(*figs[2:]), _div("<h2>Runs</h2>"), table), INLINE,
                     "tracer load")
