"""Kernel classes: by the launching op first (it says what the kernel computes), by kernel-name patterns second."""
from __future__ import annotations

import re

import pandas as pd

CLASSES = ("gemm", "attention", "norm", "elementwise", "reduction", "copy", "communication", "sampling", "quantize",
           "moe", "other")

# (class, regex on the launching op name), first match wins
_BY_OP = [
    ("gemm", r"fused_moe|cutlass_moe_mm|marlin|machete|scaled_mm|_C::.*gemm"),
    ("moe", r"_moe_C|topk_softmax|moe_align|moe_sum|grouped_topk"),
    ("quantize", r"_quant\b|_quant$|scaled_fp8_quant|scaled_int8_quant|per_token_group_quant"),
    ("communication", r"c10d|nccl|all_reduce|allreduce|all_gather|reduce_scatter|broadcast"),
    ("attention", r"attention|attn|sdpa|flash|fmha|paged|_fa\d_C"),
    ("gemm", r"aten::(mm|addmm|bmm|baddbmm|linear|matmul|_scaled_mm|addmv|mv|einsum)$|gemm|cutlass_scaled_mm"),
    ("norm", r"layer_norm|rms_norm|group_norm|batch_norm"),
    ("sampling", r"sampler|sample|top_k|topk|top_p|multinomial|argmax|logits"),
    ("reduction", r"softmax|aten::(sum|mean|max|min|amax|cumsum|argmin|norm|var|std|all|any)$"),
    ("copy", r"aten::(copy_|cat|contiguous|clone|index|index_select|index_put_|embedding|gather|scatter|"
             r"_to_copy|to|slice_scatter|fill_|zero_|zeros|ones|full|empty|arange|stack|repeat|expand_as)|"
             r"reshape_and_cache|cache|rotary"),
    ("elementwise", r"aten::(add|add_|mul|mul_|sub|div|neg|pow|rsqrt|sqrt|exp|tanh|gelu|silu|relu|sigmoid|where|"
                    r"masked_fill|clamp|baddbmm_|lt|gt|eq|ne|ge|le|cos|sin|abs|bitwise|logical|mean)|silu_and_mul|"
                    r"gelu_and_mul|gelu|silu|activation"),
]
_BY_NAME = [
    # MoE: the grouped expert GEMMs, then routing and permutation (top-k gating, block alignment, sums)
    ("gemm", r"fused_moe_kernel|fused_moe|cutlass_moe|grouped_gemm|marlin|machete"),
    ("moe", r"topkGating|topk_softmax|moe_align|moe_sum|grouped_topk|moe_permute|moe_unpermute|"
            r"count_and_sort_expert|expert_map"),
    # activation quantization (vLLM's FP8/INT8 kernels); fused into a norm (aiter's add_rmsnorm_quant_kernel, vLLM's
    # rms_norm_dynamic_per_token_quant) or an activation it is that
    ("norm", r"(rms_?norm|layer_?norm)\w*quant|quant\w*(rms_?norm|layer_?norm)"),
    ("elementwise", r"(act_and_mul|silu_and_mul|gelu_and_mul)\w*quant"),
    ("quantize", r"scaled_fp8_quant|scaled_int8_quant|segmented_max_reduction|per_token_group_quant|"
                 r"_fp8_quant|_int8_quant|quant_kernel"),
    ("copy", r"reshape_and_cache|_apply_write"),  # KV-cache writes, though their kernels' names say "flash"
    ("copy", r"store_kvcache|concat_and_cache"),  # SGLang's and vLLM's MLA KV-cache writes
    ("communication", r"nccl|all_reduce|allreduce|multimem|cross_device"),
    ("communication", r"rccl|msccl"),  # RCCL names its kernels ncclDevKernel_* too; MSCCL's own algorithms
    # AMD, by library (TraceLens's kernel rules were the reference): hipBLASLt/Tensile and rocBLAS GEMMs are
    # `Cijk_<layout>_<types>_..._MT<tile>_MI<mfma>_...`; vLLM's ROCm skinny GEMMs wvSplitK/LLGemm; MoE GEMMs of
    # aiter (asm `fmoe_*`, CK `ck_moe`, `kernel_moe_gemm`) and vLLM's Triton `fused_moe_kernel`
    ("gemm", r"^Cijk_|wv_?splitk|fused_moe_kernel|ck_moe|fmoe_|moe_?gemm"),
    # SageAttention (quantized attention on ROCm and CUDA); aiter's MLA decode
    ("attention", r"sage_fwd|sageattn|(^|[_:\d])mla_(dec|a8w8|fwd|stage)"),
    ("attention", r"flash|fmha|attention|attn|paged|mha|unified_attention"),
    ("gemm", r"gemm|gemv|nvjet|xmma|cutlass|cublas|sm\d+_.*_(tn|nt|nn|tt)|ampere_.*(s|h)\d+|volta_|turing_|"
             r"splitk|matmul|dot_kernel|bmm_|mma"),
    ("norm", r"layer_?norm|rms_?norm|rmsnorm|layernorm|batch_norm|bn_fw|norm_kernel"),
    ("norm", r"batchnorm|groupnorm|RowwiseMoments"),  # MIOpen's BatchNorm kernels; ATen's group-norm statistics
    ("sampling", r"sampl|topk|top_k|argmax|multinomial"),
    ("reduction", r"softmax|reduce|triton_per_|triton_red_|cunn_|sum_kernel|max_kernel"),
    # pooling; rocPRIM/hipCUB device-wide scans, sorts and reductions (cumsum, nonzero); MoE routing sums
    ("reduction", r"_pool_|pool\d?d|rocprim|hipcub|bitmatrix|routing_compute"),
    ("copy", r"copy|cat_|catarray|index|gather|scatter|embedding|fill|memcpy|memset|reshape_and_cache|"
             r"_apply_write|transpose|permute|rotary|arange"),
    ("elementwise", r"elementwise|vectorized|unrolled|triton_poi_|pointwise|activation|gelu|silu|relu|add|mul"),
    # MIOpen: a cast of a tensor is a copy, its other tensor ops (set, scale) and im2col are elementwise passes
    ("copy", r"SubTensorOpWithCast|Im2d?\dCol|Col2Im"),
    ("elementwise", r"SubTensorOp|OpTensor"),
    ("elementwise", r"quant"),  # (de)quantization: one scale-and-cast pass (aiter, SageAttention, vLLM fp8)
    ("elementwise", r"position_kernel|future_token_ids"),  # SGLang's per-step index bookkeeping
]
_OP_RE = [(c, re.compile(p, re.I)) for c, p in _BY_OP]
_NAME_RE = [(c, re.compile(p, re.I)) for c, p in _BY_NAME]
# Ops that wrap many kernels of different kinds: the kernel name decides for them
_COMPOSITE_OPS = re.compile(r"^(aten::(to|_to_copy|copy_)|## Call CompiledFxGraph|CompiledFunction|"
                            r"cudaGraphLaunch|hipGraphLaunch|Torch-Compiled Region|vllm::unified_attention_with_output|"
                            r"vllm::\w*fused_experts\w*|vllm::moe_forward\w*)$", re.I)


