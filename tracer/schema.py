"""The trace tables: every column, its dtype and unit, in one place. docs/files.md documents them from here.

Times are microseconds on the trace's own clock (`*_us`), sizes bytes, work FLOPs. Text columns that may be
absent are empty strings, numeric ones NaN / <NA>; `phase` is one of PHASES. Text whose values repeat (kernel
and op names, shapes, phases) is `category`: a pandas Categorical of strings, as HTA keeps a symbol table, so
a million-row table holds each name once and sorts, merges and takes integer codes.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from workloads.phases import DECODE, DECODE_STEP, PREFILL

PHASES = ("prefill", "decode", "mixed", "none")
# The ranges that mark phases: ours (workloads.phases) and vLLM's scheduler steps,
# `execute_context_<n>(<prefill tokens>)_generation_<m>(<decode tokens>)`.
PHASE_OF_RANGE = {PREFILL: "prefill", DECODE: "decode", DECODE_STEP: "decode"}
VLLM_STEP = re.compile(r"^execute_context_(\d+)\((\d+)\)_generation_(\d+)\((\d+)\)")

# column -> (pandas dtype, meaning)
KERNELS = {
    "name": ("category", "kernel name as the profiler recorded it"),
    "short_name": ("category", "name without template arguments and parameter list; CUTLASS wrapper kernels by "
                             "the operation inside"),
    "kernel_class": ("category", "gemm, attention, norm, elementwise, reduction, copy, communication, sampling, quantize, moe, other"),
    "start_us": ("float64", "GPU start time"),
    "dur_us": ("float64", "GPU duration"),
    "device": ("Int64", "GPU index"),
    "stream": ("Int64", "CUDA stream"),
    "grid": ("category", "grid dimensions x,y,z"),
    "block": ("category", "block dimensions x,y,z"),
    "registers_per_thread": ("Int64", "registers per thread"),
    "shared_mem_bytes": ("Int64", "shared memory per block (static + dynamic)"),
    "correlation": ("Int64", "CUPTI correlation id, shared with the runtime launch"),
    "launch_api": ("category", "runtime/driver call that launched it (cudaLaunchKernel, cudaGraphLaunch, ...)"),
    "launch_start_us": ("float64", "CPU time of the launch call"),
    "launch_tid": ("Int64", "CPU thread of the launch call"),
    "op_name": ("category", "innermost CPU op enclosing the launch (aten::mm, vllm::..., ...)"),
    "op_input_shapes": ("category", "that op's input dims as JSON, where recorded"),
    "op_input_dtypes": ("category", "that op's input types as JSON, where recorded"),
    "op_id": ("Int64", "row of that op in the ops table"),
    "phase": ("category", "prefill, decode, mixed (a vLLM step with both) or none"),
    "step": ("Int64", "decode step index (HF), engine step index (vLLM); <NA> outside steps"),
    "range_name": ("category", "innermost phase range enclosing the launch"),
    "graph_launch": ("boolean", "replayed from a CUDA graph"),
}
MEMOPS = {
    "kind": ("category", "memcpy or memset"),
    "name": ("category", "e.g. Memcpy HtoD (Pinned -> Device)"),
    "start_us": ("float64", "GPU start time"),
    "dur_us": ("float64", "GPU duration"),
    "bytes": ("Int64", "bytes copied or set"),
    "device": ("Int64", "GPU index"),
    "stream": ("Int64", "CUDA stream"),
    "correlation": ("Int64", "CUPTI correlation id"),
    "launch_start_us": ("float64", "CPU time of the API call"),
    "launch_tid": ("Int64", "CPU thread of the API call"),
    "phase": ("category", "as in kernels"),
    "step": ("Int64", "as in kernels"),
}
OPS = {
    "name": ("category", "CPU op (aten::mm, vllm::unified_attention, ...)"),
    "start_us": ("float64", "CPU start time"),
    "dur_us": ("float64", "CPU duration"),
    "pid": ("Int64", "process"),
    "tid": ("Int64", "thread"),
    "input_shapes": ("category", "input dims as JSON"),
    "input_dtypes": ("category", "input types as JSON"),
    "external_id": ("Int64", "profiler external id (links kernels to their op)"),
    "profiler_flops": ("float64", "FLOPs torch.profiler's with_flops estimated, where it did"),
    "phase": ("category", "as in kernels"),
    "step": ("Int64", "as in kernels"),
}
RANGES = {
    "name": ("string", "annotation or NVTX message"),
    "start_us": ("float64", "CPU start"),
    "end_us": ("float64", "CPU end"),
    "pid": ("Int64", "process"),
    "tid": ("Int64", "thread"),
    "depth": ("Int64", "nesting depth among ranges of that thread (0 = outermost)"),
    "source": ("string", "annotation (torch.profiler record_function), nvtx, vllm_step; steps found without "
                         "annotations: vllm_frame (vLLM's execute_model frames), graph_launch (one CUDA-graph "
                         "launch a step), model_pattern (one LM-head GEMM a forward pass)"),
    "phase": ("string", "the phase this range marks, or none"),
    "step": ("Int64", "step index for decode_step and vLLM step ranges, and steps found without annotations"),
    "prefill_tokens": ("Int64", "vLLM step (annotated or found): prompt tokens computed in the step"),
    "decode_tokens": ("Int64", "vLLM step (annotated or found): tokens decoded in the step"),
    "prefill_seqs": ("Int64", "step found without annotations: sequences whose prompt is computed in the step"),
    "decode_seqs": ("Int64", "step found without annotations: sequences decoding in the step"),
}
# CUDA runtime and driver calls on the host (launches, graph launches, synchronisation, copies): where the host
# side of a step spends its time (analysis/timing/walltime.py)
RUNTIME = {
    "name": ("category", "API call (cudaLaunchKernel, cudaGraphLaunch, cudaDeviceSynchronize, ...)"),
    "start_us": ("float64", "CPU start time"),
    "dur_us": ("float64", "CPU duration"),
    "pid": ("Int64", "process"),
    "tid": ("Int64", "thread"),
    "correlation": ("Int64", "CUPTI correlation id, shared with what it launched"),
}
TABLES = {"kernels": KERNELS, "memops": MEMOPS, "ops": OPS, "ranges": RANGES, "runtime": RUNTIME}

# Several traces of one job (`tracer analyze DIR` or A B ...): every table, comms included, gets this first
# column. A single trace's tables have no rank column.
RANK = {"rank": ("Int64", "distributed rank: the trace's distributedInfo.rank, else `rank-N`/`rankN` in the file "
                          "name, else the file's position in the inputs")}
# One row per communication kernel (tracer/parse/comms.py): the NCCL args Kineto recorded for it, as recorded.
# Not in TABLES: only traces with communication kernels have one, and it is built after the cached tables.
COMMS = {
    "kernel_id": ("Int64", "row of the kernel in the kernels table (of its rank)"),
    "collective": ("category", "all_reduce, all_gather, reduce_scatter, all_to_all, broadcast, reduce, send_recv, "
                               "send, recv, barrier or unknown"),
    "collective_name": ("category", "the collective as NCCL / the CPU op named it (allreduce, _allgather_base, ...)"),
    "in_nelems": ("Int64", "elements in the input message (`In msg nelems`)"),
    "out_nelems": ("Int64", "elements in the output message (`Out msg nelems`)"),
    "dtype": ("category", "element type as recorded (Float, BFloat16, c10::Half, ...)"),
    "group_size": ("Int64", "ranks in the process group (`Group size`)"),
    "process_group": ("category", "process group name"),
    "args_source": ("category", "where the args came from: kernel, record_param_comms, annotation (nccl:*), none"),
}

# Columns that analysis adds to kernels (analysis/roofline/placement.py)
ANALYSIS_COLUMNS = {
    "flops": ("float64", "floating-point operations of the kernel"),
    "executed_flops": ("float64", "FlashAttention-3: FLOPs its whole tiles execute, padding included "
                                  "(analysis.work.attention_tiles); NaN for other kernels"),
    "l2_bytes": ("float64", "bytes through L2: every input read once, every output written once"),
    "written_bytes": ("float64", "bytes of the kernel's outputs"),
    "dram_bytes": ("float64", "DRAM bytes read plus written, after what L2 holds (analysis.roofline.memory_traffic)"),
    "work_source": ("string", "analytic (op shapes), architecture (model config), ncu, or unmodeled"),
    "model_op": ("category", "model operation: qkv_proj, attention, rotary.q, input_norm, mlp.down_proj, lm_head, sampler, ..."),
    "layer": ("Int64", "decoder layer index, where it can be told"),
    "intensity_flop_per_byte": ("float64", "flops / dram_bytes"),
    "achieved_tflops": ("float64", "flops / dur"),
    "achieved_gbps": ("float64", "dram_bytes / dur"),
    "achieved_l2_gbps": ("float64", "l2_bytes / dur"),
    "peak_tflops": ("float64", "the kernel's compute roof (tensor or CUDA cores, by dtype)"),
    "roof": ("string", "the roof that bounds the kernel: compute, dram or l2"),
    "roof_pct": ("float64", "attained share of that roof (can exceed 100: then roof_flag says why)"),
    "bound": ("string", "memory (DRAM), l2, compute, latency, or unmodeled"),
    "roof_flag": ("string", "empty, or which assumption failed for a kernel above its roof"),
}


def as_text_category(s: pd.Series) -> pd.Series:
    """A text column as a Categorical of strings with missing values as "" (kept categorical when it is one)."""
    if not isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype("string").fillna("").astype("category")
        # categories of the default text dtype, as everywhere else (and as read back from the Arrow cache)
        s = s.cat.rename_categories(s.cat.categories.astype("str"))
    if "" not in s.cat.categories:   # so that fillna("") and reindexing with "" work on it
        s = s.cat.add_categories("")
    return s.fillna("") if s.hasnans else s


def distinct_values(s: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Each row's code into the distinct values of `s` (missing ones too), and those values as a Series (of s's
    dtype where it is categorical): work done once per distinct value is spread back by the codes."""
    codes, uniques = pd.factorize(s, use_na_sentinel=False)
    return codes, pd.Series(uniques, dtype=s.dtype if isinstance(s.dtype, pd.CategoricalDtype) else None)


