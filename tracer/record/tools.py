"""Finding external profilers (nsys, ncu) and running them with one-line errors."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tracer.errors import TracerError

INSTALL = {
    "nsys": "install Nsight Systems (https://developer.nvidia.com/nsight-systems), or point TRACER_NSYS or "
            "--tool-path at the nsys executable",
    "ncu": "install Nsight Compute (https://developer.nvidia.com/nsight-compute), or point TRACER_NCU or "
           "--tool-path at the ncu executable",
}


def find_tool(name: str, explicit: str | None = None) -> str:
    """PATH first, then the TRACER_<NAME> environment variable, then an explicit path."""
    for candidate in (explicit, os.environ.get(f"TRACER_{name.upper()}"), shutil.which(name)):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise TracerError(f"{name} not found: {INSTALL[name]}")


def run_tool(cmd: list[str], what: str, timeout_s: float | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout_s)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stdout.strip().splitlines() if ln.strip()]
        errors = [ln for ln in lines if "error" in ln.lower() or ln.startswith("tracer: error")]
        raise TracerError(f"{what} failed (exit {proc.returncode}): {(errors or lines or ['no output'])[-1].strip()}")
    return proc


def child_record_command(req, out: Path) -> list[str]:
    """This same `tracer record`, run by a profiler in a child process with the CUDA profiler API range."""
    cmd = [sys.executable, "-m", "tracer.cli", "record", "--workload", req.workload.name, "--backend", req.backend,
           "--model", req.model, "--device", req.device, "--dtype", req.dtype, "--profiler", "capture",
           "--warmup", str(req.warmup), "--out", str(out)]
    if req.layers:
        cmd += ["--layers", str(req.layers)]
    if req.backend == "vllm" and req.profiler == "ncu":   # the child brackets this phase's one step
        cmd += ["--ncu-range", req.ncu_range or ("prefill" if req.workload.kind == "prefill" else "decode")]
    if req.backend == "vllm":
        v = req.vllm
        cmd += ["--enforce-eager"] if v.enforce_eager else []
        cmd += ["--enable-prefix-caching"] if v.prefix_caching else []
        for flag, value in (("--gpu-memory-utilization", v.gpu_memory_utilization),
                            ("--max-num-seqs", v.max_num_seqs), ("--max-num-batched-tokens", v.max_num_batched_tokens)):
            if value:
                cmd += [flag, str(value)]
        sizes = v.cudagraph_capture_sizes or (ncu_capture_sizes(req) if req.profiler == "ncu" else None)
        if sizes and not v.enforce_eager:
            cmd += ["--cudagraph-capture-sizes", ",".join(map(str, sizes))]
    return cmd


def ncu_capture_sizes(req) -> tuple[int, ...] | None:
    """Under ncu, vLLM captures CUDA graphs only for the measured step's token count: capturing vLLM's ~67 default
    sizes with every launch intercepted outlasted 260 s on the H100. The measured step's graph is the same one a
    default engine replays for that many tokens (vLLM pads a step up to the next captured size)."""
    wl = req.workload
    tokens = wl.batch * wl.prompt_tokens if (req.ncu_range or ("prefill" if wl.kind == "prefill" else "decode")) \
        == "prefill" else wl.batch
    return (tokens,) if tokens <= 512 else None
