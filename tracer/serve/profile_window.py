"""`tracer serve --backend hf --profile SECONDS [--profile-delay D]`: a torch.profiler window over SECONDS of
batches, from the first batch that starts D seconds after the first batch (so a load's warm-up burst stays out),
written as a Chrome trace that `tracer analyze` reads, with what a latency spike needs beside the kernels:

- one track per request with its `queue`, `prefill (request)` and `decode (request)` spans;
- a `running batch size` counter track.

The profiler starts and stops in the batcher's one worker thread, so it records every batch in the window. Host
times (perf_counter_ns) are placed on the trace's clock by the first `prefill` phase, whose host start we took.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from tracer.serve.window_tracks import batch_size_counter

REQUEST_TID_BASE = 3_000_000_000 // 2   # request tracks stay integers below Perfetto's uint32 tids, off kernel tids


def request_events(requests: list, batches: list, offset_us: float, pid) -> list:
    """Spans per request and the batch-size counter, on the trace clock (`offset_us` + host us)."""
    def us(ns):
        return round(ns / 1e3 + offset_us, 3)

    out = []
    for k, r in enumerate(sorted(requests, key=lambda r: r.arrived_ns)):
        tid = REQUEST_TID_BASE + k
        out.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid,
                    "args": {"name": f"request {k} ({len(r.prompt)} prompt tokens)"}})
        for name, a, b in (("queue", r.arrived_ns, r.batch_start_ns), ("prefill (request)", r.batch_start_ns,
                                                                       r.first_token_ns),
                           ("decode (request)", r.first_token_ns, r.done_ns)):
            if a is not None and b is not None and b >= a:
                out.append({"ph": "X", "cat": "tracer_request", "name": name, "pid": pid, "tid": tid, "ts": us(a),
                            "dur": round((b - a) / 1e3, 3), "args": {"output_tokens": len(r.output_ids)}})
    for start_ns, end_ns, size in batches:
        out += batch_size_counter(pid, us(start_ns), us(end_ns), size)
    return out


def profiled(generate, seconds: float, out_path: str | Path, device: str, on_written=None, delay_s: float = 0.0):
    """`generate` wrapped so the batches of `seconds` run under torch.profiler, from the first batch that starts
    `delay_s` after the server's first batch.
    The window closes after the first batch that ends past `seconds`, or at `run.close_window()` once `seconds`
    have passed with no batch (the batcher calls it when idle), or at `close_window(force=True)` when the server
    stops. Always in the batcher's worker thread, where it started: Kineto will not stop a profiler from another
    thread, and a server stopped with its window open crashed at exit (H200, 2026-12-02). Then the trace is
    written and `on_written(path, stall)` called (the sidecar), `stall` the seconds the batcher spent on it."""
    from tracer.recording.torch_profiler import torch_profile
    state = {"prof": None, "t0": None, "first": None, "done": False, "requests": [], "batches": [], "clock": []}

    def close_window(force: bool = False) -> bool:
        """Whether the window is over (closed now or before); False while it is still to come or open."""
        if state["done"]:
            return True
        if state["prof"] is None or not (force or time.perf_counter() - state["t0"] >= seconds):
            return False
        state["done"], generate.clock = True, None
        t0 = time.perf_counter()
        state["prof"].stop()
        t1 = time.perf_counter()
        path = write_window(state["prof"], Path(out_path), state)
        # the batcher serves nothing meanwhile (and the GIL starves token streaming): latencies measured across
        # these seconds are the profiler's, so they are said, and kept in the sidecar
        stall = {"profiler_stop_s": round(t1 - t0, 3), "trace_write_s": round(time.perf_counter() - t1, 3)}
        if on_written:
            on_written(path, stall)
        print(f"tracer serve: wrote the profiled window ({len(state['batches'])} batch(es), "
              f"{len(state['requests'])} requests) to {path}; the server stalled {sum(stall.values()):.1f} s "
              f"(profiler stop {stall['profiler_stop_s']:.1f} s, trace write {stall['trace_write_s']:.1f} s)",
              file=sys.stderr, flush=True)
        return True

    def run(batch, emit):
        if state["first"] is None:
            state["first"] = time.perf_counter()
        if state["done"] or (state["prof"] is None and time.perf_counter() - state["first"] < delay_s):
            return generate(batch, emit)
        if state["prof"] is None:
            state["prof"] = torch_profile(device)
            state["prof"].start()
            state["t0"] = time.perf_counter()
            generate.clock = state["clock"]
        start_ns = time.perf_counter_ns()
        try:
            generate(batch, emit)
        finally:
            state["requests"] += batch
            state["batches"].append((start_ns, time.perf_counter_ns(), len(batch)))
            close_window()

    run.close_window = close_window
    return run


def write_window(prof, out_path: Path, state: dict) -> Path:
    from tracer.recording.torch_profiler import profiler_events, write_trace
    trace = profiler_events(prof, out_path.parent)
    events = trace.get("traceEvents", [])
    prefill = next((e for e in events if e.get("cat") == "user_annotation" and e.get("name") == "prefill"), None)
    host = next((start for name, start, _ in state["clock"] if name == "prefill"), None)
    if prefill is not None and host is not None:
        offset_us = float(prefill["ts"]) - host / 1e3
        events += request_events(state["requests"], state["batches"], offset_us, prefill.get("pid", 0))
    trace["traceEvents"] = events
    return write_trace(trace, out_path)
