"""What FlashAttention-3 (Hopper) really executes: whole tiles, so a decode query of one token is padded to a tile
of rows and a causal prompt computes the masked part of its diagonal tiles.

The kernel's name carries its tile, `CollectiveMainloopFwdSm90<stages, cluster, cute::tuple<C<M>, C<N>, C<d>>,
d_v, element, accum, arch::Sm90, Is_causal, ..., PackGQA, Split, V_colmajor>`. A CTA computes M query rows against
the key blocks of N its rows can see; with PackGQA the M rows are the g = heads / kv_heads query heads of one KV
head, token-major (row r is token r // g). Causal masks are bottom-right aligned: token t of a q-token query
against c keys sees keys below c - q + t + 1. Split-KV divides key blocks among CTAs and adds none.

Checked against ncu's tensor-pipe FLOPs on the H200 (vLLM 0.26 CUDA graphs, bf16, one step): the executed FLOPs
below are within 2% for gpt2 and llama-1b, decode_b16 (64 x 192 tiles, 96x and 24x the useful FLOPs) and
prefill_b1_s512 (causal 192 x 128 tiles, 1.71x and 1.38x).
"""
from __future__ import annotations

import math
import re

import numpy as np

_TILE = re.compile(r"CollectiveMainloopFwdSm90<\d+, cute::tuple<cute::C<\d+>, cute::C<\d+>, cute::C<\d+>>, "
                   r"cute::tuple<cute::C<(\d+)>, cute::C<(\d+)>, cute::C<(\d+)>>, (?:\d+, )?[\w:]+, \w+, "
                   r"arch::Sm90, ((?:[01], )+[01])")


def fa3_tile(name: str) -> tuple[int, int, bool, bool] | None:
    """(block_m, block_n, causal, pack_gqa) of an FA3 forward kernel's name, None for any other kernel."""
    m = _TILE.search(name)
    if m is None:
        return None
    flags = [int(f) for f in m.group(4).split(", ")]
    # Is_causal leads the flags; PackGQA, Split and V_colmajor close them in every FA3 release seen
    return int(m.group(1)), int(m.group(2)), bool(flags[0]), bool(flags[-3]) if len(flags) >= 3 else False


def executed_pairs(q: float, ctx: float, block_m: int, block_n: int, causal: bool, rows_per_token: int) -> float:
    """Query-key pairs one CTA row set computes for a sequence of q new tokens over ctx keys (one head, or one KV
    head's packed group of `rows_per_token` query heads)."""
    q, ctx = int(round(q)), int(round(ctx))
    rows = q * rows_per_token
    total = 0
    for b in range(math.ceil(rows / block_m)):
        last_token = min(rows, (b + 1) * block_m) - 1
        seen = min(ctx, ctx - q + last_token // rows_per_token + 1) if causal else ctx
        total += block_m * math.ceil(seen / block_n) * block_n
    return float(total)


def _fa3_launch(name: str, heads: int, kv_heads: int) -> tuple[int, int, bool, int, int] | None:
    """(BLOCK_M, BLOCK_N, causal, query heads packed per tile, CTAs per query tile) of an FA3 kernel; None when
    `name` is not FA3's. With GQA packing, a tile holds the g query heads of one KV head."""
    tile = fa3_tile(name)
    if tile is None:
        return None
    block_m, block_n, causal, pack = tile
    g = heads // kv_heads if pack and kv_heads else 1
    return block_m, block_n, causal, g, (kv_heads if g > 1 else heads)


def fa3_executed_flops(name: str, seq_shapes, heads: int, kv_heads: int, head_dim: int) -> float | None:
    """Tensor-core FLOPs an FA3 forward kernel executes for sequences of (new tokens, keys) shapes: 2 GEMMs (QK^T,
    PV) of 2 FLOPs per multiply-add; None when the kernel is not FA3's."""
    launch = _fa3_launch(name, heads, kv_heads)
    if launch is None or not seq_shapes:
        return None
    block_m, block_n, causal, g, ctas = launch
    pairs = sum(executed_pairs(q, c, block_m, block_n, causal, g) for q, c in seq_shapes)
    return 4.0 * head_dim * pairs * ctas


def executed_attention_flops(names, classes, keys, steps, heads: int, kv_heads: int, head_dim: int):
    """Per kernel: the FLOPs FA3 executes (NaN for other kernels or steps of unknown composition), from each
    step's (new tokens, keys) per sequence (analysis.steps.step_tokens `seq_shapes`)."""
    out = np.full(len(names), np.nan)
    shapes = steps["seq_shapes"].to_dict() if steps is not None and "seq_shapes" in steps else {}
    memo: dict = {}
    for i in np.flatnonzero((np.asarray(classes) == "attention") & ~np.isnan(keys)):
        key = (names[i], int(keys[i]))
        if key not in memo:
            seqs = shapes.get(key[1])
            memo[key] = fa3_executed_flops(key[0], seqs, heads, kv_heads, head_dim) if seqs else None
        if memo[key] is not None:
            out[i] = memo[key]
    return out


HOPPER_SMS = 132   # FA3 runs on Hopper; H100 SXM and H200 have 132 SMs (the PCIe H100's 114 changes no case seen)


def fa3_splits_kv(name: str, seq_shapes, heads: int, kv_heads: int, sms: int = HOPPER_SMS) -> bool | None:
    """Whether FA3 splits the keys among CTAs (so its combine kernel has partial outputs to merge): only when the
    query tiles would fill under 80% of the SMs (its num_splits_heuristic). None when `name` is not FA3's.
    On the H200: the combine read 8.5 MB in llama-1b's prefill (96 tiles) and 17 KB in a decode_b16 step
    (128 tiles) and in Mixtral's prefill (128 tiles)."""
    launch = _fa3_launch(name, heads, kv_heads)
    if launch is None or not seq_shapes:
        return None
    block_m, _, _, g, ctas = launch
    tiles = sum(math.ceil(int(round(q)) * g / block_m) for q, _ in seq_shapes) * ctas
    return tiles < 0.8 * sms
