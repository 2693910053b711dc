"""torch.profiler driver: the profiler context for a measured run, and the gzipped Chrome trace it writes.

Every Chrome trace we write (ours and vLLM's) goes through write_trace: once, atomically, with what
tracer.recording.perfetto_layout adds (the phase track, NVML counter tracks, overlap lanes).
"""
from __future__ import annotations

import gzip
import os
import tempfile
from pathlib import Path

import orjson

from tracer.recording.perfetto_layout import perfetto_ready
from tracer.io.atomic import write_atomic


def torch_profile(device: str):
    import torch
    from torch.profiler import ProfilerActivity

    activities = [ProfilerActivity.CPU]
    if device.startswith("cuda"):
        activities.append(ProfilerActivity.CUDA)
    return torch.profiler.profile(activities=activities, record_shapes=True, with_flops=True)


def export_chrome_trace(prof, out_path: str | Path, nvml_samples=(), phase_clock=(), unix_offset_ns=None) -> Path:
    """Write the profiler's trace to `out_path` (gzip when it ends in .gz), laid out for Perfetto
    (tracer.recording.perfetto_layout)."""
    out_path = Path(out_path)
    return write_trace(profiler_events(prof, out_path.parent), out_path, nvml_samples, phase_clock, unix_offset_ns)


def profiler_events(prof, scratch_dir: Path) -> dict:
    """The profiler's Chrome trace, decoded (torch writes it only to a file: a temporary one in `scratch_dir`)."""
    scratch_dir.mkdir(parents=True, exist_ok=True)
    fd, raw = tempfile.mkstemp(suffix=".json", dir=scratch_dir, prefix=".raw-")
    os.close(fd)
    try:
        prof.export_chrome_trace(raw)
        return orjson.loads(Path(raw).read_bytes())
    finally:
        os.unlink(raw)


def read_trace(path: Path) -> dict:
    """A Chrome trace another process wrote (vLLM's engine), decoded; gzip or not, told by its first bytes."""
    raw = Path(path).read_bytes()
    return orjson.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)


def write_trace(trace: dict, out_path: Path, nvml_samples=(), phase_clock=(), unix_offset_ns=None) -> Path:
    """A decoded Chrome trace, laid out for Perfetto, written to `out_path` (gzip when it ends in .gz)."""
    trace["traceEvents"] = perfetto_ready(trace.get("traceEvents", []), nvml_samples, phase_clock,
                                          trace.get("baseTimeNanoseconds"), unix_offset_ns)
    data = orjson.dumps(trace)
    write_atomic(out_path, gzip.compress(data, compresslevel=6) if out_path.name.endswith(".gz") else data)
    return out_path