def per_distinct(s: pd.Series, fn) -> pd.Series:
    """fn (an elementwise conversion: astype, str methods, map) of each distinct value of `s`, missing ones too,
    spread back over the rows: the same Series as fn(s). A column of a million launches holds a few hundred names,
    and pandas makes a Python string per row when it converts a categorical or object column."""
    codes, distinct = distinct_values(s)
    out = fn(distinct).take(codes)
    out.index = s.index
    return out


def as_str(s: pd.Series) -> pd.Series:
    """s.astype(str), quicker: once per distinct value of a categorical or object column."""
    if isinstance(s.dtype, pd.CategoricalDtype) or s.dtype == object:
        return per_distinct(s, lambda u: u.astype(str))
    return s.astype(str)


def str_values(s: pd.Series) -> np.ndarray:
    """s.astype(str).to_numpy(), quicker: once per distinct value of a categorical or object column."""
    if isinstance(s.dtype, pd.CategoricalDtype) or s.dtype == object:
        codes, uniques = pd.factorize(s, use_na_sentinel=False)
        text = pd.Series(uniques, dtype=s.dtype if isinstance(s.dtype, pd.CategoricalDtype) else None)
        return text.astype(str).to_numpy()[codes]
    return s.astype(str).to_numpy()


def categorical_of(labels, codes) -> pd.Categorical:
    """labels[codes] as a Categorical of strings, built from the codes (labels may repeat): no string per row."""
    categories, inverse = np.unique(np.asarray(labels, dtype=object).astype(str), return_inverse=True)
    return pd.Categorical.from_codes(inverse.reshape(-1).astype(np.int64)[np.asarray(codes)], categories=categories)


