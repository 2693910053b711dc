"""What both servers' profiled windows add to and beside their traces, so a window of HF and one of vLLM read alike
in Perfetto, in `tracer analyze` and in tests:

- a `running batch size` counter track (requests in the batch or step), up at its start, back to 0 at its end;
- a sidecar naming the model, dtype and server options: `tracer analyze` models the kernels that carry no shapes
  (vLLM's CUDA-graph replays) from it, as it does for `tracer record`'s traces.
"""
from __future__ import annotations

from pathlib import Path

BATCH_SIZE_TRACK = "running batch size"


def batch_size_counter(pid, start_us: float, end_us: float, requests: int) -> list[dict]:
    return [{"ph": "C", "name": BATCH_SIZE_TRACK, "pid": pid, "ts": start_us, "args": {"requests": requests}},
            {"ph": "C", "name": BATCH_SIZE_TRACK, "pid": pid, "ts": end_us, "args": {"requests": 0}}]


def write_window_sidecar(trace_path: str | Path, backend: str, opts, stall: dict | None = None) -> Path:
    """`opts`: the server's ServeOptions; `stall`: seconds the server stopped serving to close the window. No
    device entry: the trace's own device properties say it, and reading them here would start CUDA in a process
    (vLLM's parent) that otherwise never touches the GPU."""
    from tracer.io.sidecar import write_sidecar
    from tracer.recording.environment import library_versions
    from workloads.models import model_config
    config = model_config(opts.model, opts.layers)
    server = {"window_s": opts.profile_s, "window_delay_s": opts.profile_delay_s, "max_batch": opts.max_batch}
    if backend == "hf":
        server |= {"max_wait_ms": opts.max_wait_ms, "max_queue": opts.max_queue, "sdpa_backend": opts.sdpa_backend}
    if stall:
        server["window_stall"] = stall
    return write_sidecar(trace_path, {
        "tracer_sidecar_version": 1, "backend": backend, "profiler": "torch", "serve": server,
        "model": {"name": opts.model, "layers_override": opts.layers, "dtype": opts.resolved_dtype(),
                  "config": config.to_dict() if hasattr(config, "to_dict") else {}},
        "versions": library_versions()})
