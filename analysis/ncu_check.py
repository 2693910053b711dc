"""Analytic work against Nsight Compute's counters, per kernel class, for a report of one step whose kernels are
the table's rows (tracer.parse.ncu.tables_from_ncu).

ncu counts what the GPU executed: tensor-core FLOPs include the padding of partial tiles (a decode query of one
token padded to a tile of rows, the masked half of causal tiles) that the analytic figure, the model's useful work,
leaves out. Both are shown, and DRAM bytes are modeled with the L2 flushed before each kernel, as ncu does by
default (analysis.memory_traffic); `executed_over_useful` says how much the kernels pad, and for FlashAttention-3
`analytic_executed_flops` models that padding from its tiles (analysis.attention_tiles), `executed_ratio` against
ncu.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def ncu_against_analytic(kernels: pd.DataFrame) -> pd.DataFrame:
    """Per class: kernels, analytic and measured FLOPs and DRAM bytes of the modeled kernels, and their ratios."""
    if "ncu_flops" not in kernels or kernels.empty:
        return pd.DataFrame()
    m = kernels[kernels["work_source"] != "unmodeled"]
    g = m.groupby("kernel_class", observed=True).agg(
        kernels=("flops", "size"), analytic_flops=("flops", "sum"), ncu_flops=("ncu_flops", "sum"),
        analytic_dram_bytes=("dram_bytes", "sum"), ncu_dram_bytes=("ncu_dram_bytes", "sum"),
        analytic_l2_bytes=("l2_bytes", "sum"), ncu_l2_bytes=("ncu_l2_bytes", "sum"),
        analytic_executed_flops=("executed_flops", lambda x: x.sum(min_count=1)))
    with np.errstate(divide="ignore", invalid="ignore"):
        g["flops_ratio"] = g["analytic_flops"] / g["ncu_flops"]
        g["executed_over_useful"] = g["ncu_flops"] / g["analytic_flops"]
        g["executed_ratio"] = g["analytic_executed_flops"] / g["ncu_flops"]   # FA3's tiles (analysis.attention_tiles)
        g["dram_ratio"] = g["analytic_dram_bytes"] / g["ncu_dram_bytes"]
        g["l2_ratio"] = g["analytic_l2_bytes"] / g["ncu_l2_bytes"]
    unmodeled = kernels[kernels["work_source"] == "unmodeled"]
    g["unmodeled_kernels"] = unmodeled.groupby("kernel_class", observed=True).size().reindex(g.index).fillna(0)
    return g.reset_index()
