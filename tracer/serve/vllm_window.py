"""`tracer serve --backend vllm --profile SECONDS`: a torch.profiler window of vLLM's own API server under load,
through its profiler endpoints (POST /start_profile, /stop_profile; the server was started with
`--profiler-config`).

The window opens when vLLM first reports a running request (its Prometheus gauge `vllm:num_requests_running`),
or `--profile-delay` seconds later, so it covers the server under load, not the idle wait for the first client
(nor, with a delay, a load's warm-up burst). vLLM's engine writes the trace;
tracer adds counter tracks read from vLLM's step annotations (`execute_context_<n>(<tokens>)_generation_<m>(...)`):
the running batch size (requests in the step) and the step's prefill and decode tokens. vLLM's trace names no
request, so per-request spans exist only in the HF server's window (tracer/serve/profile_window.py).
"""
from __future__ import annotations

import json
import sys
import threading
import time
import urllib.request
from pathlib import Path

from tracer.schema import VLLM_STEP
from tracer.serve.window_tracks import batch_size_counter


def profiler_config(trace_dir: str) -> str:
    """The `--profiler-config` JSON: torch profiler into `trace_dir`, no Python stacks (they slow every step), the
    engine's trace only (the API server's own CPU trace, `ignore_frontend`, would add a second file and overhead)."""
    return json.dumps({"profiler": "torch", "torch_profiler_dir": str(Path(trace_dir).resolve()),
                       "ignore_frontend": True,
                       "torch_profiler_with_stack": False, "torch_profiler_record_shapes": False,
                       "torch_profiler_dump_cuda_time_total": False})


def running_requests(metrics_text: str) -> float:
    """The value of vLLM's `vllm:num_requests_running` gauge (summed over its label sets) in a /metrics page."""
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith("vllm:num_requests_running"):
            try:
                total += float(line.rsplit(" ", 1)[1])
            except (IndexError, ValueError):
                pass
    return total


def step_counters(events: list) -> list:
    """Counter events, one per vLLM step annotation: requests in the step and its prefill and decode tokens."""
    out = []
    for e in events:
        if e.get("ph") != "X" or e.get("cat") != "user_annotation":
            continue
        m = VLLM_STEP.match(str(e.get("name", "")))
        if not m:
            continue
        n_prefill, prefill_tok, n_decode, decode_tok = (int(g) for g in m.groups())
        start, end, pid = float(e["ts"]), float(e["ts"]) + float(e.get("dur", 0)), e.get("pid", 0)
        out += batch_size_counter(pid, start, end, n_prefill + n_decode)
        for ts, ptok, dtok in ((start, prefill_tok, decode_tok), (end, 0, 0)):
            out.append({"ph": "C", "name": "step tokens", "pid": pid, "ts": ts,
                        "args": {"prefill": ptok, "decode": dtok}})
    return out


def wait_for_trace(trace_dir: Path, since: float, timeout_s: float) -> Path | None:
    """The engine's trace file once written and no longer growing (the engine writes it after /stop_profile)."""
    from workloads.vllm_engine import engine_profiler_traces
    deadline, last = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        found = engine_profiler_traces(trace_dir, since)
        if found:
            p = found[-1]
            size = p.stat().st_size
            if last == (p, size) and size > 0:
                return p
            last = (p, size)
        time.sleep(1)
    return None


def write_window(raw: Path, out_path: Path) -> Path:
    from tracer.recording.torch_profiler import read_trace, write_trace
    trace = read_trace(raw)
    trace["traceEvents"] = trace.get("traceEvents", []) + step_counters(trace.get("traceEvents", []))
    return write_trace(trace, out_path)


def _post(url: str) -> None:
    req = urllib.request.Request(url, data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=600) as r:
        r.read()


def profile_when_busy(base_url: str, seconds: float, trace_dir: str, out_path: str, stop: threading.Event,
                      delay_s: float = 0.0, on_written=None, poll_s: float = 0.2) -> None:
    """Wait for load (and `delay_s` more), profile `seconds` of it, write the trace to `out_path` (then
    `on_written(path, stall)`: the sidecar, with the seconds /stop_profile took); one line on stderr either way."""
    try:
        while not stop.is_set():
            try:
                with urllib.request.urlopen(f"{base_url}/metrics", timeout=5) as r:
                    if running_requests(r.read().decode(errors="replace")) > 0:
                        break
            except OSError:
                pass
            time.sleep(poll_s)
        if stop.wait(delay_s):   # with no delay: whether stop was already set
            return
        since = time.time() - 1
        _post(f"{base_url}/start_profile")
        stop.wait(seconds)
        t0 = time.monotonic()
        _post(f"{base_url}/stop_profile")   # the engine writes its trace meanwhile, and serves nothing
        stall = {"stop_profile_s": round(time.monotonic() - t0, 3)}
        raw = wait_for_trace(Path(trace_dir), since, 300)
        if raw is None:
            print(f"tracer serve: vLLM wrote no trace into {trace_dir}", file=sys.stderr, flush=True)
            return
        path = write_window(raw, Path(out_path))
        if on_written:
            on_written(path, stall)
        print(f"tracer serve: wrote the profiled window ({seconds:g} s under load) to {path}; /stop_profile took "
              f"{stall['stop_profile_s']:.1f} s", file=sys.stderr, flush=True)
    except Exception as e:   # the server keeps serving; the window is reported lost in one line
        print(f"tracer serve: the profiled window failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)


def start_window_thread(base_url: str, seconds: float, trace_dir: str, out_path: str, delay_s: float = 0.0,
                        on_written=None):
    stop = threading.Event()
    t = threading.Thread(target=profile_when_busy,
                         args=(base_url, seconds, trace_dir, out_path, stop, delay_s, on_written),
                         name="tracer-vllm-profile-window", daemon=True)
    t.start()
    return t, stop