# Inductor's generated kernels: triton_{poi,red,per}_fused_<the ATen ops it fused>. The op list names the graph's
# neighbours too (`cutlass_scaled_mm` for the quantization feeding an FP8 GEMM), so it never makes a GEMM or attention.
_INDUCTOR = re.compile(r"^triton_(poi|red|per)_")
_INDUCTOR_QUANT = re.compile(r"scaled_mm|_quant|(?=.*abs)(?=.*clamp)(?=.*reciprocal)")


def classify_kernel(name: str, op_name: str = "") -> str:
    if _INDUCTOR.match(name):
        return _classify_inductor(name)
    if op_name and not _COMPOSITE_OPS.match(op_name):
        for cls, rx in _OP_RE:
            if rx.search(op_name):
                # the op can launch helper kernels (a gemm's memset, an attention op's copy): keep it honest
                if cls in ("gemm", "attention") and re.search(r"memset|fill|copy|reshape_and_cache", name, re.I):
                    break
                return cls
    for cls, rx in _NAME_RE:
        if rx.search(name):
            return cls
    return "other"


def _classify_inductor(name: str) -> str:
    """A fused Triton kernel: a norm (with its quantization) stays a norm, an activation with its quantization an
    elementwise kernel; quantization alone is `quantize`."""
    if re.search(r"layer_?norm|rms_?norm", name, re.I):
        return "norm"
    if _INDUCTOR_QUANT.search(name):
        return "elementwise" if re.search(r"silu|gelu|relu|tanh", name) else "quantize"
    for cls, rx in _NAME_RE:
        if cls not in ("gemm", "attention", "moe", "quantize") and rx.search(name):
            return cls
    return "other"