def categorical_of_values(values: np.ndarray) -> pd.Categorical:
    """pd.Categorical(values) of an object array of strings, quicker: pandas first makes every string of it an
    Arrow string (a million kernels' model operations: 0.05 s, against 0.008 s hashed as objects here)."""
    codes, uniques = pd.factorize(values)
    if not len(values) or (codes < 0).any():   # (missing values: pandas' own way)
        return pd.Categorical(values)
    return categorical_of(uniques, codes)


def text_column(labels, codes) -> pd.api.extensions.ExtensionArray:
    """labels[codes] as a column of the schema's text dtype, built by Arrow from the codes: no Python string per
    row (a million-row column of a few distinct texts: milliseconds, against tens of them from a NumPy array)."""
    import pyarrow as pa
    dictionary = pa.array([str(label) for label in labels], pa.string())
    indices = pa.array(np.asarray(codes, dtype=np.int32))
    return pd.array(pa.DictionaryArray.from_arrays(indices, dictionary).cast(pa.large_string()), dtype="str")


def distinct_combinations(*columns) -> tuple[list, np.ndarray]:
    """The distinct rows of several columns, as one array of values per column, and each row's index among them:
    work that depends only on those values runs once per distinct row (a few hundred in a million-row table)."""
    factorized = [pd.factorize(c, use_na_sentinel=False) for c in columns]
    sizes = [max(len(uniques), 1) for _, uniques in factorized]
    if np.prod(np.array(sizes, dtype=float)) < 2**62:
        # one int64 key per row, the first column most significant: its sorted distinct values are the distinct
        # rows in np.unique(axis=0)'s lexicographic order, found by a 1-D sort instead of a sort of row records
        key = np.zeros(len(factorized[0][0]) if factorized else 0, dtype=np.int64)
        for (codes, _), size in zip(factorized, sizes):
            key = key * size + codes
        inverse, keys = pd.factorize(key, sort=True)   # np.unique's result, hashed instead of sorted (a few ms)
        rows = np.empty((len(keys), len(sizes)), dtype=np.int64)
        for j in range(len(sizes) - 1, -1, -1):
            keys, rows[:, j] = np.divmod(keys, sizes[j])
    else:
        rows, inverse = np.unique(np.stack([codes for codes, _ in factorized], axis=1), axis=0, return_inverse=True)
    values = [np.asarray(uniques, dtype=object)[rows[:, j]] for j, (_, uniques) in enumerate(factorized)]
    return values, inverse.reshape(-1)


