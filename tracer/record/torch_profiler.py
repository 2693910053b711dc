"""torch.profiler driver: the profiler context for a measured run, and the gzipped Chrome trace it writes.

The trace is written once, atomically, with two additions Perfetto shows well: counter tracks of GPU memory and
utilisation sampled by NVML during the run, placed on the trace's clock through the `prefill` annotation.
"""
from __future__ import annotations

import gzip
import os
import tempfile
from pathlib import Path

import orjson

from tracer.record.sidecar import write_atomic


def torch_profile(device: str):
    import torch
    from torch.profiler import ProfilerActivity

    activities = [ProfilerActivity.CPU]
    if device.startswith("cuda"):
        activities.append(ProfilerActivity.CUDA)
    return torch.profiler.profile(activities=activities, record_shapes=True, with_flops=True)


def export_chrome_trace(prof, out_path: str | Path, nvml_samples=(), phase_clock=()) -> Path:
    """Write the profiler's trace to `out_path` (gzip when it ends in .gz) with NVML counter tracks added."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, raw = tempfile.mkstemp(suffix=".json", dir=out_path.parent, prefix=".raw-")
    os.close(fd)
    try:
        prof.export_chrome_trace(raw)
        trace = orjson.loads(Path(raw).read_bytes())
    finally:
        os.unlink(raw)
    trace["traceEvents"].extend(nvml_counter_events(trace["traceEvents"], nvml_samples, phase_clock))
    trace["traceEvents"].extend(phase_track_events(trace["traceEvents"]))
    data = orjson.dumps(trace)
    write_atomic(out_path, gzip.compress(data, compresslevel=6) if out_path.name.endswith(".gz") else data)
    return out_path


PHASE_TRACK_TID = 999_999_999
PHASE_NAMES = ("prefill", "decode", "decode_step")


def phase_track_events(events: list) -> list:
    """Our phase ranges again, on a track of their own ("tracer phases") in the process that ran them, so
    Perfetto shows prefill/decode/steps above the op slices. Category `tracer_phase`: parsers read the
    original user annotations, not these copies."""
    phases = [e for e in events if e.get("cat") == "user_annotation" and e.get("name") in PHASE_NAMES]
    if not phases:
        return []
    pid = phases[0].get("pid", 0)
    out = [{"ph": "M", "name": "thread_name", "pid": pid, "tid": PHASE_TRACK_TID, "args": {"name": "tracer phases"}},
           {"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": PHASE_TRACK_TID, "args": {"sort_index": -1}}]
    out += [{"ph": "X", "cat": "tracer_phase", "name": e["name"], "pid": pid, "tid": PHASE_TRACK_TID, "ts": e["ts"],
             "dur": e["dur"]} for e in phases]
    return out


def nvml_counter_events(events: list, nvml_samples, phase_clock) -> list:
    """Chrome counter events ("ph": "C") for NVML samples, aligned on the first `prefill` annotation."""
    if not nvml_samples or not phase_clock:
        return []
    prefill_host_ns = next((start for name, start, _ in phase_clock if name == "prefill"), None)
    anchor = next((e for e in events if e.get("name") == "prefill" and e.get("cat") == "user_annotation"), None)
    if prefill_host_ns is None or anchor is None:
        return []
    offset_us = float(anchor["ts"]) - prefill_host_ns / 1e3
    pid = anchor.get("pid", 0)
    out = []
    for t_ns, util, used in nvml_samples:
        ts = round(t_ns / 1e3 + offset_us, 3)
        out.append({"ph": "C", "name": "GPU utilization (NVML, %)", "pid": pid, "ts": ts, "args": {"util": util}})
        out.append({"ph": "C", "name": "GPU memory used (NVML, MiB)", "pid": pid, "ts": ts,
                    "args": {"MiB": round(used / 2**20, 1)}})
    return out
