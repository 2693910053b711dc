"""Work of a kernel from the model operation it belongs to (analysis.layer_map), the model's shape and its step's
token composition (analysis.step_tokens), for kernels whose launching op recorded no shapes: CUDA-graph replays,
Inductor's fused Triton kernels, vLLM's custom kernels, Nsight Systems exports.

The same conventions as analysis.work: 2 FLOPs a multiply-add, the fewest DRAM bytes (each input read once, each
output written once). A kernel a formula cannot be backed for keeps NaN (unmodeled). Formulas, with T new tokens,
S sequences, H hidden, I MLP width, e bytes an element:
- projections: M x N x K GEMMs (M = T; the LM head takes one row a sequence: M = S); cuBLAS's split-K reduction
  kernel reads at least two fp32 partial products of the M x N output and writes it;
- attention: 4 x heads x head_dim FLOPs per query-key pair attended (causal within a prompt); bytes: Q and O, K and
  V of the context read (whole KV blocks where paged); a split-KV combine kernel reads two fp32 partial outputs;
- KV-cache writes: vLLM's reshape_and_cache reads and writes the new tokens' K and V; HF's torch.cat reads the
  whole cache and writes it again (one kernel for K, one for V);
- HF Llama's rotary angles (rotary_emb): a T x head_dim/2 matmul of inverse frequencies by positions, then
  elementwise over its T x head_dim fp32 concatenation (cos, sin, scaling, casts);
- HF's rotary (analysis.layer_map: rotary.q, rotary.k) on x, one step's q or k (T x width): x * cos and
  rotate_half(x) * sin read x and the T x head_dim cos or sin (broadcast over heads), the neg reads and writes half
  of x, the cat reads both halves and writes x, the add reads two x and writes one;
- norms: (Layer|RMS)Norm of T x H (7 or 4 FLOPs an element), fused residual add (Inductor, vLLM) reads and writes
  the residual too; HF's unfused RMSNorm (`_unfused_rms_norm`) kernel by kernel, in fp32 between its two casts; residual adds and HF's element-by-element activations: one pass over T x H (T x I in the MLP)
  per operand the kernel's name lists (`std::array<char*, N>`); fused activations: GELU 8 FLOPs an element,
  read once and write once, gated (SiLU and multiply) reads both halves;
- embeddings: T rows gathered; bookkeeping kernels (positions, slot mappings, block tables) read and write a few
  integers a sequence and its block-table row; the sampler reads the S x vocab logits once (vLLM's Gumbel-max
  kernel in the model's dtype, leaving per-block maxima that its argmax reduces); Inductor's pointwise kernel
  inside attention of a rotary model is the rotary embedding of Q and K.
"""
from __future__ import annotations

import math
import re
from dataclasses import replace

import numpy as np
import pandas as pd

from analysis.architecture import ModelShape

_OPERANDS = re.compile(r"array<char\s*\*,\s*(\d+)", re.I)
_FUSED_ADD = re.compile(r"fused_add|_add_|embedding", re.I)
_BINARY = re.compile(r"BinaryFunctor|CUDAFunctor_add|Functor_(add|sub|mul|div)|MulFunctor|AddFunctor", re.I)
_UNARY = re.compile(r"AUnaryFunctor|BUnaryFunctor|OnSelf|tanh|pow_tensor_scalar|sigmoid|silu|gelu|exp|rsqrt", re.I)
PARTIAL_BYTES = 4   # split-K and split-KV partial results are fp32
MIN_SPLITS = 2


def _operands(name: str) -> int:
    """How many tensors an ATen elementwise kernel touches (inputs + output), from its name."""
    m = _OPERANDS.search(name)
    if m:
        return int(m.group(1))
    if _UNARY.search(name):
        return 2
    return 3 if _BINARY.search(name) else 2


