"""Kernel classes: by the launching op first (it says what the kernel computes), by kernel-name patterns second."""
from __future__ import annotations

import re

import pandas as pd

CLASSES = ("gemm", "attention", "norm", "elementwise", "reduction", "copy", "communication", "sampling", "other")

# (class, regex on the launching op name), first match wins
_BY_OP = [
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
    ("copy", r"reshape_and_cache|_apply_write"),  # KV-cache writes, though their kernels' names say "flash"
    ("communication", r"nccl|all_reduce|allreduce|multimem|cross_device"),
    ("attention", r"flash|fmha|attention|attn|paged|mha|unified_attention"),
    ("gemm", r"gemm|gemv|nvjet|xmma|cutlass|cublas|sm\d+_.*_(tn|nt|nn|tt)|ampere_.*(s|h)\d+|volta_|turing_|"
             r"splitk|matmul|dot_kernel|bmm_|mma"),
    ("norm", r"layer_?norm|rms_?norm|rmsnorm|layernorm|batch_norm|bn_fw|norm_kernel"),
    ("sampling", r"sampl|topk|top_k|argmax|multinomial"),
    ("reduction", r"softmax|reduce|triton_per_|triton_red_|cunn_|sum_kernel|max_kernel"),
    ("copy", r"copy|cat_|catarray|index|gather|scatter|embedding|fill|memcpy|memset|reshape_and_cache|"
             r"_apply_write|transpose|permute|rotary|arange"),
    ("elementwise", r"elementwise|vectorized|unrolled|triton_poi_|pointwise|activation|gelu|silu|relu|add|mul"),
]
_OP_RE = [(c, re.compile(p, re.I)) for c, p in _BY_OP]
_NAME_RE = [(c, re.compile(p, re.I)) for c, p in _BY_NAME]
# Ops that wrap many kernels of different kinds: the kernel name decides for them
_COMPOSITE_OPS = re.compile(r"^(aten::(to|_to_copy|copy_)|## Call CompiledFxGraph|CompiledFunction|"
                            r"cudaGraphLaunch|Torch-Compiled Region|vllm::unified_attention_with_output)$", re.I)


def classify_kernel(name: str, op_name: str = "") -> str:
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


def classify_kernels(names: pd.Series, op_names: pd.Series) -> pd.Series:
    """Class per kernel, computed once per distinct (kernel name, op name) pair; a Categorical."""
    from tracer.schema import as_text_category, categorical_of, distinct_combinations
    (n, o), inverse = distinct_combinations(as_text_category(names), as_text_category(op_names))
    return pd.Series(categorical_of([classify_kernel(str(a), str(b)) for a, b in zip(n, o)], inverse),
                     index=names.index)


_TEMPLATE = re.compile(r"<[^<>]*>")


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
