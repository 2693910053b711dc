"""Per-kernel work, arithmetic intensity, attained rates, distance from the hierarchical roofline and bound class.

Work comes from the launching op (analysis.work.op_work), or from Nsight Compute counters where a measured table is
merged in. An op's work goes to its longest kernel; its other kernels (helpers: memsets, splits) are
`unmodeled`, as is every kernel whose op the model does not cover.

Roofs, as Nsight Compute's hierarchical roofline draws them: compute (tensor cores or CUDA cores), DRAM and L2
bandwidth. A kernel's time is at least each of flops / peak, dram_bytes / DRAM bandwidth and l2_bytes / L2
bandwidth (analysis.roofline.memory_traffic says which bytes reach DRAM); the largest names its roof and `roof_pct` is how
close it came to it. Bound classes:
- latency: reached under LATENCY_ROOF_PCT of its roof and ran under LATENCY_MAX_US: too short to approach any
  roof, its time is launch and ramp-up;
- memory (DRAM), l2 or compute: the roof that bounds it.
A kernel above 100% of its roof is never passed silently: `roof_flag` says which assumption failed.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from analysis.work.architecture_work import architecture_work
from analysis.work.attention_tiles import executed_attention_flops
from analysis.work.layer_map import map_kernels
from analysis.work.moe_tiles import executed_expert_flops
from analysis.roofline.precision import cutlass_tile_n, kernel_precision
from analysis.roofline.memory_traffic import dram_bytes, l2_capacity_bytes, writes_persistent_state
from analysis.steps.step_tokens import step_keys
from analysis.work.op_work import op_work
from tracer.schema import categorical_of_values, distinct_combinations, str_values, text_column

LATENCY_ROOF_PCT = 30.0
LATENCY_MAX_US = 10.0
TENSOR_CLASSES = ("gemm", "attention")


def kernel_work(kernels: pd.DataFrame, architecture: tuple | None = None,
                failures: list | None = None) -> pd.DataFrame:
    """kernels + flops, l2_bytes (every input read once, every output written once), written_bytes, dram_bytes
    (= l2_bytes here; `roofline` takes off what the L2 holds), work_source, model_op, layer.

    Work comes first from the launching op's recorded shapes (`analytic`; once per distinct (op, shapes, dtypes,
    element size), spread back by codes: a million-kernel trace has a few hundred). `architecture`, a (ModelShape,
    step tokens) pair, maps every kernel of a step to its model operation and layer and gives the kernels the ops
    left unmodeled their work from the model's shape (`architecture`): graph replays, fused and custom kernels,
    nsys exports."""
    k = kernels.copy()
    n = len(k)
    flops, dram, written = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    source = np.full(n, UNMODELED, dtype=np.int8)   # codes into WORK_SOURCES
    has_op = (k["op_id"].notna() & (k["op_input_shapes"] != "")).to_numpy(dtype=bool) if n else np.zeros(0, bool)
    if has_op.any():
        pos = np.flatnonzero(has_op)
        # each op's longest kernel (the first of equals; a missing duration counts least): a group-by, not a sort
        dur = np.nan_to_num(k["dur_us"].to_numpy(dtype=float, na_value=np.nan)[pos], nan=-np.inf)
        longest = pd.Series(dur).groupby(k["op_id"].to_numpy(dtype=np.int64, na_value=-1)[pos], sort=False).idxmax()
        main = pos[longest.to_numpy()]
        (ops, shapes, dtypes, names), inverse = distinct_combinations(
            *(k[c].iloc[main] for c in ("op_name", "op_input_shapes", "op_input_dtypes", "name")))
        work = np.full((len(ops), 3), np.nan)
        for j, key in enumerate(zip(ops, shapes, dtypes, names)):
            w = op_work(str(key[0]), str(key[1]), str(key[2]), _elem_bytes_from_kernel_name(str(key[3])))
            if w is not None:
                work[j] = w
        per_main = work[inverse]
        modeled = ~np.isnan(per_main[:, 0])
        flops[main[modeled]], dram[main[modeled]] = per_main[modeled, 0], per_main[modeled, 1]
        written[main[modeled]] = per_main[modeled, 2]
        source[main[modeled]] = ANALYTIC
    ops, layer = np.full(n, "", dtype=object), np.full(n, -1, dtype=np.int64)
    executed = np.full(n, np.nan)
    names, classes = str_values(k["name"]), str_values(k["kernel_class"])   # once, not once per use
    if architecture is not None and n:
        shape, steps = architecture
        keys = step_keys(k)
        ops, layer = map_kernels(k, keys, shape, partial="ncu_flops" in k, failures=failures)
        unmodeled = source == UNMODELED
        a = architecture_work(k, ops, layer, keys, steps, shape, unmodeled)
        filled = unmodeled & ~np.isnan(a[:, 0])
        flops[filled], dram[filled], written[filled] = a[filled, 0], a[filled, 1], a[filled, 2]
        source[filled] = ARCHITECTURE
        # tile padding of FA3, beside the useful FLOPs
        executed = executed_attention_flops(names, classes, keys, steps, shape.heads, shape.kv_heads, shape.head_dim)
        # grouped expert GEMMs execute whole row blocks per expert
        moe_executed, mma_n = executed_expert_flops(str_values(k["grid"]) if "grid" in k else None, ops,
                                                    keys, steps, shape, layer)
        executed = np.where(np.isnan(executed), moe_executed, executed)
    else:
        mma_n = np.full(n, np.nan)
    model_op = categorical_of_values(ops)
    precision = kernel_precision(k["name"], k["kernel_class"], model_op,
                                 architecture[0] if architecture is not None and n else None)
    if "ncu_tensor_inst" in k:   # the tile N that turns ncu's tensor instruction counts into FLOPs
        tile_n = cutlass_tile_n(names, classes)
        k["mma_n"] = np.where(np.isnan(mma_n), tile_n, mma_n)
    k["flops"], k["l2_bytes"], k["written_bytes"], k["dram_bytes"] = flops, dram, written, dram.copy()
    k["precision"] = precision
    k["work_source"] = text_column(WORK_SOURCES, source)
    k["executed_flops"] = executed
    k["model_op"] = model_op
    k["layer"] = pd.array(np.where(ops != "", layer, -1), dtype="Int64")
    k.loc[(ops == "") | (layer < 0), "layer"] = pd.NA
    return k


def _elem_bytes_from_kernel_name(name: str) -> int | None:
    m = re.search(r"OpaqueType<(\d+)u?>", name)  # ATen's copy/cat kernels carry only the element size
    if m:
        return int(m.group(1))
    if "BFloat16" in name or "Half" in name or "__half" in name or "bf16" in name:
        return 2
    if "<float" in name or ", float" in name:
        return 4
    return None


def _dtype_of(dtypes_json: str) -> str:
    if "BFloat16" in dtypes_json:
        return "bf16"
    if "Half" in dtypes_json:
        return "fp16"
    return "fp32"


def peak_flops(kernels: pd.DataFrame, peaks: dict, default_dtype: str = "fp32") -> np.ndarray:
    """The compute roof of each kernel: tensor cores for bf16/fp16 GEMM and attention, CUDA cores otherwise. A kernel
    whose op recorded no dtypes (graph replays, nsys) takes the model's dtype."""
    if kernels.empty:
        return np.zeros(0)
    (classes, dtypes), inverse = distinct_combinations(kernels["kernel_class"], kernels["op_input_dtypes"].fillna(""))
    kinds = [_dtype_of(str(d)) if str(d) else default_dtype for d in dtypes]
    roof = np.array([peaks[kind] if (c in TENSOR_CLASSES and kind in ("bf16", "fp16")) else peaks["fp32"]
                     for c, kind in zip(classes, kinds)], dtype=float)[inverse]
    if "precision" in kernels:   # quantized math: its own tensor path's peak (NaN where the device has none)
        precision = str_values(kernels["precision"])
        for p in ("fp8", "int8"):
            sel = precision == p
            if sel.any():
                roof[sel] = peaks.get(p) or np.nan
    return roof * 1e12