def is_quantizing(name: str) -> bool:
    """An Inductor kernel that writes its output quantized (to FP8/INT8 with per-token scales)."""
    return bool(_INDUCTOR.match(name) and _INDUCTOR_QUANT.search(name))


def classify_kernels(names: pd.Series, op_names: pd.Series) -> pd.Series:
    """Class per kernel, computed once per distinct (kernel name, op name) pair; a Categorical."""
    from tracer.schema import as_text_category, categorical_of, distinct_combinations
    (n, o), inverse = distinct_combinations(as_text_category(names), as_text_category(op_names))
    return pd.Series(categorical_of([classify_kernel(str(a), str(b)) for a, b in zip(n, o)], inverse),
                     index=names.index)


_TEMPLATE = re.compile(r"<[^<>]*>")
# hipBLASLt/Tensile: `Cijk_Alik_Bljk_BBS_BH_Bias_HA_S_SAV_UserArgs_MT256x32x64_MI16x16x1_SN_...` (300 characters of
# tuning flags) -> `Cijk_Alik_Bljk_BBS_BH_MT256x32x64_MI16x16x1`: layout, types, macro tile and MFMA instruction
_TENSILE = re.compile(r"^(Cijk_A[a-z]+_B[a-z]+_.*?(?:_BH(?=_)|(?=_Bias_|_MT\d))).*?(_MT\d+x\d+x\d+)(_MI\d+x\d+x\d+(?:x\d+)?)?")


def _mangled_short_name(name: str) -> str:
    """An unmangled Itanium name (ROCm keeps aiter's and Composable Kernel's so) -> the kernel's own name:
    `_ZN5aiter24add_rmsnorm_quant_kernelI...` -> `add_rmsnorm_quant_kernel`; CK's generic entry point
    `_ZN7ck_tile6kentryILi1ENS_12Rmsnorm2dFwdI...` -> `Rmsnorm2dFwd`, the kernel type it runs."""
    parts, i = [], 3 if name.startswith("_ZN") else 2
    while (m := re.match(r"\d+", name[i:])) and len(name) >= i + len(m.group()) + int(m.group()):
        n = int(m.group())
        parts.append(name[i + len(m.group()):i + len(m.group()) + n])
        i += len(m.group()) + n
    if parts and parts[-1] == "kentry":   # the first class name (3+ characters) among its template arguments
        for m in re.finditer(r"(?<!\d)(\d+)(?=[A-Za-z_])", name[i:]):
            n, start = int(m.group(1)), i + m.end()
            if n >= 3 and re.fullmatch(r"[A-Za-z_]\w*", name[start:start + n]):
                return name[start:start + n]
    return parts[-1] if parts else name[:80]


# CUTLASS launches every kernel through one wrapper template (3.x `device_kernel<Op>`, 2.x `Kernel<Op>`,
# `Kernel2<Op>`), so the wrapper's name says nothing: the operation is its first template argument, under
# arch guards such as `enable_sm90_or_later<...>`
_CUTLASS_WRAPPER = re.compile(r"^(?:void\s+)?cutlass::(?:device_kernel|Kernel2?)<")
_ARCH_GUARD = re.compile(r"^\s*(?:[\w:]*::)?enable_sm\d+\w*<")
_IDENT = re.compile(r"\s*([\w:]+)")
# CUTLASS 3.x GEMMs are all `gemm::kernel::GemmUniversal<...>`: named by arch and input type instead, as
# vLLM's `cutlass_3x_gemm` builds them, so an fp8 GEMM reads as one
_ELEMENT_TYPES = (("float_e4m3_t", "fp8"), ("float_e5m2_t", "fp8"), ("float_e2m1_t", "fp4"), ("int8_t", "int8"),
                  ("bfloat16_t", "bf16"), ("half_t", "fp16"), ("tfloat32_t", "tf32"))


