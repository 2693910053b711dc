"""The trace tables: every column, its dtype and unit, in one place. README.md documents them from here.

Times are microseconds on the trace's own clock (`*_us`), sizes bytes, work FLOPs. Text columns that may be
absent are empty strings, numeric ones NaN / <NA>; `phase` is one of PHASES.
"""
from __future__ import annotations

import pandas as pd

PHASES = ("prefill", "decode", "mixed", "none")

# column -> (pandas dtype, meaning)
KERNELS = {
    "name": ("string", "kernel name as the profiler recorded it"),
    "short_name": ("string", "name without template arguments and parameter list"),
    "kernel_class": ("string", "gemm, attention, norm, elementwise, reduction, copy, communication, sampling, other"),
    "start_us": ("float64", "GPU start time"),
    "dur_us": ("float64", "GPU duration"),
    "device": ("Int64", "GPU index"),
    "stream": ("Int64", "CUDA stream"),
    "grid": ("string", "grid dimensions x,y,z"),
    "block": ("string", "block dimensions x,y,z"),
    "registers_per_thread": ("Int64", "registers per thread"),
    "shared_mem_bytes": ("Int64", "shared memory per block (static + dynamic)"),
    "correlation": ("Int64", "CUPTI correlation id, shared with the runtime launch"),
    "launch_api": ("string", "runtime/driver call that launched it (cudaLaunchKernel, cudaGraphLaunch, ...)"),
    "launch_start_us": ("float64", "CPU time of the launch call"),
    "launch_tid": ("Int64", "CPU thread of the launch call"),
    "op_name": ("string", "innermost CPU op enclosing the launch (aten::mm, vllm::..., ...)"),
    "op_input_shapes": ("string", "that op's input dims as JSON, where recorded"),
    "op_input_dtypes": ("string", "that op's input types as JSON, where recorded"),
    "op_id": ("Int64", "row of that op in the ops table"),
    "phase": ("string", "prefill, decode, mixed (a vLLM step with both) or none"),
    "step": ("Int64", "decode step index (HF), engine step index (vLLM); <NA> outside steps"),
    "range_name": ("string", "innermost phase range enclosing the launch"),
    "graph_launch": ("boolean", "replayed from a CUDA graph"),
}
MEMOPS = {
    "kind": ("string", "memcpy or memset"),
    "name": ("string", "e.g. Memcpy HtoD (Pinned -> Device)"),
    "start_us": ("float64", "GPU start time"),
    "dur_us": ("float64", "GPU duration"),
    "bytes": ("Int64", "bytes copied or set"),
    "device": ("Int64", "GPU index"),
    "stream": ("Int64", "CUDA stream"),
    "correlation": ("Int64", "CUPTI correlation id"),
    "launch_start_us": ("float64", "CPU time of the API call"),
    "launch_tid": ("Int64", "CPU thread of the API call"),
    "phase": ("string", "as in kernels"),
    "step": ("Int64", "as in kernels"),
}
OPS = {
    "name": ("string", "CPU op (aten::mm, vllm::unified_attention, ...)"),
    "start_us": ("float64", "CPU start time"),
    "dur_us": ("float64", "CPU duration"),
    "pid": ("Int64", "process"),
    "tid": ("Int64", "thread"),
    "input_shapes": ("string", "input dims as JSON"),
    "input_dtypes": ("string", "input types as JSON"),
    "external_id": ("Int64", "profiler external id (links kernels to their op)"),
    "profiler_flops": ("float64", "FLOPs torch.profiler's with_flops estimated, where it did"),
    "phase": ("string", "as in kernels"),
    "step": ("Int64", "as in kernels"),
}
RANGES = {
    "name": ("string", "annotation or NVTX message"),
    "start_us": ("float64", "CPU start"),
    "end_us": ("float64", "CPU end"),
    "pid": ("Int64", "process"),
    "tid": ("Int64", "thread"),
    "depth": ("Int64", "nesting depth among ranges of that thread (0 = outermost)"),
    "source": ("string", "annotation (torch.profiler record_function), nvtx, or vllm_step"),
    "phase": ("string", "the phase this range marks, or none"),
    "step": ("Int64", "step index for decode_step and vLLM step ranges"),
    "prefill_tokens": ("Int64", "vLLM step: prompt tokens computed in the step"),
    "decode_tokens": ("Int64", "vLLM step: sequences decoding in the step"),
}
TABLES = {"kernels": KERNELS, "memops": MEMOPS, "ops": OPS, "ranges": RANGES}

# Columns that analysis adds to kernels (analysis/roofline.py)
ANALYSIS_COLUMNS = {
    "flops": ("float64", "floating-point operations of the kernel"),
    "dram_bytes": ("float64", "DRAM bytes read plus written"),
    "work_source": ("string", "analytic, ncu, or unmodeled"),
    "intensity_flop_per_byte": ("float64", "flops / dram_bytes"),
    "achieved_tflops": ("float64", "flops / dur"),
    "achieved_gbps": ("float64", "dram_bytes / dur"),
    "roof_pct": ("float64", "attained FLOP/s as % of the roofline at this intensity"),
    "bound": ("string", "memory, compute, latency, or unmodeled"),
}


def empty(table: str) -> pd.DataFrame:
    return conform(pd.DataFrame(), table)


def conform(df: pd.DataFrame, table: str) -> pd.DataFrame:
    """Give `df` exactly the table's columns in order, with their dtypes (missing columns filled empty)."""
    spec = TABLES[table]
    out = {}
    n = len(df)
    for col, (dtype, _) in spec.items():
        if col in df.columns:
            out[col] = df[col].astype(dtype) if str(df[col].dtype) != dtype else df[col]
        else:
            out[col] = pd.Series([pd.NA] * n if dtype != "float64" else [float("nan")] * n, dtype=dtype)
        if dtype == "string":
            out[col] = out[col].fillna("")
    return pd.DataFrame(out, index=range(n)) if n else pd.DataFrame({c: pd.Series(dtype=d) for c, (d, _) in spec.items()})


def markdown_table(table: str) -> str:
    rows = ["| column | dtype | meaning |", "|---|---|---|"]
    rows += [f"| `{c}` | {d} | {m} |" for c, (d, m) in TABLES[table].items()]
    return "\n".join(rows)
