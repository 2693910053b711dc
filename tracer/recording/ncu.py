"""Nsight Compute driver: measured counters for the kernels of one phase's NVTX range.

Collected per kernel: duration, DRAM bytes read and written, FLOP counts of the fp16/bf16/fp32/fp64 pipes
(thread instructions: FMA counts twice) and tensor-core math ops. The raw CSV page is kept beside the sidecar;
tracer.parse.ncu reads it.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from tracer.errors import TracerError
from tracer.io.sidecar import sidecar_path, trace_stem
from tracer.recording.progress import progress
from tracer.recording.tools import child_record_command
from tracer.tools import find_tool, run_tool

TIME_AND_BYTES = ["gpu__time_duration.sum", "dram__bytes_read.sum", "dram__bytes_write.sum",
                  "lts__t_bytes.sum", "sm__throughput.avg.pct_of_peak_sustained_elapsed",
                  "gpu__compute_memory_throughput.avg.pct_of_peak_sustained_elapsed"]
SASS_FLOPS = [f"sm__sass_thread_inst_executed_op_{p}{op}_pred_on.sum"
              for p in ("h", "f", "d") for op in ("add", "mul", "fma")]
TENSOR_OPS = ["sm__ops_path_tensor_src_bf16_dst_fp32.sum", "sm__ops_path_tensor_src_fp16_dst_fp32.sum",
              "sm__ops_path_tensor_src_fp16_dst_fp16.sum", "sm__ops_path_tensor_src_tf32_dst_fp32.sum",
              "sm__inst_executed_pipe_tensor.sum"]
METRICS = TIME_AND_BYTES + SASS_FLOPS + TENSOR_OPS
_TENSOR_PATH = re.compile(r"^sm__ops_path_tensor_src_[a-z0-9]+_dst_[a-z0-9]+$")


def available_metrics(ncu: str) -> set[str]:
    """Metric base names this GPU and ncu know, so an unknown one (other architectures) is left out."""
    proc = run_tool([ncu, "--query-metrics", "--csv"], "ncu --query-metrics")
    names = set()
    for line in proc.stdout.splitlines()[1:]:
        first = line.split(",")[0].strip().strip('"')
        if first:
            names.add(first)
    return names


def record_under_tool(req, out: Path) -> list[Path]:
    ncu = find_tool("ncu", req.tool_path)
    phase_range = req.ncu_range or ("prefill" if req.workload.kind == "prefill" else "decode")
    if phase_range not in ("prefill", "decode"):
        raise TracerError(f"--ncu-range {phase_range}: expected prefill or decode")
    known = available_metrics(ncu)
    metrics = [m for m in METRICS if m.rsplit(".", 1)[0] in known]
    # every tensor-path counter this GPU has (fp8 and int8 paths included), so quantized GEMMs count too
    metrics += sorted(f"{m}.sum" for m in known if _TENSOR_PATH.match(m) and f"{m}.sum" not in metrics)
    if "gpu__time_duration.sum" not in metrics:  # the query's format was not understood: ask for all
        metrics = METRICS
    stem = trace_stem(out)
    report = stem.with_name(stem.name + ".ncu-rep")
    csv = stem.with_name(stem.name + ".ncu.csv")
    child_out = stem.with_name(stem.name + ".json.gz")
    # ncu's push/pop filter names the whole range stack of the domain from the outside in: decode kernels run
    # inside decode/decode_step/ (seen on the H100: "tracer@decode/" alone matched none of them).
    default = "tracer@decode/decode_step/" if phase_range == "decode" else "tracer@{range}/"
    include = os.environ.get("TRACER_NCU_NVTX_INCLUDE", default).format(range=phase_range)
    # vLLM: its in-process engine brackets exactly one step of that phase with the CUDA profiler API; the kernels
    # of its CUDA graphs are measured node by node
    nvtx = ["--nvtx", "--nvtx-include", include] if req.backend == "hf" else ["--graph-profiling", "node"]
    cmd = [ncu, "--profile-from-start", "off", *nvtx,
           "--clock-control", "none", "--launch-count", str(req.ncu_launch_count),
           "--metrics", ",".join(metrics), "-o", str(stem), "-f"] + child_record_command(req, child_out)
    progress(f"ncu on the {phase_range} range ({len(metrics)} metrics, at most {req.ncu_launch_count} kernels)")
    run_tool(cmd, "ncu")
    if not report.exists():
        raise TracerError(f"ncu wrote no report ({report}): no kernel ran inside the NVTX range {phase_range}")
    proc = run_tool([ncu, "--import", str(report), "--csv", "--page", "raw"], "ncu --import")
    from tracer.io.atomic import write_atomic
    write_atomic(csv, proc.stdout.encode())
    return [report, csv, sidecar_path(child_out)]
