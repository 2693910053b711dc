"""Which model operation (qkv_proj, attention, mlp.down_proj, lm_head, sampler, ...) and which layer each kernel of a
step belongs to, from the kernel sequence alone: no launching op or shapes needed, so it holds for kernels replayed
from CUDA graphs and for Nsight Systems exports.

A transformer step runs the same operations layer after layer and its projections are GEMMs, so the step's GEMM
kernels, in order, are L layers of the same projections followed by the LM head. Whichever projection layout the
backend uses (vLLM merges q/k/v and gate/up; HF keeps them apart) is the one whose count matches the step's GEMMs.
The kernels between two GEMMs belong to the operation between those projections: after qkv the attention block
(rotary, KV-cache write, attention; HF's rotary is plain ATen kernels, told apart in `_mark_rotate_half`), after o_proj the residual add and post-attention norm, after the up projection
the activation, after the down projection the next layer's residual add and input norm (after the last layer the
final norm), after the LM head the sampler. A step whose GEMM count fits no layout is left unmapped.

A Mixture-of-Experts layer replaces the MLP's projections with the router GEMM and the two grouped expert GEMMs
(vLLM's fused_moe: gate_up, then down), with routing (top-k gating, block alignment) after the router, the experts'
activation between them and the weighted sum of the top-k outputs after them (`moe.*`); Qwen2-MoE's shared expert
adds its own gate_up, down and sigmoid-gate GEMMs, and the layout whose expert GEMMs fall on the grouped kernels is
the one taken. A standalone quantization kernel is named after the projection whose input it quantizes
(`o_proj.quant`, `moe.experts.down.quant`).
"""
from __future__ import annotations

import functools
import re

import numpy as np
import pandas as pd

from analysis.work.architecture import ModelShape
from tracer.schema import str_values

# cuBLAS's split-K reduction finishes the GEMM before it; it is no projection of its own
GEMM_HELPER = re.compile(r"splitK.*reduce|splitKreduce|reduce_kernel.*cublas", re.I)


@functools.lru_cache(maxsize=4096)
def _gemm_helper(name: str) -> bool:
    # a step's kernels repeat the names of every other step's: each name is searched once
    return bool(GEMM_HELPER.search(name))


ROUTED = ("moe.router", "moe.experts.gate_up", "moe.experts.down")
# the grouped GEMMs of routed experts (vLLM's Triton fused_moe, CUTLASS and Marlin MoE kernels)
GROUPED_EXPERTS = re.compile(r"fused_moe|cutlass_moe|moe_wna16|marlin_moe|grouped_gemm|MoeGemm", re.I)


def gemm_layouts(shape: ModelShape) -> list[tuple[str, ...]]:
    attn = [("qkv_proj",), ("q_proj", "k_proj", "v_proj")]
    if shape.moe:
        mlp = [ROUTED]
        if shape.shared_intermediate:
            shared = ("moe.shared.gate_up", "moe.shared.down") + (("moe.shared.gate",) if shape.shared_gate else ())
            mlp = [shared + ROUTED, ROUTED + shared, ROUTED[:1] + shared + ROUTED[1:]]
    elif shape.gated_mlp:
        mlp = [("mlp.gate_up_proj", "mlp.down_proj"), ("mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")]
    else:
        mlp = [("mlp.up_proj", "mlp.down_proj")]
    return [a + ("o_proj",) + m for a in attn for m in mlp]


_AFTER_MOE_GEMM = {"moe.router": "moe.routing", "moe.experts.gate_up": "moe.experts.act",
                   "moe.shared.gate_up": "moe.shared.act", "moe.shared.gate": "moe.shared.combine"}


def _segment_op(after: str, layer: int, layers: int, last_in_layer: bool = True) -> tuple[str, int]:
    """The operation of the kernels that run after GEMM `after` of `layer`."""
    if after == "lm_head":
        return "sampler", -1
    if after in _AFTER_MOE_GEMM:
        return _AFTER_MOE_GEMM[after], layer
    if after in ("moe.experts.down", "moe.shared.down") and not last_in_layer:
        return ("moe.sum" if after == "moe.experts.down" else "moe.shared.combine"), layer
    if after in ("qkv_proj", "q_proj", "k_proj", "v_proj"):
        return "attention", layer
    if after == "o_proj":
        return "post_attention_norm", layer
    if after in ("mlp.up_proj", "mlp.gate_up_proj", "mlp.gate_proj"):
        return "mlp.act", layer
    if layer + 1 < layers:   # after the down projection
        return "input_norm", layer + 1
    return "final_norm", -1