def empty(table: str) -> pd.DataFrame:
    return conform(pd.DataFrame(), table)


def conform_comms(df: pd.DataFrame) -> pd.DataFrame:
    return conform(df, "comms", COMMS)


def conform(df: pd.DataFrame, table: str, spec: dict | None = None) -> pd.DataFrame:
    """Give `df` exactly the table's columns in order, with their dtypes (missing columns filled empty)."""
    spec = spec or TABLES[table]
    out = {}
    n = len(df)
    for col, (dtype, _) in spec.items():
        if dtype == "category":
            out[col] = as_text_category(df[col] if col in df.columns else pd.Series([""] * n, dtype="string"))
            continue
        if col in df.columns:
            out[col] = df[col].astype(dtype) if str(df[col].dtype) != dtype else df[col]
        else:
            out[col] = pd.Series([pd.NA] * n if dtype != "float64" else [float("nan")] * n, dtype=dtype)
        if dtype == "string":
            out[col] = out[col].fillna("")
    return pd.DataFrame(out, index=range(n)) if n else pd.DataFrame({c: pd.Series(dtype=d) for c, (d, _) in spec.items()})


def markdown_table(table: str) -> str:
    rows = ["| column | dtype | meaning |", "|---|---|---|"]
    spec = {"comms": COMMS, "rank": RANK}.get(table) or TABLES[table]
    rows += [f"| `{c}` | {d} | {m} |" for c, (d, m) in spec.items()]
    return "\n".join(rows)
