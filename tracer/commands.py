"""What `tracer analyze` and `tracer compare` do: parse (tracer.parse), analyse (analysis), print and write.
The one place where the parsing and analysis layers meet."""
from __future__ import annotations

import sys
from pathlib import Path

import click
import orjson
import pandas as pd

from tracer.errors import TracerError
from tracer.parse import load_tables
from tracer.io.inputs import check_regular_file
from tracer.io.outputs import ANALYSIS_FILES, COMPARE_FILES, check_out_dir
from tracer.io.sidecar import read_sidecar, trace_stem


def default_out_dir(trace: str) -> Path:
    stem = trace_stem(trace)
    return stem.with_name(stem.name + "_analysis")


def work_model_inputs(model: str | None, layers: int | None, workload: str | None, dtype: str | None) -> dict:
    """What the user named of a trace's model and workload, as plain data for the analysis layer."""
    out: dict = {"dtype": dtype}
    if model:
        if model.endswith(".json") and Path(model).is_file():
            try:
                out["model_config"] = orjson.loads(Path(model).read_bytes())
            except orjson.JSONDecodeError as e:
                raise TracerError(f"--model {model}: not a JSON config ({e})") from None
        else:
            from workloads.models import model_config
            out["model_config"] = model_config(model, layers).to_dict()
    if workload:
        from workloads.spec import parse_workload
        w = parse_workload(workload)
        out["workload"] = {"name": w.name, "batch": w.batch, "prompt_tokens": w.prompt_tokens,
                           "output_tokens": w.output_tokens}
    return out


def analyze_one(trace: str, peaks_file=None, ncu_file=None, ncu_phase=None,
                work_model: dict | None = None) -> tuple[dict, dict]:
    from analysis.report import analyze

    if trace.endswith((".ncu.csv", ".ncu.csv.gz")) and not ncu_file:
        from tracer.parse.ncu import tables_from_ncu
        side = read_sidecar(trace) or {}
        phase = ((side.get("figures") or {}).get("measured_step") or {}).get("phase") or (
            "prefill" if (side.get("workload") or {}).get("kind") == "prefill" else "decode")
        tables = tables_from_ncu(trace, phase)
        tables["meta"]["device_properties"] = [side["device"]] if side.get("device") else []
        return tables, analyze(tables, side or None, peaks_file, **(work_model or {}))
    tables = load_tables(trace)
    ncu = None
    if ncu_file:
        from tracer.parse.ncu import ncu_kernels
        ncu = ncu_kernels(ncu_file)
        ncu_phase = ncu_phase or (read_sidecar(ncu_file) or {}).get("ncu_range") or "decode"
    result = analyze(tables, read_sidecar(trace), peaks_file, ncu, ncu_phase, **(work_model or {}))
    result["summary"]["notices"][:0] = tables["meta"].get("notices", [])   # dropped invalid events first
    return tables, result


def analyze_path(trace: str, out_dir: str | None, as_json: bool, peaks_file=None, ncu_file=None,
                 ncu_phase=None, work_model: dict | None = None, force: bool = False) -> list[Path]:
    from analysis.report import write_outputs

    check_regular_file(trace)
    out = check_out_dir(Path(out_dir) if out_dir else default_out_dir(trace), ANALYSIS_FILES, force)
    tables, result = analyze_one(trace, peaks_file, ncu_file, ncu_phase, work_model)
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
                  work_model: dict | None = None, force: bool = False) -> Path:
    from analysis.compare import compare_results, write_comparison

    if len(paths) < 2:
        raise TracerError("tracer compare needs at least two traces")
    for p in paths:
        check_regular_file(p)
    out = check_out_dir(Path(out_dir) if out_dir else Path("traces") / "compare", COMPARE_FILES, force)
    runs = []
    for p in paths:
        _, result = analyze_one(p, peaks_file, work_model=work_model)
        runs.append((_label(p), result))
    runs = _unique_labels(runs)
    comparison = compare_results(runs)
    written = write_comparison(comparison, runs, out)
    if as_json:
        sys.stdout.write(orjson.dumps(comparison["json"], option=orjson.OPT_INDENT_2, default=str).decode() + "\n")
    else:
        from analysis.compare import display_table
        click.echo(display_table(comparison["table"]).to_string(float_format=lambda v: f"{v:,.3f}", na_rep="-"))
    click.echo("wrote " + " ".join(str(p) for p in written), err=True)
    return out


def _unique_labels(runs: list) -> list:
    # Two runs of one workload (or one file given twice) share a label; the comparison table needs distinct ones.
    seen: dict[str, int] = {}
    unique = []
    for label, result in runs:
        seen[label] = seen.get(label, 0) + 1
        unique.append((label if seen[label] == 1 else f"{label}#{seen[label]}", result))
    return unique


def _label(path: str) -> str:
    side = read_sidecar(path) or {}
    if side.get("backend"):
        eager = "-eager" if (side.get("vllm_options") or {}).get("enforce_eager") else ""
        return f"{side['backend']}{eager}:{side.get('workload', {}).get('name', '')}"
    return trace_stem(path).name
