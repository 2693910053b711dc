"""Nsight Systems driver: `nsys profile` around a child run, then `nsys export --type sqlite` beside the report.

CUDA and NVTX tracing only; CPU sampling and context switches off (they make reports of gigabytes); capture
limited to the measured run through the CUDA profiler API, so warm-ups stay out.
"""
from __future__ import annotations

from pathlib import Path

from tracer.io.sidecar import sidecar_path, trace_stem
from tracer.recording.tools import child_record_command
from tracer.tools import export_sqlite, find_tool, run_tool
from tracer.recording.progress import progress


def record_under_tool(req, out: Path) -> list[Path]:
    nsys = find_tool("nsys", req.tool_path)
    stem = trace_stem(out)
    rep, sqlite = stem.with_name(stem.name + ".nsys-rep"), stem.with_name(stem.name + ".sqlite")
    child_out = stem.with_name(stem.name + ".json.gz")  # the child writes no trace, only the sidecar of this stem
    cmd = [nsys, "profile", "-t", "cuda,nvtx", "-s", "none", "--cpuctxsw=none",
           "--capture-range=cudaProfilerApi", "--capture-range-end=stop",
           "-o", str(stem), "--force-overwrite", "true"] + child_record_command(req, child_out)
    progress(f"nsys profile -> {rep}")
    run_tool(cmd, "nsys profile")
    export_sqlite(nsys, rep, sqlite)
    return [rep, sqlite, sidecar_path(child_out)]

