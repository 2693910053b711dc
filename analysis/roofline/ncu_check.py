"""Analytic work against Nsight Compute's counters, per kernel class, for a report of one step whose kernels are
the table's rows (tracer.parse.ncu.tables_from_ncu).

ncu counts what the GPU executed: tensor-core FLOPs include the padding of partial tiles (a decode query of one
token padded to a tile of rows, the masked half of causal tiles) that the analytic figure, the model's useful work,
leaves out. Both are shown, and DRAM bytes are modeled with the L2 flushed before each kernel, as ncu does by
default (analysis.roofline.memory_traffic); `executed_over_useful` says how much the kernels pad, and for FlashAttention-3
`analytic_executed_flops` models that padding from its tiles (analysis.work.attention_tiles), `executed_ratio` against
ncu.

Nsight Compute on Hopper has no FP8 or INT8 tensor-path FLOP counter (only bf16, fp16 and tf32 ones), so an
8-bit kernel's FLOPs are read from its tensor-pipe instructions: a warp's share of one wgmma m64nNk32 is
2 x 64 x N x 32 / 4 FLOPs, N being the kernel's tile N (CUTLASS names it; vLLM's fused_moe takes its BLOCK_N, found
from its grid). Checked on the H200: 16,384 and 131,072 FLOPs an instruction for CUTLASS FP8 tiles of N 16 and 128,
exactly the GEMMs' 2 M N K.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def ncu_against_analytic(kernels: pd.DataFrame) -> pd.DataFrame:
    """Per class: kernels, analytic and measured FLOPs and DRAM bytes of the modeled kernels, and their ratios."""
    if "ncu_flops" not in kernels or kernels.empty:
        return pd.DataFrame()
    m = kernels[kernels["work_source"] != "unmodeled"].copy()
    m["ncu_flops"] = m["ncu_flops"] + eight_bit_tensor_flops(m)
    m["executed_or_useful"] = m["executed_flops"].fillna(m["flops"])
    g = m.groupby("kernel_class", observed=True).agg(
        kernels=("flops", "size"), analytic_flops=("flops", "sum"), ncu_flops=("ncu_flops", "sum"),
        analytic_dram_bytes=("dram_bytes", "sum"), ncu_dram_bytes=("ncu_dram_bytes", "sum"),
        analytic_l2_bytes=("l2_bytes", "sum"), ncu_l2_bytes=("ncu_l2_bytes", "sum"),
        analytic_executed_flops=("executed_or_useful", "sum"),
        padded_kernels=("executed_flops", "count"))
    with np.errstate(divide="ignore", invalid="ignore"):
        g["flops_ratio"] = g["analytic_flops"] / g["ncu_flops"]
        g["executed_over_useful"] = g["ncu_flops"] / g["analytic_flops"]
        # FA3's tiles (analysis.work.attention_tiles) and fused_moe's row blocks (analysis.work.moe_tiles), useful elsewhere
        g["executed_ratio"] = np.where(g["padded_kernels"] > 0, g["analytic_executed_flops"] / g["ncu_flops"], np.nan)
        g["dram_ratio"] = g["analytic_dram_bytes"] / g["ncu_dram_bytes"]
        g["l2_ratio"] = g["analytic_l2_bytes"] / g["ncu_l2_bytes"]
    g.loc[g["padded_kernels"] == 0, "analytic_executed_flops"] = np.nan
    g = g.drop(columns="padded_kernels")
    unmodeled = kernels[kernels["work_source"] == "unmodeled"]
    g["unmodeled_kernels"] = unmodeled.groupby("kernel_class", observed=True).size().reindex(g.index).fillna(0)
    return g.reset_index()


def eight_bit_tensor_flops(kernels: pd.DataFrame) -> np.ndarray:
    """FLOPs of FP8/INT8 tensor-core kernels from ncu's tensor-pipe instructions (no FLOP counter exists for
    them), where the kernel's tile N is known; 0 elsewhere."""
    if "ncu_tensor_inst" not in kernels or "mma_n" not in kernels or "precision" not in kernels:
        return np.zeros(len(kernels))
    eight_bit = kernels["precision"].astype(str).isin(["fp8", "int8"]).to_numpy()
    no_counter = kernels["ncu_tensor_flops"].fillna(0).to_numpy() == 0
    per_inst = 2 * 64 * kernels["mma_n"].to_numpy(dtype=float) * 32 / 4
    flops = kernels["ncu_tensor_inst"].fillna(0).to_numpy(dtype=float) * per_inst
    return np.where(eight_bit & no_counter & ~np.isnan(flops), flops, 0.0)