def _layout_from_structure(main: np.ndarray, classes: np.ndarray, names: np.ndarray,
                           shape: ModelShape) -> tuple[tuple[str, ...], int] | None:
    """The layout whose attention projections are the GEMMs before the first attention kernel and whose length is
    the GEMMs between the first two layers' attention kernels (works on a step cut short, as ncu's are), and how
    many GEMMs run before the first layer (HF's Llama computes its rotary angles with a matmul)."""
    gemms_so_far = np.cumsum(main)
    att = np.flatnonzero(classes == "attention")
    # an attention block starts at the first attention kernel after a GEMM (bookkeeping kernels come before any)
    starts = [i for j, i in enumerate(att) if gemms_so_far[i] > 0 and (j == 0 or gemms_so_far[i] > gemms_so_far[att[j - 1]])]
    if len(starts) < 2:
        return None
    before, per_layer = int(gemms_so_far[starts[0]]), int(gemms_so_far[starts[1]] - gemms_so_far[starts[0]])
    first_layer = np.flatnonzero(main)[before:before + per_layer]
    for pre in (0, 1) if shape.rotary else (0,):
        for lay in gemm_layouts(shape):
            if len(lay) == per_layer and lay.index("o_proj") + pre == before and _experts_fit(lay, names[first_layer]):
                return lay, pre
    return None


def _experts_fit(layout: tuple[str, ...], gemm_names: np.ndarray) -> bool:
    """Where a layer's GEMMs name their kind (grouped expert kernels), the layout's routed-expert GEMMs sit there."""
    grouped = [bool(GROUPED_EXPERTS.search(str(n))) for n in gemm_names]
    if not any(grouped) or len(grouped) != len(layout):
        return True
    return all(g == role.startswith("moe.experts.") for g, role in zip(grouped, layout))


