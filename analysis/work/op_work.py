"""Analytic work of an op from its recorded input shapes and dtypes: FLOPs and the fewest DRAM bytes it must move
(each input read once, each output written once). One small function per op family. An op the model does not
cover returns None and its kernels stay `unmodeled`: never a made-up number.

Conventions: a multiply-add is 2 FLOPs (torch.profiler's and Nsight Compute's convention); matmul FLOPs exclude
the bias add (as torch.profiler's do); causal attention counts the unmasked half (plus the diagonal).
"""
from __future__ import annotations

import math

import orjson

DTYPE_BYTES = {"c10::BFloat16": 2, "c10::Half": 2, "float": 4, "double": 8, "long int": 8, "int": 4,
               "bool": 1, "unsigned char": 1, "signed char": 1, "short int": 2, "c10::Float8_e4m3fn": 1,
               "c10::Float8_e5m2": 1}
# FLOPs per output element of elementwise ops (approximate instruction counts for transcendental ones)
_ELEMENTWISE = {"add": 1, "add_": 1, "sub": 1, "mul": 1, "mul_": 1, "div": 1, "neg": 1, "pow": 1, "rsqrt": 1,
                "sqrt": 1, "exp": 1, "tanh": 1, "gelu": 8, "silu": 4, "relu": 1, "sigmoid": 4, "where": 1,
                "masked_fill": 1, "clamp": 1, "lt": 1, "gt": 1, "eq": 1, "ne": 1, "ge": 1, "le": 1, "cos": 1,
                "sin": 1, "abs": 1, "reciprocal": 1, "maximum": 1, "minimum": 1}


def _numel(shape) -> int:
    return math.prod(shape) if shape else 1


def _tensor_args(shapes, dtypes):
    """(shape, bytes per element) of each tensor argument; scalars and None are skipped."""
    out = []
    for s, d in zip(shapes, dtypes):
        if isinstance(s, list) and s and all(isinstance(x, int) for x in s) and d in DTYPE_BYTES:
            out.append((s, DTYPE_BYTES[d]))
    return out


def _matmul(a, b, es_in, es_out=None, extra_bytes=0):
    """a [..., m, k] @ b [..., k, n] with broadcasting over the leading dims."""
    es_out = es_out or es_in
    if len(a) == 1:
        a = [1] + a
    if len(b) == 1:
        b = b + [1]
    m, k = a[-2], a[-1]
    n = b[-1]
    batch_a, batch_b = a[:-2], b[:-2]
    batch = _numel(batch_a if _numel(batch_a) >= _numel(batch_b) else batch_b)
    flops = 2 * batch * m * n * k
    written = batch * m * n * es_out
    bytes_ = (_numel(a) + _numel(b)) * es_in + written + extra_bytes
    return flops, bytes_, written


