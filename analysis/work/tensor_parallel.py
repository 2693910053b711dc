"""Tensor parallelism: a rank's work is its shard.

Megatron-style, as vLLM shards a transformer over `tp` ranks: the QKV and MLP up (gate-up) projections are
column-parallel (each rank holds heads/tp query heads and kv_heads/tp KV heads, or one replicated KV head when
there are fewer KV heads than ranks, and intermediate/tp of the MLP), the output and down projections row-parallel
(K split the same way), the LM head vocab-parallel (vocab/tp logits a rank); the hidden size and head size stay
whole. Each layer ends its attention and its MLP with an all-reduce of the T x hidden activations, and the
vocab-parallel embedding with one more: 2 x layers + 1 all-reduces a forward pass of T tokens. The logits are
gathered (vLLM) before sampling, so the sampler sees the whole vocabulary (`whole_vocab`).

The degree: `--tp N` (tp= in the Python API), else the sidecar's vLLM tensor_parallel_size, else the trace's
distributedInfo.world_size (with a notice: a world of data-parallel or pipeline ranks is not tensor parallelism,
and --tp 1 says so).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import pandas as pd

from analysis.work.architecture import ModelShape


@dataclass(frozen=True)
class ShardShape(ModelShape):
    """A ModelShape cut to one rank's shard, remembering the degree and the whole vocabulary (for the sampler)."""
    tp: int = 1
    whole_vocab: int = 0


def shard_shape(shape: ModelShape, tp: int) -> ModelShape:
    """One rank's shape under tensor parallelism of degree `tp` (1: the shape itself)."""
    if tp is None or tp <= 1 or shape is None:
        return shape
    base = {f.name: getattr(shape, f.name) for f in fields(ModelShape)}
    whole = ShardShape(**base, tp=tp, whole_vocab=shape.vocab)
    return replace(whole, heads=math.ceil(shape.heads / tp), kv_heads=max(1, shape.kv_heads // tp),
                   intermediate=math.ceil(shape.intermediate / tp), vocab=math.ceil(shape.vocab / tp),
                   # MoE under tensor parallelism (no expert parallelism): every expert's MLP is split as a dense one
                   expert_intermediate=math.ceil(shape.expert_intermediate / tp),
                   shared_intermediate=math.ceil(shape.shared_intermediate / tp))


def tp_degree(option: int | None, sidecar: dict | None, meta: dict | None) -> tuple[int, str | None]:
    """(degree, where it came from), or (1, None) when nothing names one."""
    if option:
        return int(option), "option"
    side_tp = ((sidecar or {}).get("vllm_options") or {}).get("tensor_parallel_size")
    if side_tp:
        return int(side_tp), "sidecar"
    dist = (meta or {}).get("distributed") or {}
    world = dist.get("world_size") if isinstance(dist, dict) else None
    if isinstance(world, int) and world > 1:
        return world, "world_size"
    return 1, None


def allreduce_bytes_per_layer(shape: ModelShape, tokens: float) -> float:
    """Bytes all-reduced by one layer of a forward pass of `tokens` tokens: two of T x hidden activations."""
    return 2 * tokens * shape.hidden * shape.elem_bytes


def predicted_allreduce(shape: ModelShape, steps: pd.DataFrame, tp: int) -> dict:
    """The model's all-reduces over the steps a rank ran (`steps`: analysis.steps.step_tokens, one row a step), for
    summary.json: calls and bytes in all, and per layer of the mean step."""
    if tp <= 1 or steps is None or steps.empty:
        return {}
    tokens = steps["tokens"].astype(float)
    tokens = tokens[tokens > 0]   # an empty step (vLLM's last, with nothing scheduled) runs no forward pass
    if tokens.empty:
        return {}
    per_step = (2 * shape.layers + 1) * tokens * shape.hidden * shape.elem_bytes
    return {"tp": tp, "collective": "all_reduce", "calls": int((2 * shape.layers + 1) * len(tokens)),
            "bytes": float(per_step.sum()),
            "bytes_per_layer_mean_step": float(allreduce_bytes_per_layer(shape, tokens.mean())),
            "convention": "2 all-reduces a layer (after attention, after the MLP) and 1 after the vocab-parallel "
                          "embedding, each of T x hidden x element bytes"}


def gemm_flops(shape: ModelShape, tokens: float, seqs: float) -> float:
    """FLOPs of one forward pass's projections and LM head (one row a sequence): what a rank's GEMMs compute
    with `shape` its shard. (vLLM pads the vocabulary to a multiple of 64 before splitting it: its LM head
    computes up to 63 x hidden more per sequence than vocab/tp.)"""
    from analysis.work.architecture_work import gemm_dims
    from analysis.work.layer_map import gemm_layouts
    total = 0.0
    for op in gemm_layouts(shape)[0]:
        m, n, k, _ = gemm_dims(op, shape, tokens, seqs)
        total += 2 * m * n * k * shape.layers
    m, n, k, _ = gemm_dims("lm_head", shape, tokens, seqs)
    return total + 2 * m * n * k
