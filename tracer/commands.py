"""What `tracer analyze` and `tracer compare` do: parse (tracer.parse), analyse (analysis), print and write.
The one place where the parsing and analysis layers meet."""
from __future__ import annotations

import sys
from pathlib import Path

import click
import orjson
import pandas as pd

from tracer.errors import TracerError
from tracer.api import work_model_inputs  # noqa: F401 (tracer.cli imports it from here)
from tracer.record.sidecar import trace_stem


def default_out_dir(trace: str) -> Path:
    stem = trace_stem(trace)
    return stem.with_name(stem.name + "_analysis")


def analyze_one(trace: str, peaks_file=None, ncu_file=None, ncu_phase=None,
                work_model: dict | None = None) -> tuple[dict, dict]:
    from tracer.api import load

    wm = work_model or {}
    t = load(trace)
    a = t.analyze(peaks_file, wm.get("model_config"), wm.get("workload"), wm.get("dtype"), ncu=ncu_file,
                  ncu_phase=ncu_phase)
    return t.tables, a.result


def analyze_path(trace: str, out_dir: str | None, as_json: bool, peaks_file=None, ncu_file=None,
                 ncu_phase=None, work_model: dict | None = None) -> list[Path]:
    from analysis.report import write_outputs

    tables, result = analyze_one(trace, peaks_file, ncu_file, ncu_phase, work_model)
    out = Path(out_dir) if out_dir else default_out_dir(trace)
    written = write_outputs(result, tables, out, Path(trace).name)
    if as_json:
        sys.stdout.write(orjson.dumps(result["summary"], option=orjson.OPT_INDENT_2, default=str).decode() + "\n")
    else:
        click.echo(terminal_summary(result, tables))
    click.echo("wrote " + " ".join(str(p) for p in written), err=True)
    return written


def terminal_summary(result: dict, tables: dict) -> str:
    s = result["summary"]
    lines = [f"trace: {s['source']['path']}  ({s['source']['format']}, device: {s['source']['device'] or 'unknown'})"]
    for n in s["notices"]:
        lines.append(f"notice: {n}")
    if s["totals"]["kernels"] == 0:
        ops = tables["ops"]
        if not ops.empty:
            top = ops.groupby("name")["dur_us"].agg(["count", "sum"]).sort_values("sum", ascending=False).head(10)
            lines += ["", "top CPU ops (us):", top.round(1).to_string()]
        return "\n".join(lines)
    p = s["source"]["peaks"]
    if p:
        lines.append(f"peaks ({p['source']}): bf16 {p['bf16']:.0f} TFLOP/s, DRAM {p['hbm_gbps']:.0f} GB/s")
    t = s["totals"]
    lines.append(f"{t['kernels']} kernels, {t['kernel_us'] / 1e3:.2f} ms of kernel time; "
                 f"{t['phase_attributed_pct']:.1f}% attributed to a phase; {t['unmodeled_pct']:.1f}% unmodeled")
    if not result["phases"].empty:
        cols = ["phase", "kernels", "kernel_us", "gpu_busy_pct_of_wall", "memory_bound_pct", "compute_bound_pct",
                "latency_bound_pct", "verdict"]
        lines += ["", result["phases"][cols].round(1).to_string(index=False)]
    if not result["top"].empty:
        cols = [c for c in ("phase", "short_name", "kernel_class", "calls", "kernel_us", "pct_of_phase", "roof_pct",
                            "bound") if c in result["top"]]
        top = result["top"][cols].copy()
        top["short_name"] = top["short_name"].str.slice(0, 48)
        lines += ["", "top kernels per phase:", top.round(1).to_string(index=False)]
    if s.get("ncu"):
        lines += ["", "analytic vs Nsight Compute:", pd.DataFrame(s["ncu"]).round(3).to_string(index=False)]
    return "\n".join(lines)


def compare_paths(paths: list[str], out_dir: str | None, as_json: bool, peaks_file=None,
                  work_model: dict | None = None) -> Path:
    if len(paths) < 2:
        raise TracerError("tracer compare needs at least two traces")
    from tracer.api import compare
    wm = work_model or {}
    c = compare(paths, peaks_file, wm.get("model_config"), wm.get("workload"), wm.get("dtype"))
    comparison = c.data
    out = Path(out_dir) if out_dir else Path("traces") / "compare"
    written = c.write(out)
    if as_json:
        sys.stdout.write(orjson.dumps(comparison["json"], option=orjson.OPT_INDENT_2, default=str).decode() + "\n")
    else:
        from analysis.compare import display_table
        click.echo(display_table(comparison["table"]).to_string(float_format=lambda v: f"{v:,.3f}", na_rep="-"))
    click.echo("wrote " + " ".join(str(p) for p in written), err=True)
    return out
