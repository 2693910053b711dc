"""Several analysed runs side by side (HF against vLLM, eager against graphs), with ratios to the first."""
from __future__ import annotations

from pathlib import Path

import orjson
import pandas as pd

FIGURES = ("ttft_ms", "decode_ms_per_token_mean", "decode_ms_per_token_p99", "output_tokens_per_s",
           "total_tokens_per_s", "peak_allocated_bytes", "nvml_peak_memory_used_bytes", "kv_cache_bytes")


def run_row(label: str, result: dict) -> dict:
    s = result["summary"]
    row = {"run": label, "kernels": s["totals"]["kernels"], "kernel_ms": s["totals"]["kernel_us"] / 1e3}
    for p in s["phases"]:
        row[f"{p['phase']}_gpu_busy_ms"] = p["gpu_busy_us"] / 1e3
        row[f"{p['phase']}_wall_ms"] = (p["wall_us"] or 0) / 1e3 if p["wall_us"] is not None else None
        for b in ("memory", "compute", "latency"):
            row[f"{p['phase']}_{b}_bound_pct"] = p[f"{b}_bound_pct"]
    for c in s["classes"]:
        row[f"{c['phase']}_{c['kernel_class']}_ms"] = c["kernel_us"] / 1e3
    figures = ((s.get("run") or {}).get("figures")) or {}
    for f in FIGURES:
        row[f] = figures.get(f)
    return row


def compare_results(runs: list[tuple[str, dict]]) -> dict:
    rows = [run_row(label, r) for label, r in runs]
    table = pd.DataFrame(rows).set_index("run").T
    base = table.iloc[:, 0]
    for col in table.columns[1:]:
        table[f"{col} / {table.columns[0]}"] = pd.to_numeric(table[col], errors="coerce") / pd.to_numeric(
            base, errors="coerce")
    top = {label: r["summary"]["top_kernels"] for label, r in runs}
    return {"rows": rows, "table": table, "json": {"runs": rows, "top_kernels": top}}


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """The comparison as people read it: byte rows in GiB (ratios are unitless and stay), numbers as floats."""
    shown = table.apply(pd.to_numeric, errors="coerce").astype(float)
    rows = [r for r in shown.index if str(r).endswith("_bytes")]
    runs = [c for c in shown.columns if " / " not in str(c)]
    shown.loc[rows, runs] = shown.loc[rows, runs] / 2**30
    return shown.rename(index={r: r[:-len("_bytes")] + "_gib" for r in rows})


def write_comparison(comparison: dict, runs: list[tuple[str, dict]], out: str | Path) -> list[Path]:
    """Every output built in a temporary folder that replaces `out` whole (tracer.io.outputs)."""
    from analysis.plots import breakdown_plot, roofline_plot
    from tracer.io.outputs import output_folder

    out = Path(out)
    with output_folder(out) as tmp:
        roofline_plot([(label, r["kernels"], r["peaks"]) for label, r in runs], tmp / "roofline.png",
                      "Roofline: " + " vs ".join(label for label, _ in runs), by="run")
        breakdown_plot([(label, r["classes"]) for label, r in runs], tmp / "breakdown.png",
                       "Kernel time per phase and class")
        (tmp / "comparison.json").write_bytes(orjson.dumps(comparison["json"], option=orjson.OPT_INDENT_2
                                                           | orjson.OPT_SERIALIZE_NUMPY, default=str))
        md = ["# Comparison", "", "![roofline](roofline.png)", "", "![breakdown](breakdown.png)", "",
              display_table(comparison["table"]).to_markdown(floatfmt=",.3f")]
        (tmp / "report.md").write_bytes("\n".join(md).encode())
    return [out / n for n in ("roofline.png", "breakdown.png", "comparison.json", "report.md")]