def op_work(op_name: str, shapes_json: str, dtypes_json: str, elem_bytes_hint: int | None = None):
    """(flops, bytes, written_bytes) of one op, or None when the model does not cover it: bytes counts every input
    read once and every output written once, written_bytes the outputs alone (analysis.roofline.memory_traffic decides
    which of them reach DRAM). `elem_bytes_hint` gives the
    element size where the profiler recorded none (TensorList inputs of cat); the kernel's name tells it."""
    if not shapes_json:
        return None
    try:
        shapes, dtypes = orjson.loads(shapes_json), orjson.loads(dtypes_json or "[]")
    except orjson.JSONDecodeError:
        return None
    base = op_name.split("::")[-1]
    if base.startswith("triton_"):
        # Inductor's fused kernels list their buffers without saying which are read and which written, and their
        # names only hint at the fused ops (`..._embedding_rms_norm_0` gathers rows of a table it lists whole);
        # the architecture model (analysis.work.architecture_work) gives their work from the operation they belong to
        return None
    if base == "cat" and dtypes[:1] == ["TensorList"] and elem_bytes_hint and isinstance(shapes[0], list):
        n = sum(_numel(s) for s in shapes[0] if isinstance(s, list) and s and all(isinstance(x, int) for x in s))
        return 0, 2 * n * elem_bytes_hint, n * elem_bytes_hint  # read every input, write the output
    t = _tensor_args(shapes, dtypes)
    if not t:
        return None
    es = t[0][1]
    try:
        if base in ("mm", "bmm", "matmul") and len(t) >= 2:
            return _matmul(t[0][0], t[1][0], es)
        if base in ("addmm", "baddbmm") and len(t) >= 3:  # bias/accumulator first
            return _matmul(t[1][0], t[2][0], t[1][1], extra_bytes=_numel(t[0][0]) * t[0][1])
        if base == "linear" and len(t) >= 2:
            x, w = t[0][0], t[1][0]  # w [n, k]
            bias = _numel(t[2][0]) * t[2][1] if len(t) >= 3 else 0
            return _matmul(x, [w[1], w[0]], es, extra_bytes=bias)
        if "scaled_dot_product" in base or base in ("_flash_attention_forward", "_efficient_attention_forward",
                                                     "_cudnn_attention_forward"):
            return _attention(t)
        if base in ("layer_norm", "native_layer_norm"):
            n = _numel(t[0][0])
            params = sum(_numel(s) * e for s, e in t[1:3])
            return 7 * n, 2 * n * es + params, n * es
        if "rms_norm" in base:
            n = _numel(t[0][0])
            return 4 * n, 2 * n * es + sum(_numel(s) * e for s, e in t[1:2]), n * es
        if base in ("softmax", "_softmax", "log_softmax", "_log_softmax"):
            n = _numel(t[0][0])
            return 5 * n, 2 * n * es, n * es
        if base in ("silu_and_mul", "gelu_and_mul", "gelu_tanh_and_mul"):
            inp = t[1][0] if len(t) >= 2 else t[0][0]  # vLLM's custom op takes (out, input)
            n_out = _numel(inp) // 2
            return 5 * n_out, (_numel(inp) + n_out) * es, n_out * es
        if base.rstrip("_") in _ELEMENTWISE or base in _ELEMENTWISE:
            out_numel = max(_numel(s) for s, _ in t)
            per = _ELEMENTWISE.get(base, _ELEMENTWISE.get(base.rstrip("_"), 1))
            read = sum(_numel(s) * e for s, e in t)
            return per * out_numel, read + out_numel * es, out_numel * es
        if base == "embedding" and len(t) >= 2:
            (w, ew), (idx, ei) = t[0], t[1]
            rows = _numel(idx)
            return 0, rows * w[-1] * ew * 2 + rows * ei, rows * w[-1] * ew
        if base in ("cat",):
            n = sum(_numel(s) * e for s, e in t)
            return 0, 2 * n, n
        if base in ("copy_", "clone", "contiguous"):
            if base == "copy_" and len(t) >= 2:
                return 0, _numel(t[1][0]) * (t[0][1] + t[1][1]), _numel(t[1][0]) * t[0][1]
            return 0, 2 * _numel(t[0][0]) * es, _numel(t[0][0]) * es
        if base in ("reshape_and_cache", "reshape_and_cache_flash") and len(t) >= 2:
            kv = _numel(t[0][0]) * t[0][1] + _numel(t[1][0]) * t[1][1]
            return 0, 2 * kv, kv  # read key and value, write them into the cache blocks
        if base in ("gelu_new", "gelu_fast", "gelu_quick") and len(t) >= 2:   # vLLM's custom op: (out, input)
            n = _numel(t[1][0])
            return 8 * n, 2 * n * t[1][1], n * t[1][1]
        if base == "fused_add_rms_norm" and len(t) >= 3:   # (input, residual, weight): both updated in place
            n = _numel(t[0][0])
            return 5 * n, 4 * n * es + _numel(t[2][0]) * t[2][1], 2 * n * es
        if base in ("fill_", "zero_"):
            return 0, _numel(t[0][0]) * es, _numel(t[0][0]) * es
        if base in ("argmax", "argmin", "amax", "amin", "max", "min", "sum", "mean") and len(t) >= 1:
            n = _numel(t[0][0])
            rows = max(1, n // max(1, t[0][0][-1]))
            out = 8 if base in ("argmax", "argmin") else es   # an int64 index, else a value of the input's dtype
            return n, n * es + out * rows, out * rows
        if base == "gather" and len(t) >= 2:   # (input, dim, index): one element per index
            idx = t[-1][0] if len(t) == 2 else t[1][0]
            n = _numel(idx)
            return 0, n * (es + 8) + n * es, n * es
        if base == "rotary_embedding" and len(t) >= 3:
            q, k = t[1], t[2]
            n = _numel(q[0]) + _numel(k[0])
            return 3 * n, 2 * n * q[1], n * q[1]
    except (IndexError, TypeError, ValueError, ZeroDivisionError):
        return None
    return None


def _attention(t):
    """q [b, h, sq, d], k [b, hk, skv, d], v [b, hk, skv, dv] (SDPA layout). Causal when sq == skv > 1, as in a
    prefill without a cache; a decode query (sq == 1) sees the whole cache."""
    (q, es), (k, _), (v, _) = t[0], t[1], t[2]
    if len(q) != 4 or len(k) != 4:
        return None
    b, h, sq, d = q
    skv, dv = k[2], v[3]
    pairs = sq * skv
    if sq == skv and sq > 1:
        pairs = sq * (sq + 1) / 2
    flops = 2 * b * h * pairs * d + 2 * b * h * pairs * dv
    written = b * h * sq * dv * es
    bytes_ = (_numel(q) + _numel(k) + _numel(v)) * es + written
    return flops, bytes_, written

