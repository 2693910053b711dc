"""Several analysed runs side by side (HF against vLLM, eager against graphs): topic tables with ratios and
differences to the first run, a headline, and regression gates (`--fail-if`) over named metrics."""
from __future__ import annotations

from pathlib import Path

import orjson
import pandas as pd

from analysis.reports.tables import figure_value

FIGURES = ("ttft_ms", "decode_ms_per_token_mean", "decode_ms_per_token_p50", "decode_ms_per_token_p99",
           "output_tokens_per_s", "total_tokens_per_s", "peak_allocated_bytes", "nvml_peak_memory_used_bytes",
           "kv_cache_bytes")
ALIASES = {"decode_ms_per_token": "decode_ms_per_token_mean", "tokens_per_s": "output_tokens_per_s",
           "ttft": "ttft_ms"}


def run_row(label: str, result: dict) -> dict:
    """The run's metrics by name (what --fail-if can gate on): figures, unprofiled figures, totals, per phase
    wall and GPU busy time, bound shares, kernel time per class."""
    s = result["summary"]
    row = {"run": label, "kernels": s["totals"]["kernels"], "kernel_ms": s["totals"]["kernel_us"] / 1e3,
           "unmodeled_pct": s["totals"]["unmodeled_pct"]}
    for p in s["phases"]:
        ph = p["phase"]
        row[f"{ph}_gpu_busy_ms"] = p["gpu_busy_us"] / 1e3
        row[f"{ph}_wall_ms"] = p["wall_us"] / 1e3 if p["wall_us"] is not None else None
        row[f"{ph}_gpu_busy_pct_of_wall"] = p.get("gpu_busy_pct_of_wall")
        row[f"{ph}_gpu_busy_pct_of_unprofiled"] = p.get("gpu_busy_pct_of_unprofiled")
        row[f"{ph}_unmodeled_pct"] = p.get("unmodeled_pct")
        for b in ("memory", "compute", "latency", "l2"):
            row[f"{ph}_{b}_bound_pct"] = p.get(f"{b}_bound_pct")
    for w in s.get("wall") or []:
        if w["kind"] == "wall":
            row[f"{w['phase']}_wall_ms_per_step"] = w["us_per_step"] / 1e3
    for c in s["classes"]:
        row[f"{c['phase']}_{c['kernel_class']}_ms"] = c["kernel_us"] / 1e3
    for f in FIGURES:
        row[f] = figure_value(result, f)
        row[f"unprofiled_{f}"] = figure_value(result, f, unprofiled=True)
    row["profiler_inflation"] = figure_value(result, "profiler_inflation")
    un = (figure_value(result, "unprofiled") or {})   # repeats (#27): runs, spreads, HF generate() figures
    for key, value in un.items():
        if key == "runs" or key.endswith("_spread_pct") or (key.startswith("hf_generate_") and key != "hf_generate_per_run"):
            row[key if key.startswith("hf_generate_") else f"unprofiled_{key}"] = value
    return row


def compare_results(runs: list[tuple[str, dict]]) -> dict:
    from analysis.reports.headline import headline
    from analysis.reports.tables import topic_tables

    rows = [run_row(label, r) for label, r in runs]
    top = {label: r["summary"]["top_kernels"] for label, r in runs}
    lines = headline(runs)
    tables = topic_tables(runs)
    from analysis.reports.deployment import deployment_markdown
    return {"rows": rows, "headline": lines, "tables": tables, "table": metrics_table(rows),
            "deployment": deployment_markdown(runs),
            "json": {"headline": lines, "runs": rows, "top_kernels": top,
                     "deployment": {label: r["summary"].get("deployment") for label, r in runs},
                     "wall": {label: r["summary"].get("wall") for label, r in runs},
                     "host": {label: r["summary"].get("host") for label, r in runs}}}


def metrics_table(rows: list[dict]) -> pd.DataFrame:
    """Every metric (rows) of every run (columns), then each run's ratio to the first: the numbers --fail-if
    gates on, for the Python API (the reports show the topic tables instead)."""
    table = pd.DataFrame(rows).set_index("run").T
    base = pd.to_numeric(table.iloc[:, 0], errors="coerce")
    for col in list(table.columns[1:]):
        table[f"{col} / {table.columns[0]}"] = pd.to_numeric(table[col], errors="coerce") / base
    return table


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """The metrics as floats, byte rows in GiB (ratios are unitless and stay)."""
    shown = table.apply(pd.to_numeric, errors="coerce").astype(float)
    rows = [r for r in shown.index if str(r).endswith("_bytes")]
    runs = [c for c in shown.columns if " / " not in str(c)]
    shown.loc[rows, runs] = shown.loc[rows, runs] / 2**30
    return shown.rename(index={r: r[:-len("_bytes")] + "_gib" for r in rows})


def comparison_text(comparison: dict, markdown: bool) -> str:
    from analysis.reports.tables import render
    head = " ".join(comparison["headline"])
    return ("# Comparison\n\n" + head + "\n\n![roofline](roofline.png)\n\n![breakdown](breakdown.png)\n\n"
            if markdown else head + "\n\n") + render(comparison["tables"], markdown) + (
        "\n\n" + comparison["deployment"] if comparison.get("deployment") else "")


def write_comparison(comparison: dict, runs: list[tuple[str, dict]], out: str | Path,
                     children: dict | None = None) -> list[Path]:
    """Every output built in a temporary folder that replaces `out` whole (tracer.io.outputs): the figures and
    report.html in children (`children` from analysis.reports.drawing_child.output_children, or forked here), while this
    process writes comparison.json and report.md."""
    from analysis.reports.output_files import figure_inputs
    from tracer.io.forked import alongside
    from tracer.io.outputs import output_folder

    out, children = Path(out), children or {}
    figures = [(label, figure_inputs(r)) for label, r in runs]
    with output_folder(out) as tmp:
        with alongside(_html_page, comparison, runs, tmp), \
                alongside(_figures, figures, tmp, child=children.get("drawing")):
            (tmp / "comparison.json").write_bytes(orjson.dumps(comparison["json"], option=orjson.OPT_INDENT_2
                                                               | orjson.OPT_SERIALIZE_NUMPY, default=str))
            (tmp / "report.md").write_bytes(comparison_text(comparison, markdown=True).encode())
    return [out / n for n in ("roofline.png", "breakdown.png", "comparison.json", "report.md", "report.html")]


def _figures(runs: list[tuple[str, dict]], tmp: Path) -> None:
    from analysis.reports.plots import breakdown_plot, roofline_plot

    roofline_plot([(label, r["kernels"], r["peaks"]) for label, r in runs], tmp / "roofline.png",
                  "Roofline: " + " vs ".join(label for label, _ in runs))
    breakdown_plot([(label, r["wall"]) for label, r in runs], tmp / "breakdown.png",
                   "Wall time per step: GPU busy per class and GPU idle")


def _html_page(comparison: dict, runs: list[tuple[str, dict]], tmp: Path) -> None:
    from analysis.reports.html.analysis_page import comparison_html
    from analysis.reports.headline import source_lines

    lines = [line for label, r in runs for line in source_lines(r["summary"], label)]
    (tmp / "report.html").write_bytes(comparison_html(comparison, runs, lines).encode())
