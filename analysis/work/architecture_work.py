"""Work of a kernel from the model operation it belongs to (analysis.work.layer_map), the model's shape and its step's
token composition (analysis.steps.step_tokens), for kernels whose launching op recorded no shapes: CUDA-graph replays,
Inductor's fused Triton kernels, vLLM's custom kernels, Nsight Systems exports.

The same conventions as analysis.work.op_work: 2 FLOPs a multiply-add, the fewest DRAM bytes (each input read once, each
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
- HF's rotary (analysis.work.layer_map: rotary.q, rotary.k) on x, one step's q or k (T x width): x * cos and
  rotate_half(x) * sin read x and the T x head_dim cos or sin (broadcast over heads), the neg reads and writes half
  of x, the cat reads both halves and writes x, the add reads two x and writes one;
- norms: (Layer|RMS)Norm of T x H (7 or 4 FLOPs an element), fused residual add (Inductor, vLLM) reads and writes
  the residual too; HF's unfused RMSNorm (`_unfused_rms_norm`) kernel by kernel, in fp32 between its two casts; residual adds and HF's element-by-element activations: one pass over T x H (T x I in the MLP)
  per operand the kernel's name lists (`std::array<char*, N>`); fused activations: GELU 8 FLOPs an element,
  read once and write once, gated (SiLU and multiply) reads both halves;
- embeddings: T rows gathered; bookkeeping kernels (positions, slot mappings, block tables) read and write a few
  integers a sequence and its block-table row; the sampler reads the S x vocab logits once (vLLM's Gumbel-max
  kernel in the model's dtype, leaving per-block maxima that its argmax reduces); Inductor's pointwise kernel
  inside attention of a rotary model is the rotary embedding of Q and K;
- quantized projections (ModelShape.quant): the same FLOPs, weights and input activations at the quantized bytes
  (scales included), the output in the model's dtype; activation quantization reads the projection's input and
  writes it at one byte an element plus a per-token fp32 scale (a dynamic per-tensor scale first takes a max pass),
  fused into the norm or activation before it (Inductor) or standalone (`<projection>.quant`);
- Mixture of Experts, with T tokens, k of E experts a token, I_e an expert's width: the router is a T x E x H GEMM;
  top-k gating reads the T x E logits and writes k weights and ids a token; the grouped expert GEMMs compute the
  T*k routed rows (gate_up: N = 2 I_e, K = H; down: N = H, K = I_e) and read the weights of the experts the step
  touches: those the recorded routing shows (`record --moe-routing`, analysis.work.expert_routing), else
  E (1 - (1 - k/E)^T) of them on average when routing is uniform;
  the experts' activation runs on T*k rows; the weighted sum reads the T*k outputs and writes T rows;
- an FP8 KV cache (ModelShape.kv_bytes): cache writes and attention's K and V reads at one byte an element.
"""
from __future__ import annotations

import math
import re
from dataclasses import replace

import numpy as np
import pandas as pd

from analysis.work.architecture import ModelShape
from analysis.work.attention_tiles import fa3_splits_kv
from analysis.work.expert_routing import layer_expert_tokens
from tracer.parse.classify import is_quantizing
from tracer.schema import str_values

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


# projections a quantized checkpoint stores quantized (vLLM leaves the LM head, the router and gates in the dtype)
QUANTIZED_PROJECTIONS = {"qkv_proj", "q_proj", "k_proj", "v_proj", "o_proj", "mlp.up_proj", "mlp.gate_proj",
                         "mlp.gate_up_proj", "mlp.down_proj", "moe.experts.gate_up", "moe.experts.down",
                         "moe.shared.gate_up", "moe.shared.down"}


def experts_touched(s: ModelShape, tokens: float, routed: np.ndarray | None = None) -> float:
    """Distinct experts a step of `tokens` tokens routes to: those the recorded routing shows (`routed`: tokens per
    expert), else the average under uniform routing."""
    if routed is not None:
        return float(np.count_nonzero(routed))
    e, k = s.experts, s.experts_per_token
    return e * (1.0 - (1.0 - k / e) ** tokens) if e else 0.0


