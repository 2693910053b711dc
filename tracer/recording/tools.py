"""The child `tracer record` run that nsys and ncu profile (finding and running the tools is tracer.tools)."""
from __future__ import annotations

import sys
from pathlib import Path



def child_record_command(req, out: Path) -> list[str]:
    """This same `tracer record`, run by a profiler in a child process with the CUDA profiler API range."""
    cmd = [sys.executable, "-m", "tracer.cli", "record", "--workload", req.workload.name, "--backend", req.backend,
           "--model", req.model, "--device", req.device, "--dtype", req.dtype, "--profiler", "capture",
           "--warmup", str(req.warmup), "--out", str(out)]
    if req.layers:
        cmd += ["--layers", str(req.layers)]
    if req.backend == "hf" and req.sdpa_backend != "auto":
        cmd += ["--sdpa-backend", req.sdpa_backend]
    if req.backend == "vllm" and req.profiler == "ncu":   # the child brackets this phase's one step
        cmd += ["--ncu-range", req.ncu_range or ("prefill" if req.workload.kind == "prefill" else "decode")]
    if req.backend == "vllm":
        v = req.vllm
        cmd += ["--enforce-eager"] if v.enforce_eager else []
        cmd += ["--enable-prefix-caching"] if v.prefix_caching else []
        cmd += ["--moe-routing"] if v.moe_routing else []
        for flag, value in (("--gpu-memory-utilization", v.gpu_memory_utilization),
                            ("--quantization", v.quantization), ("--kv-cache-dtype", v.kv_cache_dtype),
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