def _cutlass_operation(name: str) -> str | None:
    """The operation a CUTLASS wrapper kernel runs: `cutlass::device_kernel<flash::enable_sm90_or_later<
    flash::FlashAttnFwdSm90<...>>>` -> `FlashAttnFwdSm90`; a 3.x GEMM -> `cutlass_3x_gemm_sm90_fp8`."""
    m = _CUTLASS_WRAPPER.match(name)
    if not m:
        return None
    inner = name[m.end():]
    while (g := _ARCH_GUARD.match(inner)):
        inner = inner[g.end():]
    ident = _IDENT.match(inner)
    op = ident.group(1).split("::")[-1] if ident else ""
    if op in ("GemmUniversal", "GemmUniversalAdapter"):
        arch = re.search(r"\bSm(\d+)", name)
        grouped = "grouped_" if "GroupProblemShape" in name else ""
        elem = next((short for t, short in _ELEMENT_TYPES if t in name), "")
        return "_".join(filter(None, [f"cutlass_3x_{grouped}gemm", f"sm{arch.group(1)}" if arch else "", elem]))
    return op or None


def short_kernel_name(name) -> str:
    """`void at::native::vectorized_elementwise_kernel<4, ...>(int, ...)` -> `vectorized_elementwise_kernel`;
    CUTLASS's wrapper kernels by the operation they run (`FlashAttnFwdSm90`). The full name stays in `name`."""
    if not isinstance(name, str):
        return ""
    op = _cutlass_operation(name)
    if op:
        return op
    if name.startswith("_Z") and "(" not in name:
        return _mangled_short_name(name)
    if (m := _TENSILE.match(name)):
        return "".join(g for g in m.groups() if g)
    s = name.replace("(anonymous namespace)", "anon")
    for _ in range(6):  # nested templates, innermost first
        t = _TEMPLATE.sub("", s)
        if t == s:
            break
        s = t
    s = s.split("(")[0].strip()
    if s.startswith("void "):
        s = s[5:]
    return s.split("::")[-1].strip() or name[:80]


# Collective of a communication kernel: NCCL's `Collective name` arg where Kineto recorded it (allreduce,
# _allgather_base, ...), else the kernel name (ncclDevKernel_AllGather_RING_LL, cross_device_reduce_1stage,
# multimem_all_reduce), else the launching op / annotation (nccl:all_reduce, c10d::allreduce_).
COLLECTIVES = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "broadcast", "reduce", "send_recv",
               "send", "recv", "barrier", "unknown")
_COLLECTIVE_RE = [
    ("reduce_scatter", r"reduce_?scatter"),
    ("all_gather", r"all_?gather"),
    ("all_reduce", r"all_?reduce|cross_device_reduce|custom_ar|two_?shot|one_?shot"),
    ("all_to_all", r"all_?to_?all|alltoall"),
    ("broadcast", r"broadcast|bcast"),
    ("send_recv", r"send_?recv"),
    ("send", r"\bsend|_send|send\b|ncclKernel_Send|ncclDevKernel_Send"),
    ("recv", r"\brecv|_recv|recv\b|ncclKernel_Recv|ncclDevKernel_Recv"),
    ("barrier", r"barrier"),
    ("reduce", r"ncclKernel_Reduce|ncclDevKernel_Reduce|^reduce$|nccl:reduce$"),
]
_COLLECTIVE_RX = [(c, re.compile(p, re.I)) for c, p in _COLLECTIVE_RE]


def collective_of(*names: str) -> str:
    """The collective named by the first of `names` (NCCL arg, kernel name, op name) that names one."""
    for name in names:
        if not isinstance(name, str) or not name:
            continue
        for coll, rx in _COLLECTIVE_RX:
            if rx.search(name):
                return coll
    return "unknown"