def _expert_gemm_work(op: str, s: ModelShape, t: float, routed: np.ndarray | None) -> tuple[float, float, float]:
    """(flops, bytes, written) of a grouped expert GEMM over the T*k routed rows."""
    quantized = bool(s.quant.method)
    w, a, e = (s.weight_bytes, s.act_bytes, s.elem_bytes) if quantized else (s.elem_bytes,) * 3
    rows = t * s.experts_per_token
    n, k = (2 * s.expert_intermediate, s.hidden) if op == "moe.experts.gate_up" else (s.hidden, s.expert_intermediate)
    inputs = (t * k if op == "moe.experts.gate_up" else rows * k) * a   # gate_up gathers each token's row k times
    weights = experts_touched(s, t, routed) * n * k * w
    return 2 * rows * n * k, inputs + weights + rows * n * e, rows * n * e


def _quant_input_elements(op: str, s: ModelShape, t: float) -> float | None:
    """Elements of the input a `<projection>.quant` kernel quantizes."""
    proj = op[:-len(".quant")]
    if proj == "moe.experts.down":
        return t * s.experts_per_token * s.expert_intermediate
    if proj == "moe.shared.down":
        return t * s.shared_intermediate
    if proj == "mlp.down_proj":
        return t * s.intermediate
    if proj == "o_proj":
        return t * s.q_width
    if proj in QUANTIZED_PROJECTIONS:
        return t * s.hidden
    return None


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
            "moe.router": (s.experts, s.hidden, False),
            "moe.shared.gate_up": (2 * s.shared_intermediate, s.hidden, False),
            "moe.shared.down": (s.hidden, s.shared_intermediate, False),
            "moe.shared.gate": (1, s.hidden, False),
            "rotary_emb": (s.head_dim // 2, 1, False)}   # HF Llama: inverse frequencies x positions
    if op not in dims:
        return None
    n, k, bias = dims[op]
    return (seqs if op == "lm_head" else tokens), n, k, bias


def kernel_work_from_architecture(op: str, cls: str, name: str, main_attention: bool, step: pd.Series,
                                  s: ModelShape, after_gumbel: bool = False, blocks: float = float("nan"),
                                  kv_split: bool | None = None, layer: int = -1) -> tuple[float, float] | None:
    """(flops, bytes, written_bytes) of one kernel of model operation `op` (bytes: every input read once and
    every output written once; written_bytes: the outputs), or None when no formula backs it."""
    e = s.elem_bytes
    t, seqs = step["tokens"], step["seqs"]
    th, ti = t * s.hidden, t * s.intermediate
    quantizing = is_quantizing(name)   # an Inductor kernel writing its output quantized for the next GEMM
    out_b = s.act_bytes if quantizing else e
    if op in ("moe.experts.gate_up", "moe.experts.down") and cls == "gemm":
        return _expert_gemm_work(op, s, t, layer_expert_tokens(step, layer))
    if op.endswith(".quant") and cls == "quantize":
        x = _quant_input_elements(op, s, t)
        if x is None:
            return None
        if re.search(r"segmented_max|max_reduction", name):   # the dynamic per-tensor scale: a max over the input
            return x, x * e + _FP32, _FP32
        return 3 * x, x * e + x * s.act_bytes + t * _FP32, x * s.act_bytes + t * _FP32
    dims = gemm_dims(op, s, t, seqs)
    if dims is not None and cls == "gemm":
        m, n, k, bias = dims
        w = a = e
        if op == "rotary_emb":
            e = w = a = _FP32   # HF computes the angles in fp32 whatever the model's dtype
        elif s.quant.method and op in QUANTIZED_PROJECTIONS:
            w, a = s.weight_bytes, s.act_bytes
        bias_bytes = n * e if bias else 0.0
        if re.search(r"splitK.*reduce|splitKreduce", name, re.I):
            return m * n * (MIN_SPLITS - 1), m * n * (MIN_SPLITS * PARTIAL_BYTES + e) + bias_bytes, m * n * e
        return 2 * m * n * k, m * k * a + k * n * w + m * n * e + bias_bytes, m * n * e
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
        c = s.cache_bytes
        if cls == "attention" and main_attention:
            flops = 4 * s.heads * s.head_dim * step["attn_pairs"]
            return flops, 2 * t * s.q_width * e + 2 * step["kv_read_tokens"] * s.kv_width * c, t * s.q_width * e
        if cls == "attention" and kv_split is False:   # FA3 did not split: its combine kernel merges nothing
            return 0.0, 0.0, 0.0
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
            return 0.0, 2 * t * s.kv_width * (e + c), 2 * t * s.kv_width * c
        if re.search(r"CatArray", name):
            return 0.0, 2 * step["kv_tokens_after"] * s.kv_width * e, step["kv_tokens_after"] * s.kv_width * e
        return None
    if op in ("input_norm", "post_attention_norm", "final_norm"):
        if cls == "norm":
            fused = bool(_FUSED_ADD.search(name))
            flops = (4 if s.rms_norm else 7) * th + (th if fused else 0) + (3 * th if quantizing else 0)
            params = (1 if s.rms_norm else 2) * s.hidden * e
            written = th * out_b + (t * _FP32 if quantizing else 0) + (th * e if fused else 0)
            return flops, (th + (th if fused else 0)) * e + params + written, written
        if cls == "copy" and _GRAPH_MEMCPY.search(name):   # a copy node of the CUDA graph: the T x H hidden states
            return 0.0, 2 * th * e, th * e
        # HF's unfused RMSNorm casts all T x H elements; a copy launched as a handful of blocks (vLLM's index
        # copies between the final norm and the LM head) is not its cast
        too_few_blocks = cls == "copy" and blocks * _MAX_ELEMENTS_PER_BLOCK < th
        if s.rms_norm and not too_few_blocks:
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
        scales = t * _FP32 if quantizing else 0.0
        if s.gated_mlp:
            return 5 * ti + (3 * ti if quantizing else 0), 2 * ti * e + ti * out_b + scales, ti * out_b + scales
        return 8 * ti + (3 * ti if quantizing else 0), ti * e + ti * out_b + scales, ti * out_b + scales
    if op.startswith("moe."):
        return _moe_kernel_work(op, cls, name, s, t, quantizing)
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
_MAX_ELEMENTS_PER_BLOCK = 65536   # far above any ATen elementwise kernel's elements per block
_GRAPH_MEMCPY = re.compile(r"^memcpy\d*_post$")


def _moe_kernel_work(op: str, cls: str, name: str, s: ModelShape, t: float, quantizing: bool) -> tuple | None:
    """Routing, the experts' activation and the weighted sum of an MoE layer (its GEMMs are projections)."""
    e, k = s.elem_bytes, s.experts_per_token
    rows = t * k
    if op == "moe.routing" and cls in ("moe", "sampling"):
        if re.search(r"align|sort", name, re.I):   # token ids sorted by expert, padded to the GEMM's row blocks
            return 0.0, rows * _INT32 * 2 + s.experts * _INT32, rows * _INT32
        # top-k gating: softmax over the T x E logits, k weights (fp32) and expert ids (int32) a token out
        return 5 * t * s.experts, t * s.experts * e + rows * (_FP32 + 2 * _INT32), rows * (_FP32 + 2 * _INT32)
    if op == "moe.routing" and cls == "copy":   # `--moe-routing`: vLLM copies the T x k expert ids (int32) it returns
        return 0.0, 2 * rows * _INT32, rows * _INT32
    if op == "moe.experts.act" and cls in ("elementwise", "other"):
        x = rows * s.expert_intermediate
        out_b = s.act_bytes if quantizing else e
        return 5 * x, 2 * x * e + x * out_b, x * out_b
    if op == "moe.shared.act" and cls in ("elementwise", "other"):
        x = t * s.shared_intermediate
        return 5 * x, 3 * x * e, x * e
    if op == "moe.sum" and cls in ("moe", "elementwise", "reduction"):
        return rows * s.hidden, rows * s.hidden * e + t * s.hidden * e, t * s.hidden * e
    if op == "moe.sum" and cls == "copy" and _GRAPH_MEMCPY.search(name):
        return 0.0, 2 * t * s.hidden * e, t * s.hidden * e
    if op == "moe.shared.combine" and cls == "elementwise":   # sigmoid(gate) * shared output (+ the routed sum)
        return 2 * t * s.hidden, 3 * t * s.hidden * e, t * s.hidden * e
    return None


_INT32 = 4


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


def _grid_blocks(grid: pd.Series) -> np.ndarray:
    """Thread blocks a launch had (x*y*z of its grid, "2016,1,1"); NaN where the trace does not say."""
    codes, uniques = pd.factorize(grid.astype(str))
    per = np.array([_blocks_of(u) for u in uniques], dtype=float)
    return per[codes] if len(per) else np.full(len(grid), np.nan)


def _blocks_of(text: str) -> float:
    try:
        dims = [int(x) for x in text.strip("() ").replace(" ", "").split(",") if x]
    except ValueError:
        return float("nan")
    return float(np.prod(dims)) if dims else float("nan")


def architecture_work(kernels: pd.DataFrame, ops: np.ndarray, layer: np.ndarray, keys: np.ndarray,
                      steps: pd.DataFrame, shape: ModelShape, only: np.ndarray) -> np.ndarray:
    """n x 3 array of flops, bytes and written bytes (NaN where no formula) for the kernels selected by `only`."""
    n = len(kernels)
    work = np.full((n, 3), np.nan)
    classes = str_values(kernels["kernel_class"])
    names = str_values(kernels["name"])
    dur = kernels["dur_us"].to_numpy(dtype=float)
    # the longest attention kernel of each step and layer is the attention proper; the others combine its splits
    att = pd.DataFrame({"key": keys, "layer": layer, "dur": dur})[(ops == "attention") & (classes == "attention")]
    main_attention = np.zeros(n, dtype=bool)
    if len(att):
        main_attention[att.sort_values("dur", ascending=False, kind="stable")
                       .drop_duplicates(["key", "layer"]).index.to_numpy()] = True
    rows = steps.to_dict("index")   # plain dicts: a Series' item access cost more than the work formulas
    # whether each step and layer's FA3 kernel split its keys (its combine kernel's work follows)
    kv_split = {}
    for i in np.flatnonzero(main_attention):
        step = rows.get(int(keys[i])) if keys[i] == keys[i] else None
        if step is not None:
            kv_split[(keys[i], layer[i])] = fa3_splits_kv(names[i], step["seq_shapes"], shape.heads, shape.kv_heads)
    # steps whose sampler is vLLM's Gumbel-max kernel: their argmax reduces its per-block maxima, not the logits
    gumbel_steps = {keys[i] for i in np.flatnonzero(ops == "sampler") if _GUMBEL.search(names[i])}
    blocks = _grid_blocks(kernels["grid"]) if "grid" in kernels else np.full(n, np.nan)
    cache: dict = {}
    for i in np.flatnonzero(only & (ops != "") & ~np.isnan(keys)):
        step = rows.get(int(keys[i]))
        if step is None:
            continue
        after_gumbel = keys[i] in gumbel_steps
        split = kv_split.get((keys[i], layer[i]))
        per_layer = int(layer[i]) if ops[i].startswith("moe.experts") else -1   # routed experts differ by layer
        memo = (int(keys[i]), ops[i], classes[i], names[i], bool(main_attention[i]), after_gumbel, blocks[i], split,
                per_layer)
        if memo not in cache:
            cache[memo] = kernel_work_from_architecture(ops[i], classes[i], names[i], main_attention[i], step, shape,
                                                        after_gumbel, blocks[i], split, per_layer)
        w = cache[memo]
        if w is not None and not (np.isnan(w[0]) or np.isnan(w[1])):   # NaN: a context the trace does not tell
            work[i] = w
    return work
