"""report.html of a sweep (`tracer sweep`: throughput and latency against batch, prompt length or request count)
and of a load sweep (`tracer load --rates`: latency percentiles and throughput against offered load): the PNGs'
panels with hover and zoom, and the runs as a sortable, filterable table (page.py draws them)."""
from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from analysis.reports.html.page import (ZOOM_NOTE, chart, charts_section, html_section, line, page_html, points,
                                        table_section)

SWEEP_COLORS = {"hf": "#d1495b", "vllm": "#00798c"}          # analysis.reports.sweep_plots.COLORS
LOAD_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")   # matplotlib's cycle, as load.png


def _spec(df: pd.DataFrame, cols: list[str]) -> list[tuple]:
    """Table columns: text as text, whole numbers with separators, others with two decimals."""
    def fmt(c):
        if not pd.api.types.is_numeric_dtype(df[c]):
            return None
        whole = pd.api.types.is_integer_dtype(df[c]) or (df[c].dropna() % 1 == 0).all()
        return "int" if whole else "f2"
    return [(c.replace("_", " "), c, fmt(c)) for c in cols]


def _as_table(df: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    return df[cols].astype({c: str for c in cols if not pd.api.types.is_numeric_dtype(df[c])})


def _axis(label: str, ticks=None, log: bool = True) -> dict:
    return {"label": label, "log": log, **({"ticks": sorted(float(t) for t in ticks)} if ticks is not None else {})}


def sweep_html(out_dir) -> str:
    """report.html of a `tracer sweep` folder (its sweep.parquet)."""
    df = pd.read_parquet(Path(out_dir) / "sweep.parquet")
    ok = df[df["status"] == "ok"]
    charts = []
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
            datasets = []
            for backend, b in g.groupby("backend"):
                b = b.assign(x=b[x].astype(float))
                color = SWEEP_COLORS.get(backend, "#555555")
                if col == "tps":   # each x's min-max as a segment, segments apart (a null y breaks the line)
                    xs = [v for xv in b["x"] for v in (xv, xv, xv)]
                    ys = [v for lo, hi in zip(b["tps_min"], b["tps_max"]) for v in (lo, hi, None)]
                    datasets.append(line(f"{backend} min-max", xs, ys, color, listed=False))
                datasets.append(points(str(backend), b["x"], b[col], color, rows=b, line=True))
            hover = [("backend", "{backend}"), (x, "{x:int}"), (unit, f"{{{col}:f2}}"), ("repeats", "{repeats}")]
            if col == "tps":
                hover.append(("min-max", "{tps_min:int} - {tps_max:int}"))
            charts.append(chart(title, datasets, _axis(x, g[x].unique()), _axis(unit, log=False), 460, 330,
                                hover=hover))
    cols = [c for c in ("backend", "mode", "batch", "prompt_tokens", "output_tokens", "requests", "repeat", "status",
                        "output_tokens_per_s", "ttft_ms", "decode_ms_per_token_mean", "decode_ms_per_token_p99",
                        "peak_allocated_bytes", "kv_cache_bytes", "gpu_util_pct_mean") if c in df]
    head = html_section(f"<h1>Sweep: {html.escape(str(Path(out_dir).name))}</h1><p class='small'>{len(df)} runs "
                        f"({len(ok)} ok). {ZOOM_NOTE} Data: <a href='sweep.parquet'>sweep.parquet</a>, "
                        "<a href='sweep.csv'>sweep.csv</a>.</p>")
    sections = [head] + ([charts_section(charts)] if charts else [])
    sections += [html_section("<h2>Runs</h2>"),
                 table_section(_as_table(df, cols), _spec(df, cols), [("backend", "backend"), ("status", "status")],
                               ["backend", "status"], "sweep")]
    return page_html("tracer sweep", sections)


def load_html(folders) -> str:
    """report.html of one or more `tracer load --rates` sweeps (their sweep.parquet), on the same axes."""
    from analysis.reports.load_plots import PANELS, read_sweeps

    sweeps = read_sweeps(folders)
    rates = sorted(set(pd.concat([df.offered_rate_per_s for _, df in sweeps]).dropna()))
    charts = []
    for metric, title in PANELS:
        datasets = []
        for i, (label, df) in enumerate(sweeps):
            rows = df.assign(label=label)
            color = LOAD_COLORS[i % len(LOAD_COLORS)]
            for q, dash, marker in (("p50", (), "circle"), ("p99", (6, 4), "crossRot")):
                datasets.append(points(f"{label} {q}", rows["offered_rate_per_s"], rows[f"{metric}_{q}"], color,
                                       rows=rows, marker=marker, line=True, dash=dash))
        slo = sweeps[0][1].get(f"slo_{metric}") if sweeps else None
        if slo is not None and slo.notna().any() and rates:
            level = float(slo.dropna().iloc[0])
            datasets.append(line("SLO", [rates[0] / 2, rates[-1] * 2], [level, level], "#808080", dash=(2, 3)))
        charts.append(chart(title, datasets, _axis("offered load (requests/s)", rates), _axis("ms"), 460, 330,
                            hover=[("run", "{label}"), ("offered", "{offered_rate_per_s:f1} req/s"),
                                   ("achieved", "{achieved_rate_per_s:f1} req/s"),
                                   ("p50", f"{{{metric}_p50:f1}} ms"), ("p99", f"{{{metric}_p99:f1}} ms"),
                                   ("completed", "{completed}"), ("errors", "{errors}")]))
    datasets = []
    for i, (label, df) in enumerate(sweeps):
        rows = df.assign(label=label)
        color = LOAD_COLORS[i % len(LOAD_COLORS)]
        datasets.append(points(f"{label} completed", rows["offered_rate_per_s"], rows["request_throughput_per_s"],
                               color, rows=rows, line=True))
        datasets.append(points(f"{label} goodput (SLO)", rows["offered_rate_per_s"], rows["goodput_requests_per_s"],
                               color, rows=rows, marker="crossRot", line=True, dash=(6, 4)))
    if rates:
        datasets.append(line("offered", rates, rates, "#808080", dash=(2, 3)))
    charts.append(chart("throughput (requests/s)", datasets, _axis("offered load (requests/s)", rates),
                        _axis("requests/s"), 460, 330,
                        hover=[("run", "{label}"), ("offered", "{offered_rate_per_s:f1} req/s"),
                               ("completed", "{request_throughput_per_s:f1} req/s"),
                               ("goodput", "{goodput_requests_per_s:f1}")]))
    table_df = pd.concat([df.assign(label=label) for label, df in sweeps], ignore_index=True)
    cols = [c for c in ("label", "offered_rate_per_s", "achieved_rate_per_s", "completed", "errors", "timeouts",
                        "request_throughput_per_s", "goodput_requests_per_s", "output_tokens_per_s", "ttft_ms_p50",
                        "ttft_ms_p99", "tpot_ms_p50", "tpot_ms_p99", "e2e_ms_p99", "send_lag_ms_p99") if c in table_df]
    head = html_section("<h1>Load: " + html.escape(" vs ".join(label for label, _ in sweeps)) + "</h1><p class="
                        "'small'>Latency percentiles and throughput against offered load (dotted: the SLO; the "
                        f"offered line). {ZOOM_NOTE} Data: <a href='sweep.parquet'>sweep.parquet</a>, "
                        "<a href='sweep.csv'>sweep.csv</a>.</p>")
    return page_html("tracer load", [head, charts_section(charts), html_section("<h2>Runs</h2>"),
                                     table_section(_as_table(table_df, cols), _spec(table_df, cols),
                                                   [("run", "label")], ["label"], "load")])