def gemm_dims(op: str, s: ModelShape, tokens: float, seqs: float) -> tuple[float, float, float, bool] | None:
    """(M, N, K, has_bias) of a projection."""
    dims = {"qkv_proj": (s.q_width + 2 * s.kv_width, s.hidden, s.linear_bias or s.qkv_bias),
            "q_proj": (s.q_width, s.hidden, s.linear_bias or s.qkv_bias),
            "k_proj": (s.kv_width, s.hidden, s.linear_bias or s.qkv_bias),
            "v_proj": (s.kv_width, s.hidden, s.linear_bias or s.qkv_bias),
            "o_proj": (s.hidden, s.q_width, s.linear_bias),
            "mlp.up_proj": (s.intermediate, s.hidden, s.linear_bias),
            "mlp.gate_proj": (s.intermediate, s.hidden, s.linear_bias),
            "mlp.gate_up_proj": (2 * s.intermediate, s.hidden, s.linear_bias),
            "mlp.down_proj": (s.hidden, s.intermediate, s.linear_bias),
            "lm_head": (s.vocab, s.hidden, False),
            "rotary_emb": (s.head_dim // 2, 1, False)}   # HF Llama: inverse frequencies x positions
    if op not in dims:
        return None
    n, k, bias = dims[op]
    return (seqs if op == "lm_head" else tokens), n, k, bias


def kernel_work_from_architecture(op: str, cls: str, name: str, main_attention: bool, step: pd.Series,
                                  s: ModelShape, after_gumbel: bool = False) -> tuple[float, float] | None:
    """(flops, bytes, written_bytes) of one kernel of model operation `op` (bytes: every input read once and
    every output written once; written_bytes: the outputs), or None when no formula backs it."""
    e = s.elem_bytes
    t, seqs = step["tokens"], step["seqs"]
    th, ti = t * s.hidden, t * s.intermediate
    dims = gemm_dims(op, s, t, seqs)
    if dims is not None and cls == "gemm":
        m, n, k, bias = dims
        if op == "rotary_emb":
            e = _FP32   # HF computes the angles in fp32 whatever the model's dtype
        bias_bytes = n * e if bias else 0.0
        if re.search(r"splitK.*reduce|splitKreduce", name, re.I):
            return m * n * (MIN_SPLITS - 1), m * n * (MIN_SPLITS * PARTIAL_BYTES + e) + bias_bytes, m * n * e
        return 2 * m * n * k, (m * k + k * n + m * n) * e + bias_bytes, m * n * e
    if op == "rotary_emb" and cls != "gemm":   # HF Llama's angles: emb = cat(freqs, freqs), T x head_dim fp32
        a = t * s.head_dim
        if cls == "copy" and "CatArray" in name:   # reads the one freqs tensor (T x head_dim / 2) it repeats
            return 0.0, a / 2 * _FP32 + a * _FP32, a * _FP32
        if cls == "copy":   # cos and sin to the model's dtype
            return 0.0, a * (_FP32 + e), a * e
        if cls == "elementwise":   # cos, sin, * attention_scaling
            return a, 2 * a * _FP32, a * _FP32
        return None
    if op in ("rotary.q", "rotary.k"):
        x = t * (s.q_width if op == "rotary.q" else s.kv_width)
        if cls == "copy":
            return 0.0, 2 * x * e, x * e
        if re.search(r"neg_kernel", name, re.I):
            return x / 2, x * e, x / 2 * e
        if re.search(r"MulFunctor", name, re.I):
            return x, (2 * x + t * s.head_dim) * e, x * e
        return x, 3 * x * e, x * e   # the add
    if op == "attention":
        if cls == "attention" and main_attention:
            flops = 4 * s.heads * s.head_dim * step["attn_pairs"]
            return flops, (2 * t * s.q_width + 2 * step["kv_read_tokens"] * s.kv_width) * e, t * s.q_width * e
        if cls == "attention":   # split-KV combine
            out = t * s.q_width
            return (3 * out, out * (MIN_SPLITS * PARTIAL_BYTES + e) + MIN_SPLITS * t * s.heads * PARTIAL_BYTES,
                    out * e)
        if re.search(r"rotary", name, re.I) or (s.rotary and cls == "elementwise" and _INDUCTOR_POINTWISE.search(name)):
            # rotary embedding of Q and K (Inductor compiles vLLM's into a `triton_poi_fused_*` kernel): reads them
            # and one cos/sin row a token, writes them
            n = t * (s.q_width + s.kv_width)
            return 3 * n, (2 * n + t * s.head_dim) * e, n * e
        if re.search(r"reshape_and_cache|cache_kernel|_cache_", name, re.I):
            return 0.0, 4 * t * s.kv_width * e, 2 * t * s.kv_width * e
        if re.search(r"CatArray", name):
            return 0.0, 2 * step["kv_tokens_after"] * s.kv_width * e, step["kv_tokens_after"] * s.kv_width * e
        return None
    if op in ("input_norm", "post_attention_norm", "final_norm"):
        if cls == "norm":
            fused = bool(_FUSED_ADD.search(name))
            flops = (4 if s.rms_norm else 7) * th + (th if fused else 0)
            params = (1 if s.rms_norm else 2) * s.hidden * e
            return flops, (2 * th + (2 * th if fused else 0)) * e + params, (2 if fused else 1) * th * e
        if s.rms_norm:
            w = _unfused_rms_norm(cls, name, th, t, s.hidden, e)
            if w is not None:
                return w
        if cls == "elementwise":   # the residual add
            return th, _operands(name) * th * e, th * e
        if cls == "copy" and op == "final_norm":   # the last token's hidden state of each sequence, for the LM head
            return 0.0, 2 * seqs * s.hidden * e, seqs * s.hidden * e
        return None
    if op == "mlp.act" and cls in ("elementwise", "other"):
        if _OPERANDS.search(name) or "elementwise_kernel" in name:   # HF: one ATen kernel per operation
            return ti, _operands(name) * ti * e, ti * e
        if s.gated_mlp:
            return 5 * ti, 3 * ti * e, ti * e
        return 8 * ti, 2 * ti * e, ti * e
    if op == "embedding":
        if cls == "copy":
            return 0.0, 2 * th * e + 8 * t, th * e
        if cls == "elementwise":
            return th, _operands(name) * th * e, th * e
        return None
    if op == "input_prep" and _BOOKKEEPING.search(name):
        return 0.0, _bookkeeping_bytes(step), _bookkeeping_bytes(step) / 2
    if op == "sampler":
        s = replace(s, vocab=getattr(s, "whole_vocab", 0) or s.vocab)   # tensor parallel: logits gathered first
        blocks = seqs * math.ceil(s.vocab / GUMBEL_BLOCK)   # of vLLM's Gumbel-max kernel: a max and argmax each
        if _GUMBEL.search(name):
            # vLLM's Gumbel-max sampler: logits in the model's dtype (ncu on the H200: 4.1 MB for 16 x 128,256
            # bf16 logits), one max and argmax per 1,024-wide vocabulary block out
            return seqs * s.vocab, seqs * s.vocab * e + blocks * 12 + 8 * seqs, blocks * 12
        if after_gumbel and _ARGMAX.search(name):   # reduces the Gumbel kernel's per-block maxima
            return blocks, blocks * 12 + 8 * seqs, 8 * seqs
        if _READS_LOGITS.search(name):
            logit_bytes = _elem_bytes_in_name(name) or PARTIAL_BYTES   # vLLM samples from fp32 logits
            return seqs * s.vocab, seqs * s.vocab * logit_bytes + 8 * seqs, 8 * seqs
        if _BOOKKEEPING.search(name):
            return 0.0, _bookkeeping_bytes(step), _bookkeeping_bytes(step) / 2
    return None


_FP32 = 4


def _unfused_rms_norm(cls: str, name: str, x: float, rows: float, hidden: int, e: int) -> tuple | None:
    """One kernel of HF's LlamaRMSNorm on x = T x H elements: h = x.to(fp32); var = h.pow(2).mean(-1);
    h = h * rsqrt(var + eps) (the add and rsqrt on one fp32 a row); weight * h.to(input dtype). None: not one."""
    if cls == "copy" and "direct_copy" in name:
        return 0.0, x * (e + _FP32), x * _FP32
    if cls == "copy" and re.search(r"bfloat16_copy|half_copy|float16_copy", name, re.I):
        return 0.0, x * (_FP32 + e), x * e
    if cls == "reduction" and "MeanOps" in name:
        return x, (x + rows) * _FP32, rows * _FP32
    if re.search(r"pow_tensor_scalar_kernel_impl<float", name):
        return x, 2 * x * _FP32, x * _FP32
    if re.search(r"OnSelf_add<float>|rsqrt_kernel", name):
        return rows, 2 * rows * _FP32, rows * _FP32
    if re.search(r"BinaryFunctor<float, float, float, [\w:]*MulFunctor", name):
        return x, (2 * x + rows) * _FP32, x * _FP32
    if re.search(r"BinaryFunctor<c10::(BFloat16|Half), .*MulFunctor", name):   # * weight
        return x, (2 * x + hidden) * e, x * e
    return None


# vLLM's Triton input/output preparation and ATen's index arithmetic: a few integers a sequence
_BOOKKEEPING = re.compile(r"prepare|slot_mapping|block_table|_apply_write|seq_len|num_blocks|arange|_with_index|"
                          r"fill|combine_sampled|post_update|num_sampled|<long>|<int>|<long int>|index_elementwise|"
                          r"scatter_gather", re.I)


_GUMBEL = re.compile(r"gumbel", re.I)
_ARGMAX = re.compile(r"ArgMax", re.I)
GUMBEL_BLOCK = 1024   # vllm/v1/worker/gpu/sample/gumbel.py BLOCK_SIZE
# Inductor's pointwise kernels; within attention, before the KV-cache write, the rotary embedding
_INDUCTOR_POINTWISE = re.compile(r"^triton_poi_fused")
_READS_LOGITS = re.compile(r"gumbel|softmax|topk|top_k|top_p|reduce_kernel|argmax|penalt|logprob", re.I)


def _elem_bytes_in_name(name: str) -> int | None:
    if re.search(r"BFloat16|Half|__half|bf16", name):
        return 2
    if re.search(r"<float|, float", name):
        return 4
    return None


def _bookkeeping_bytes(step: pd.Series) -> float:
    block_row = math.ceil(step["max_context"] / 16) if step["max_context"] == step["max_context"] else 0
    return 2 * step["seqs"] * (block_row + 8) * 4


def architecture_work(kernels: pd.DataFrame, ops: np.ndarray, layer: np.ndarray, keys: np.ndarray,
                      steps: pd.DataFrame, shape: ModelShape, only: np.ndarray) -> np.ndarray:
    """n x 3 array of flops, bytes and written bytes (NaN where no formula) for the kernels selected by `only`."""
    n = len(kernels)
    work = np.full((n, 3), np.nan)
    classes = kernels["kernel_class"].astype(str).to_numpy()
    names = kernels["name"].astype(str).to_numpy()
    dur = kernels["dur_us"].to_numpy(dtype=float)
    # the longest attention kernel of each step and layer is the attention proper; the others combine its splits
    att = pd.DataFrame({"key": keys, "layer": layer, "dur": dur})[(ops == "attention") & (classes == "attention")]
    main_attention = np.zeros(n, dtype=bool)
    if len(att):
        main_attention[att.sort_values("dur", ascending=False, kind="stable")
                       .drop_duplicates(["key", "layer"]).index.to_numpy()] = True
    rows = {key: row for key, row in steps.iterrows()}
    # steps whose sampler is vLLM's Gumbel-max kernel: their argmax reduces its per-block maxima, not the logits
    gumbel_steps = {keys[i] for i in np.flatnonzero(ops == "sampler") if _GUMBEL.search(names[i])}
    cache: dict = {}
    for i in np.flatnonzero(only & (ops != "") & ~np.isnan(keys)):
        step = rows.get(int(keys[i]))
        if step is None:
            continue
        after_gumbel = keys[i] in gumbel_steps
        memo = (int(keys[i]), ops[i], classes[i], names[i], bool(main_attention[i]), after_gumbel)
        if memo not in cache:
            cache[memo] = kernel_work_from_architecture(ops[i], classes[i], names[i], main_attention[i], step, shape,
                                                        after_gumbel)
        w = cache[memo]
        if w is not None and not (np.isnan(w[0]) or np.isnan(w[1])):   # NaN: a context the trace does not tell
            work[i] = w
    return work