def map_step(classes: np.ndarray, names: np.ndarray, shape: ModelShape,
             partial: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
    """model_op and layer (-1: outside the layers) of one step's kernels in launch order, or None. `partial`: the
    step may be cut short (a profiler's kernel limit); its GEMMs are then at most a whole step's."""
    is_gemm = classes == "gemm"
    helper = np.array([bool(g and _gemm_helper(n)) for g, n in zip(is_gemm, names)], dtype=bool)
    main = is_gemm & ~helper
    n_main = int(main.sum())
    found = _layout_from_structure(main, classes, names, shape)
    if found is not None:
        layout, pre = found
        whole = pre + shape.layers * len(layout) + 1
        if not (n_main == whole or partial and n_main <= whole):
            found = None
    if found is None:
        layout = next((lay for lay in gemm_layouts(shape) if n_main == shape.layers * len(lay) + 1), None)
        if layout is None:
            return None
        pre = 0
    roles = ["rotary_emb"] * pre + [r for _ in range(shape.layers) for r in layout] + ["lm_head"]
    role_layers = [-1] * pre + [i for i in range(shape.layers) for _ in layout] + [-1]
    ops = np.empty(len(classes), dtype=object)
    layer = np.full(len(classes), -1, dtype=np.int64)
    seen = 0   # main GEMMs so far
    for i in range(len(classes)):
        if main[i]:
            ops[i], layer[i] = roles[seen], role_layers[seen]
            seen += 1
        elif helper[i] and seen:
            ops[i], layer[i] = roles[seen - 1], role_layers[seen - 1]
        elif seen == 0:
            ops[i], layer[i] = _first_segment_op(classes[i], names[i]), 0
        elif seen <= pre:   # after HF Llama's angle matmul: cat(freqs, freqs), cos, sin, their scaling and casts
            ops[i], layer[i] = "rotary_emb", -1
        elif classes[i] == "quantize" and seen < len(roles):   # the next projection's input, quantized
            ops[i], layer[i] = roles[seen] + ".quant", role_layers[seen]
        else:
            last = seen == len(roles) or role_layers[seen] != role_layers[seen - 1]
            ops[i], layer[i] = _segment_op(roles[seen - 1], role_layers[seen - 1], shape.layers, last)
            if ops[i] == "input_norm" or ops[i] == "final_norm":
                if roles[seen - 1] == "moe.experts.down" and classes[i] == "moe":
                    ops[i], layer[i] = "moe.sum", role_layers[seen - 1]
    _mark_rotate_half(ops, layer, classes, names)
    _mark_first_unfused_rms_norm(ops, layer, classes, names)
    return ops, layer


def layout_failure_notice(failures: list, shape: ModelShape) -> str | None:
    """One notice for the steps whose GEMMs fit no layout of the model, or None."""
    if not failures:
        return None
    sizes = sorted({len(lay) for lay in gemm_layouts(shape)})
    expected = f"{shape.layers} layers x {'/'.join(map(str, sizes))} + 1 expected"
    named = [("prefill" if k == -1 else f"step {int(k)}", n) for k, n in failures]
    if len(named) == 1:
        return f"{named[0][0]}: {named[0][1]} GEMMs fit no layout of {shape.family} ({expected}); its kernels stay unmapped"
    shown = ", ".join(f"{w} ({n})" for w, n in named[:5]) + (", ..." if len(named) > 5 else "")
    return (f"{len(named)} steps' GEMMs fit no layout of {shape.family} ({expected}): {shown}; their kernels stay "
            "unmapped")


def _mark_first_unfused_rms_norm(ops: np.ndarray, layer: np.ndarray, classes: np.ndarray, names: np.ndarray) -> None:
    """HF's LlamaRMSNorm is eight ATen kernels around one mean: to fp32, pow, mean, + eps, rsqrt, mul, to the
    input dtype, * weight. Layer 0's runs before the first projection, after the rotary-angle kernels: give those
    eight input_norm of layer 0 (in place)."""
    for i in range(2, len(ops) - 5):
        if classes[i] == "reduction" and "MeanOps" in names[i] and ops[i] in ("embedding", "input_prep", "rotary_emb"):
            ops[i - 2:i + 6], layer[i - 2:i + 6] = "input_norm", 0
            return


_NEG = re.compile(r"neg_kernel", re.I)
_MUL = re.compile(r"MulFunctor", re.I)
_ADD = re.compile(r"Functor_add|AddFunctor", re.I)


def _mark_rotate_half(ops: np.ndarray, layer: np.ndarray, classes: np.ndarray, names: np.ndarray) -> None:
    """HF's apply_rotary_pos_emb runs, for q then for k, `x * cos + rotate_half(x) * sin` with rotate_half =
    cat(-x2, x1): mul, neg, cat, mul, add. The cat is a torch.cat like the KV-cache update's but of x (one step's
    q or k), not of the cache, so its kernels get model_op rotary.q / rotary.k (in place). A cat right after a neg
    kernel is the signature; the first one of a layer is q's."""
    n, count = len(ops), {}
    for i in range(1, n):
        if not (ops[i] == "attention" and classes[i] == "copy" and "CatArray" in names[i]
                and ops[i - 1] == "attention" and _NEG.search(names[i - 1])):
            continue
        which = "rotary.k" if count.get(layer[i], 0) else "rotary.q"
        count[layer[i]] = count.get(layer[i], 0) + 1
        block = [i - 1, i]
        if i >= 2 and ops[i - 2] == "attention" and _MUL.search(names[i - 2]):
            block.append(i - 2)
        if i + 2 < n and all(ops[j] == "attention" for j in (i + 1, i + 2)) and _MUL.search(names[i + 1]) \
                and _ADD.search(names[i + 2]):
            block += [i + 1, i + 2]
        ops[block] = which


_EMBEDDING = re.compile(r"index_?select|gather_kernel|embedding", re.I)
_INTEGER_ELEMENTS = re.compile(r"<(long|int|long int|int64_t|int32_t)>|_with_index", re.I)


def _first_segment_op(cls: str, name: str) -> str:
    """Before the first GEMM: the token and position embeddings, layer 0's input norm (vLLM fuses them into one
    kernel) and the step's bookkeeping (positions, slot mappings, block tables: small integer arrays)."""
    if cls == "norm":
        return "input_norm"
    if cls == "copy" and _EMBEDDING.search(name) and "block_table" not in name:
        return "embedding"
    if cls == "elementwise" and not _INTEGER_ELEMENTS.search(name):
        return "embedding"   # the position embedding's add
    return "input_prep"


def map_kernels(kernels: pd.DataFrame, keys: np.ndarray, shape: ModelShape,
                partial: bool = False, failures: list | None = None) -> tuple[np.ndarray, np.ndarray]:
    """model_op ("" where unmapped) and layer (-1 outside layers or unmapped) of every kernel, step by step.
    `failures` (a list) gets (step key, main GEMMs) of each step that fits no layout."""
    n = len(kernels)
    ops = np.full(n, "", dtype=object)
    layer = np.full(n, -1, dtype=np.int64)
    valid = ~np.isnan(keys)
    if not valid.any():
        return ops, layer
    order = np.lexsort((kernels["start_us"].to_numpy(), keys))
    order = order[valid[order]]
    classes = str_values(kernels["kernel_class"])
    names = str_values(kernels["name"])
    sorted_keys = keys[order]
    bounds = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:]):
        idx = order[a:b]
        mapped = map_step(classes[idx], names[idx], shape, partial)
        if mapped is not None:
            ops[idx], layer[idx] = mapped
        elif failures is not None:
            gemm = classes[idx] == "gemm"
            helper = np.array([bool(GEMM_HELPER.search(n)) for n in names[idx]], dtype=bool)
            failures.append((float(sorted_keys[a]), int((gemm & ~helper).sum())))
    return ops, layer