def roofline(kernels: pd.DataFrame, peaks: dict | None, default_dtype: str = "fp32",
             cold_l2: bool = False) -> pd.DataFrame:
    """kernels with work -> dram_bytes through the L2 model (`cold_l2`: the L2 was flushed before every kernel,
    as Nsight Compute does by default) + intensity_flop_per_byte (over DRAM bytes), achieved_tflops,
    achieved_gbps (DRAM), achieved_l2_gbps, peak_tflops, roof, roof_pct, bound, roof_flag."""
    k = kernels.copy()
    l2_cap = l2_capacity_bytes(peaks)
    if l2_cap and "written_bytes" in k:
        k["dram_bytes"] = dram_bytes(k, k["l2_bytes"].to_numpy(dtype=float), k["written_bytes"].to_numpy(dtype=float),
                                     l2_cap, cold_l2, writes_persistent_state(k))
    dur_s = k["dur_us"].to_numpy() * 1e-6
    flops, bytes_ = k["flops"].to_numpy(dtype=float), k["dram_bytes"].to_numpy(dtype=float)
    l2 = k["l2_bytes"].to_numpy(dtype=float) if "l2_bytes" in k else bytes_
    with np.errstate(divide="ignore", invalid="ignore"):
        k["intensity_flop_per_byte"] = np.where(bytes_ > 0, flops / bytes_, np.nan)
        k["achieved_tflops"] = np.where(dur_s > 0, flops / dur_s / 1e12, np.nan)
        k["achieved_gbps"] = np.where(dur_s > 0, bytes_ / dur_s / 1e9, np.nan)
        k["achieved_l2_gbps"] = np.where(dur_s > 0, l2 / dur_s / 1e9, np.nan)
    # each column built whole as an array and set once: row-masked assignments into Arrow string columns of a
    # million rows cost a second
    modeled = (k["work_source"] != "unmodeled").to_numpy(dtype=bool)
    if peaks is None or k.empty:
        k["peak_tflops"] = np.nan
        k["roof"] = ""
        k["roof_pct"] = np.nan
        k["roof_flag"] = ""
        k["bound"] = np.where(modeled, "unknown-device", "unmodeled")
        return k
    pf = peak_flops(k, peaks, default_dtype)
    # each roof's share of the kernel's time: the time its work needs at that roof's rate over the time it took
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = np.stack([flops / dur_s / pf, bytes_ / dur_s / (peaks["hbm_gbps"] * 1e9),
                           l2 / dur_s / (peaks["l2_gbps"] * 1e9) if peaks.get("l2_gbps") else np.zeros(len(k))], 1)
    shares = np.nan_to_num(shares, nan=0.0, posinf=np.inf)
    which = np.argmax(shares, axis=1)
    pct = 100 * shares[np.arange(len(k)), which]
    latency = (pct < LATENCY_ROOF_PCT) & (k["dur_us"].to_numpy() < LATENCY_MAX_US)
    # codes: 0..2 the roof (ROOFS' order), then the texts that follow each column's per-roof ones
    after = len(ROOFS)
    k["peak_tflops"] = pf / 1e12
    k["roof"] = text_column(ROOFS + ("",), np.where(modeled, which, after))
    k["roof_pct"] = np.where(modeled, pct, np.nan)
    k["roof_flag"] = text_column([ROOF_FLAGS[r] for r in ROOFS] + [""], np.where(modeled & (pct > 100), which, after))
    k["bound"] = text_column([BOUND_OF_ROOF[r] for r in ROOFS] + ["latency", "unmodeled"],
                             np.where(modeled, np.where(latency, after, which), after + 1))
    return k


