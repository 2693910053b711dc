"""What vLLM's grouped expert GEMMs (the Triton fused_moe kernel) really execute: whole blocks of BLOCK_M rows per
expert. moe_align_block_size pads each expert's routed rows up to a multiple of BLOCK_M, and every block computes
its BLOCK_M x BLOCK_N tiles whole, so a decode step of 16 tokens routed 2 of 8 experts executes about 8 x 64 rows
for its 32 useful ones.

The kernel's launch grid is cdiv(EM, BLOCK_M) x cdiv(N, BLOCK_N), EM being the padded row buffer vLLM sizes from the
routing: T*k + E*(BLOCK_M - 1), capped at T*k*BLOCK_M when there are fewer tokens than BLOCK_M. The grid therefore
tells the block sizes; the rows actually padded depend on how many tokens each expert got: the recorded routing
where the run kept it (`tracer record --moe-routing`), else the expected count under uniform routing (each token
picks an expert with probability k/E, so an expert's rows are Binomial(T, k/E)).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.work.architecture import ModelShape
from analysis.work.expert_routing import layer_expert_tokens

_BLOCKS = (16, 32, 64, 128, 256)
# When several BLOCK_M fit a grid (a decode step's E + 1 row blocks fit any of them), vLLM's usual defaults first
_PREFERRED_M = (64, 16, 128, 32, 256)


def padded_buffer_rows(tokens: int, top_k: int, experts: int, block_m: int) -> int:
    """EM: the rows vLLM's fused_moe launches blocks over."""
    rows = tokens * top_k
    em = rows + experts * (block_m - 1)
    if rows < experts:
        em = min(rows * block_m, em)
    if tokens < block_m:
        em = min(em, tokens * top_k * block_m)
    return em


def block_sizes(grid_x: int, tokens: int, top_k: int, experts: int, n: int) -> tuple[int, int] | None:
    """(BLOCK_M, BLOCK_N) that give this launch grid (_PREFERRED_M decides a tie); None when none does."""
    for bm in _PREFERRED_M:
        m_blocks = math.ceil(padded_buffer_rows(tokens, top_k, experts, bm) / bm)
        if grid_x % m_blocks:
            continue
        n_blocks = grid_x // m_blocks
        for bn in _BLOCKS:
            if math.ceil(n / bn) == n_blocks:
                return bm, bn
    return None


def expected_padded_rows(tokens: int, top_k: int, experts: int, block_m: int) -> float:
    """E[sum over experts of ceil(n_e / BLOCK_M) * BLOCK_M] with n_e ~ Binomial(T, k/E)."""
    p = min(top_k / experts, 1.0)
    if p >= 1.0:
        return experts * math.ceil(tokens / block_m) * block_m
    j = np.arange(tokens + 1)
    log_pmf = (math.lgamma(tokens + 1) - np.array([math.lgamma(x + 1) + math.lgamma(tokens - x + 1) for x in j])
               + j * math.log(p) + (tokens - j) * math.log1p(-p))
    return float(experts * block_m * np.sum(np.exp(log_pmf) * np.ceil(j / block_m)))


def padded_rows(routed: np.ndarray, block_m: int) -> float:
    """Rows fused_moe executes for a recorded routing: each expert's tokens rounded up to whole row blocks."""
    return float(np.sum(np.ceil(np.asarray(routed, dtype=float) / block_m)) * block_m)


def executed_expert_flops(grids: np.ndarray | None, ops: np.ndarray, keys: np.ndarray, steps: pd.DataFrame,
                          shape: ModelShape, layers: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Executed FLOPs of each grouped expert GEMM whose grid tells its block sizes, and its BLOCK_N (the N of its
    tensor-core tile); NaN elsewhere. Rows per expert come from the recorded routing where the step has it
    (analysis.expert_routing), else their expectation under uniform routing."""
    out, block_n = np.full(len(ops), np.nan), np.full(len(ops), np.nan)
    if not shape.moe or grids is None:
        return out, block_n
    rows = {key: row for key, row in steps.iterrows()}
    for i in np.flatnonzero((ops == "moe.experts.gate_up") | (ops == "moe.experts.down")):
        step = rows.get(int(keys[i])) if keys[i] == keys[i] else None
        try:
            grid_x = int(str(grids[i]).split(",")[0].strip("( "))
        except ValueError:
            continue
        if step is None:
            continue
        t = int(round(step["tokens"]))
        n, k = (2 * shape.expert_intermediate, shape.hidden) if ops[i] == "moe.experts.gate_up" \
            else (shape.hidden, shape.expert_intermediate)
        sizes = block_sizes(grid_x, t, shape.experts_per_token, shape.experts, n)
        if sizes is None:
            continue
        routed = layer_expert_tokens(step, int(layers[i])) if layers is not None else None
        padded = (padded_rows(routed, sizes[0]) if routed is not None
                  else expected_padded_rows(t, shape.experts_per_token, shape.experts, sizes[0]))
        out[i] = 2.0 * padded * math.ceil(n / sizes[1]) * sizes[1] * k
        block_n[i] = sizes[1]
    return out, block_n
