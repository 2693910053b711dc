"""What `tracer analyze` and `tracer compare` do: parse (tracer.parse), analyse (analysis), print and write.
The one place where the parsing and analysis layers meet."""
from __future__ import annotations

import sys
from pathlib import Path

import click
import orjson
import pandas as pd

from analysis.numbers import count, ms, sig3
from tracer.errors import TracerError
from tracer.io.inputs import check_regular_file
from tracer.io.outputs import ANALYSIS_FILES, COMPARE_FILES, check_out_dir
from tracer.io.sidecar import read_sidecar, trace_stem
from tracer.api import work_model_inputs  # noqa: F401 (tracer.cli imports it from here)


def default_out_dir(trace: str) -> Path:
    stem = trace_stem(trace)
    return stem.with_name(stem.name + "_analysis")


def analyze_one(trace: str, peaks_file=None, ncu_file=None, ncu_phase=None,
                work_model: dict | None = None) -> tuple[dict, dict]:
    """(tables, result) of one trace file: Chrome/Kineto, nsys, or an ncu report read as one step."""
    from tracer.api import analysis_of, load
    return analysis_of(load(trace), peaks_file, ncu_file, ncu_phase, work_model)


def analyze_path(trace: str, out_dir: str | None, as_json: bool, peaks_file=None, ncu_file=None,
                 ncu_phase=None, work_model: dict | None = None, force: bool = False) -> list[Path]:
    from analysis.reports.drawing_child import output_children, parsed
    from analysis.reports.output_files import (started_figures, write_kernels_parquet, write_ops_parquet,
                                               write_outputs_into)
    from tracer.api import analysis_of, load
    from tracer.io.forked import in_background, in_child
    from tracer.io.outputs import output_folder

    size = check_regular_file(trace).st_size
    out = check_out_dir(Path(out_dir) if out_dir else default_out_dir(trace), ANALYSIS_FILES, force)
    with output_children(size) as children, output_folder(out) as folder:
        parsed_trace = load(trace)
        parsed(children)
        # the Parquet tables encoded on the core the analysis leaves: ops.parquet at once on a thread (Arrow, mostly
        # without the GIL), kernels.parquet in a child as soon as the kernel table is final (on a thread it held the
        # GIL against the analysis, and a fork after it had to wait for the thread); the figures drawn from then on
        # too, by the drawing child (the page, the parent's longest output, is then the last to end)
        ops = parsed_trace.tables["ops"]
        early = {"ops.parquet": in_background(write_ops_parquet, ops, folder)}

        def early_result(parts: dict):
            # the figures' inputs summed before the fork: after it, every page the parent writes is copied first
            early["figures"] = started_figures(parts, folder, Path(trace).name, children)
            early["kernels.parquet"] = in_child(write_kernels_parquet, parts["kernels"], folder)

        tables, result = analysis_of(parsed_trace, peaks_file, ncu_file, ncu_phase, work_model, early_result)
        if tables["ops"] is not ops:   # steps inferred by the analysis: ops.parquet is written again with them
            early.pop("ops.parquet").result()
        # what the terminal shows, made while the drawing child may still draw
        shown = None if as_json else terminal_summary(result, tables)
        names = write_outputs_into(folder, result, tables, Path(trace).name, children, early)
    written = [out / n for n in names]
    if as_json:
        sys.stdout.write(orjson.dumps(result["summary"], option=orjson.OPT_INDENT_2, default=str).decode() + "\n")
    else:
        click.echo(shown)
    click.echo("wrote " + " ".join(str(p) for p in written), err=True)
    return written


def terminal_summary(result: dict, tables: dict) -> str:
    from analysis.reports.headline import headline, peaks_line
    from analysis.reports.tables import render, topic_tables

    s = result["summary"]
    title = run_label(str(s["source"]["path"]))
    head = " ".join(headline([(title, result)]))
    lines = [head, ""] if head else []
    lines.append(f"trace: {s['source']['path']}  ({s['source']['format']}, device: {s['source']['device'] or 'unknown'})")
    for n in s["notices"]:
        lines.append(f"notice: {n}")
    if s["totals"]["kernels"] == 0:
        ops = tables["ops"]
        if not ops.empty:
            top = ops.groupby("name", observed=True)["dur_us"].agg(["count", "sum"]).sort_values("sum", ascending=False)
            top = top.head(10)
            lines += ["", "top CPU ops:", pd.DataFrame({"op": top.index.astype(str), "calls": top["count"].map(count),
                                                        "time (ms)": top["sum"].map(ms)}).to_string(index=False)]
        return "\n".join(lines + ["", render(topic_tables([(title, result)]), markdown=False)]).rstrip()
    p = s["source"]["peaks"]
    if p:
        lines.append(peaks_line(p))
    t = s["totals"]
    lines.append(f"{count(t['kernels'])} kernels, {ms(t['kernel_us'])} ms of kernel time; "
                 f"{sig3(t['phase_attributed_pct'])}% attributed to a phase; {sig3(t['unmodeled_pct'])}% unmodeled")
    lines += ["", render(topic_tables([(title, result)]), markdown=False)]
    return "\n".join(lines).rstrip()


def compare_paths(paths: list[str], out_dir: str | None, as_json: bool, peaks_file=None,
                  work_model: dict | None = None, fail_if: list[str] | tuple = (), force: bool = False) -> Path:
    """Compare the traces; with `fail_if`, exit 1 after writing everything when a condition breaks (one line
    each on stderr)."""
    from analysis.reports.compare import comparison_text, compare_results, write_comparison
    from analysis.reports.gates import check, parse_condition
    from analysis.reports.drawing_child import output_children, parsed

    if len(paths) < 2:
        raise TracerError("tracer compare needs at least two traces")
    for c in fail_if:
        parse_condition(c)   # a malformed gate fails before minutes of analysis
    size = sum(check_regular_file(p).st_size for p in paths)
    out = check_out_dir(Path(out_dir) if out_dir else Path("traces") / "compare", COMPARE_FILES, force)
    with output_children(size, traces=len(paths)) as children:
        runs = []
        for p in paths:
            _, result = analyze_one(p, peaks_file, work_model=work_model)
            runs.append((run_label(p), result))
        parsed(children)
        runs = _unique_labels(runs)
        comparison = compare_results(runs)
        broken = check(list(fail_if), comparison["rows"]) if fail_if else []
        written = write_comparison(comparison, runs, out, children)
    if as_json:
        sys.stdout.write(orjson.dumps(comparison["json"], option=orjson.OPT_INDENT_2, default=str).decode() + "\n")
    else:
        click.echo(comparison_text(comparison, markdown=False).rstrip())
    click.echo("wrote " + " ".join(str(p) for p in written), err=True)
    if broken:
        for line in broken:
            click.echo(f"tracer: fail-if {line}", err=True)
        sys.exit(1)
    return out


def _unique_labels(runs: list) -> list:
    # Two runs of one workload (or one file given twice) share a label; the comparison table needs distinct ones.
    seen: dict[str, int] = {}
    unique = []
    for label, result in runs:
        seen[label] = seen.get(label, 0) + 1
        unique.append((label if seen[label] == 1 else f"{label}#{seen[label]}", result))
    return unique


def run_label(path: str) -> str:
    """backend[-eager]:workload from the sidecar, else the trace's stem."""
    side = read_sidecar(path) or {}
    if side.get("backend"):
        eager = "-eager" if (side.get("vllm_options") or {}).get("enforce_eager") else ""
        return f"{side['backend']}{eager}:{side.get('workload', {}).get('name', '')}"
    return trace_stem(path).name
