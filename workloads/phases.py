"""The one phase marker every backend uses: an NVTX range (domain `tracer`) and a torch.profiler
`record_function` of the same name, so torch.profiler, Nsight Systems and Nsight Compute all see the phases.

Names: `prefill`, `decode`, and one `decode_step` per decode forward pass (inside `decode`).
"""
from __future__ import annotations

import contextlib
import time

NVTX_DOMAIN = "tracer"
PREFILL, DECODE, DECODE_STEP = "prefill", "decode", "decode_step"

try:  # nvtx is a no-op unless a tool (nsys, ncu) is attached, so it is safe to call on any machine
    import nvtx as _nvtx
except ImportError:  # pragma: no cover - depends on the environment
    _nvtx = None


@contextlib.contextmanager
def phase(name: str, clock: list | None = None):
    """Mark `name` for every profiler. If `clock` is given, append (name, start_ns, end_ns) of perf_counter_ns,
    which lets samplers that run on host time (NVML) be placed on the trace's timeline."""
    from torch.profiler import record_function

    nvtx_range = _nvtx.annotate(message=name, domain=NVTX_DOMAIN) if _nvtx else contextlib.nullcontext()
    start = time.perf_counter_ns()
    with nvtx_range, record_function(name):
        yield
    if clock is not None:
        clock.append((name, start, time.perf_counter_ns()))
