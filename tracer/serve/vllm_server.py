"""`tracer serve --backend vllm`: vLLM's own OpenAI-compatible API server (not a re-implementation) on the same
preset model (saved once with seeded random weights), with tracer's defaults: no tokenizer (prompts are token ids),
prefix caching off unless asked, 1 GiB of KV cache and 0.3 of memory on the CPU.

Its log goes to a file; a server that exits before it answers /health is reported in one line with the cause.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

from tracer.errors import TracerError


def vllm_command(model_dir: str, served_name: str, host: str, port: int, device: str, dtype: str, max_len: int,
                 max_num_seqs: int | None, prefix_caching: bool, enforce_eager: bool,
                 gpu_memory_utilization: float | None, profiler_dir: str | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model_dir,
           "--served-model-name", served_name, "--host", host, "--port", str(port), "--skip-tokenizer-init",
           "--dtype", dtype, "--seed", "0", "--max-model-len", str(max_len),
           "--gpu-memory-utilization", str(gpu_memory_utilization or (0.3 if device == "cpu" else 0.5)),
           "--enable-prefix-caching" if prefix_caching else "--no-enable-prefix-caching"]
    if enforce_eager:
        cmd.append("--enforce-eager")
    if max_num_seqs:
        cmd += ["--max-num-seqs", str(max_num_seqs)]
    if profiler_dir:   # enables /start_profile and /stop_profile
        from tracer.serve.vllm_window import profiler_config
        cmd += ["--profiler-config", profiler_config(profiler_dir)]
    return cmd


def wait_ready(proc: subprocess.Popen, url: str, log_path: str, timeout_s: float) -> None:
    """Return once GET url answers 200; raise a one-line TracerError if the server exits or never answers."""
    from workloads.held_stderr import root_cause
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            with open(log_path, errors="replace") as f:
                cause = root_cause(f) or f"exit status {proc.returncode}"
            raise TracerError(f"vLLM server failed to start: {cause} (vLLM's log: {log_path})")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    stop(proc)
    raise TracerError(f"vLLM server did not answer {url} within {timeout_s:.0f} s (vLLM's log: {log_path})")


def stop(proc: subprocess.Popen, grace_s: float = 30) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_vllm(opts, enable_prefix_caching: bool = False, enforce_eager: bool = False,
               max_num_seqs: int | None = None, gpu_memory_utilization: float | None = None,
               max_model_len: int | None = None, startup_timeout_s: float = 900) -> tuple[subprocess.Popen, str]:
    """Start the server for ServeOptions `opts`; returns the process (ready) and its log path."""
    from workloads.models import context_tokens, model_config, saved_checkpoint
    from workloads.vllm_start import ipc_folder, require_vllm
    require_vllm()
    ipc_folder()   # (in this process's environment, which the server's copies)
    dtype = opts.resolved_dtype()
    model_dir = saved_checkpoint(opts.model, opts.layers, dtype)
    max_len = max_model_len or context_tokens(model_config(opts.model, opts.layers)) or 2048
    env = dict(os.environ)
    profiler_dir = tempfile.mkdtemp(prefix="tracer-vllm-profile-") if opts.profile_s else None
    if opts.device == "cpu":
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    cmd = vllm_command(model_dir, opts.model, opts.host, opts.port, opts.device, dtype, max_len,
                       max_num_seqs, enable_prefix_caching, enforce_eager, gpu_memory_utilization, profiler_dir)
    log_path = tempfile.NamedTemporaryFile(prefix="tracer-vllm-serve-", suffix=".log", delete=False).name
    with open(log_path, "wb") as log:
        # its own process group: Ctrl-C in the terminal reaches tracer, which then stops vLLM in order
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        wait_ready(proc, f"http://{opts.host}:{opts.port}/health", log_path, startup_timeout_s)
    except BaseException:
        stop(proc)
        raise
    return proc, log_path, profiler_dir


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def serve_vllm(opts, **kw) -> None:
    # Ctrl-C and SIGTERM stop vLLM in order, even when started with SIGINT ignored (a background job of a script)
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    proc, log_path, profiler_dir = start_vllm(opts, **kw)
    base_url = f"http://{opts.host}:{opts.port}"
    print(f"tracer serve: vllm {opts.model} on {opts.device} at {base_url}/v1/completions "
          f"(log: {log_path})", flush=True)
    window = None
    if opts.profile_s:
        from tracer.serve.vllm_window import start_window_thread
        from tracer.serve.window_tracks import write_window_sidecar
        window = start_window_thread(base_url, opts.profile_s, profiler_dir, opts.window_out("vllm"),
                                     opts.profile_delay_s,
                                     on_written=lambda path, stall: write_window_sidecar(path, "vllm", opts, stall))
    try:
        proc.wait()
    finally:
        if window is not None:   # a window being written is finished first (its trace needs the server)
            window[1].set()
            window[0].join(timeout=120)
        stop(proc)
    if proc.returncode not in (0, -signal.SIGINT, 130):
        raise TracerError(f"vLLM server exited with status {proc.returncode} (vLLM's log: {log_path})")