ROOFS = ("compute", "dram", "l2")
WORK_SOURCES = ("unmodeled", "analytic", "architecture")
UNMODELED, ANALYTIC, ARCHITECTURE = range(3)
BOUND_OF_ROOF = {"compute": "compute", "dram": "memory", "l2": "l2"}
ROOF_FLAGS = {
    "compute": "above the compute roof: FLOPs over-counted for this kernel, or the peak is low for this card",
    "dram": "above the DRAM roof: fewer bytes reached DRAM than modeled (data held in L2 beyond the model)",
    "l2": "above the L2 roof: the kernel moved fewer bytes than modeled, or the L2 figure is low for this card",
}


def merge_ncu(kernels: pd.DataFrame, ncu: pd.DataFrame, phase: str, step: int | None) -> pd.DataFrame:
    """Align Nsight Compute's kernels (the first kernels of one phase range, in launch order) with the trace's
    kernels of that phase (decode: the given step) by order and name; return one row per matched kernel with
    analytic and measured work side by side."""
    sel = kernels[kernels["phase"] == phase]
    if step is not None:
        sel = sel[sel["step"] == step]
    sel = sel.sort_values("launch_start_us", kind="stable")
    rows = []
    j = 0
    ncu_names = ncu["name"].map(_base).tolist()
    for idx, name in zip(sel.index, sel["name"].map(_base)):
        # resynchronise over a few kernels when one side has an extra kernel
        for look in range(j, min(j + 4, len(ncu))):
            if ncu_names[look] == name:
                m = ncu.iloc[look]
                rows.append({"trace_index": idx, "ncu_id": m["ncu_id"], "ncu_dur_us": m["dur_us"],
                             "ncu_flops": m["flops"], "ncu_tensor_flops": m["tensor_flops"],
                             "ncu_dram_bytes": m["dram_bytes"]})
                j = look + 1
                break
        if j >= len(ncu):
            break
    matched = pd.DataFrame(rows)
    if matched.empty:
        return matched
    cols = ["short_name", "kernel_class", "dur_us", "flops", "dram_bytes", "work_source", "op_name"]
    return matched.join(kernels.loc[matched["trace_index"], cols].reset_index(drop=True))


def _base(name) -> str:
    """Kernel names differ in spelling between CUPTI and ncu (spaces, `(anonymous namespace)`): compare the
    identifier before the template and argument lists."""
    from tracer.parse.classify import short_kernel_name
    s = str(name).replace("<unnamed>", "(anonymous namespace)")
    return short_kernel_name(s).replace(" ", "")


def ncu_comparison_by_class(matched: pd.DataFrame) -> pd.DataFrame:
    """Per kernel class: analytic against measured FLOPs and DRAM bytes, over kernels both model and ncu saw."""
    if matched.empty:
        return pd.DataFrame()
    m = matched[matched["work_source"] == "analytic"]
    g = m.groupby("kernel_class").agg(kernels=("flops", "size"), analytic_flops=("flops", "sum"),
                                      ncu_flops=("ncu_flops", "sum"), analytic_dram_bytes=("dram_bytes", "sum"),
                                      ncu_dram_bytes=("ncu_dram_bytes", "sum"))
    with np.errstate(divide="ignore", invalid="ignore"):
        g["flops_ratio"] = g["analytic_flops"] / g["ncu_flops"]
        g["dram_ratio"] = g["analytic_dram_bytes"] / g["ncu_dram_bytes"]
    return g.reset_index()
