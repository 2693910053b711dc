"""torch's scaled-dot-product attention: fixing its backend (`--sdpa-backend` of `tracer record` and `tracer serve`)
and finding out which backend it actually ran.

Why it matters: on the H200 (torch 2.11) `auto` picks cuDNN for HF decode without an attention mask, which builds
a plan for every new (batch, KV length) it meets, ~4.6 ms of host time a call, ~55 ms a gpt2 decode step, until
every shape has been met once."""
from __future__ import annotations

import contextlib

from tracer.errors import TracerError

SDPA_BACKENDS = ("auto", "flash", "efficient", "cudnn", "math")

# the ATen op each backend runs under aten::scaled_dot_product_attention
_BACKEND_OPS = {
    "aten::_scaled_dot_product_cudnn_attention": "cudnn",
    "aten::_scaled_dot_product_flash_attention": "flash",
    "aten::_scaled_dot_product_flash_attention_for_cpu": "flash",
    "aten::_scaled_dot_product_efficient_attention": "efficient",
    "aten::_scaled_dot_product_attention_math": "math",
    "aten::_scaled_dot_product_fused_attention_overrideable": "overrideable",
}


def sdpa_context(backend: str):
    """torch's SDPA limited to one backend ("auto": torch's own choice)."""
    if backend == "auto":
        return contextlib.nullcontext()
    if backend not in SDPA_BACKENDS:
        raise TracerError(f"--sdpa-backend {backend}: expected one of {', '.join(SDPA_BACKENDS)}")
    from torch.nn.attention import SDPBackend, sdpa_kernel
    return sdpa_kernel({"flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION,
                        "cudnn": SDPBackend.CUDNN_ATTENTION, "math": SDPBackend.MATH}[backend])


@contextlib.contextmanager
def sdpa_backend(backend: str):
    """`sdpa_context`, with torch's "No available kernel" (the backend cannot run this model, dtype or device) as
    one line that names the option."""
    try:
        with sdpa_context(backend):
            yield
    except RuntimeError as e:
        text = str(e).lower()
        if "no available kernel" not in text and "no viable backend" not in text:
            raise
        raise TracerError(f"--sdpa-backend {backend}: torch has no {backend} attention kernel for this model, "
                          "dtype and device; try auto") from None


def backends_in_order(op_names: list[str]) -> list[str]:
    """The SDPA backend of each attention call, in call order, from the op names a profiler saw in order."""
    return [_BACKEND_OPS[n] for n in op_names if n in _BACKEND_OPS]


def backend_per_phase(op_names: list[str], layers: int) -> dict:
    """{"prefill": backend, "decode": backend} of a run of one prefill and decode steps: its first `layers`
    attention calls are the prefill's. "none" where no SDPA call ran (eager attention)."""
    calls = backends_in_order(op_names)
    name = lambda xs: "+".join(dict.fromkeys(xs)) or "none"   # noqa: E731
    return {"prefill": name(calls[:layers]), "decode": name(calls[layers:])}


def probe_backends(run, layers: int) -> dict:
    """Run `run()` (a prefill and at least one decode step) under a CPU-only torch.profiler and return which SDPA
    backend each phase used (the op names are all it needs; no CUDA activity is traced)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run()
    events = sorted(prof.events(), key=lambda e: e.time_range.start)
    return backend_per_phase([e.name for e in events], layers)


def describe(used: dict) -> str:
    """{"prefill": "cudnn", "decode": "cudnn"} -> "cudnn"; differing phases -> "prefill cudnn, decode flash"."""
    values = [v for v in used.values() if v]
    if values and all(v == values[0] for v in values):
        return values[0]
    return ", ".join(f"{k} {v}" for k, v in used.items() if v)
