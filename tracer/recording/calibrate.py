"""`tracer calibrate`: measure the achievable peaks of the local GPU (dense GEMM per dtype, device-to-device copy
bandwidth from DRAM and from L2) and store them, so the roofline can use what this card really reaches instead of
the datasheet (which gives no L2 bandwidth at all)."""
from __future__ import annotations

import os
from pathlib import Path

import orjson

from tracer.errors import TracerError
from tracer.io.atomic import write_atomic


def peaks_dir() -> Path:
    return Path(os.environ.get("TRACER_PEAKS_DIR", Path.home() / ".cache" / "tracer" / "peaks"))


def calibrate(device: str = "cuda", gemm_n: int = 8192, copy_bytes: int = 2 * 2**30, repeats: int = 20) -> dict:
    import torch

    if not torch.cuda.is_available():
        raise TracerError("tracer calibrate needs a CUDA GPU; none is visible to torch")
    dev = torch.device(device)
    name = torch.cuda.get_device_name(dev)
    result = {"device_name": name, "method": f"median of {repeats} timed runs after warm-up, CUDA events",
              "gemm_n": gemm_n, "copy_bytes": copy_bytes}
    for dtype_name, dtype in (("bfloat16", torch.bfloat16), ("float16", torch.float16),
                              ("float32", torch.float32), ("tf32", torch.float32)):
        torch.backends.cuda.matmul.allow_tf32 = dtype_name == "tf32"
        a = torch.randn(gemm_n, gemm_n, device=dev, dtype=dtype)  # random data: zeros run faster than real data
        b = torch.randn(gemm_n, gemm_n, device=dev, dtype=dtype)
        ms = _median_ms(lambda a=a, b=b: torch.mm(a, b), repeats)
        result[f"gemm_{dtype_name}_tflops"] = 2 * gemm_n**3 / (ms * 1e-3) / 1e12
    torch.backends.cuda.matmul.allow_tf32 = False
    result.update(fp8_gemm_peak(dev, gemm_n, repeats))
    src = torch.empty(copy_bytes // 4, device=dev, dtype=torch.float32).uniform_()
    dst = torch.empty_like(src)
    ms = _median_ms(lambda: dst.copy_(src), repeats)
    result["dram_gbps"] = 2 * copy_bytes / (ms * 1e-3) / 1e9  # bytes read plus bytes written
    del src, dst
    result.update(l2_bandwidth(dev, repeats))
    return result


def fp8_gemm_peak(dev, gemm_n: int, repeats: int) -> dict:
    """Dense FP8 (e4m3) GEMM rate through torch._scaled_mm (cuBLASLt, per-tensor scales, bf16 out), the roof of
    quantized GEMMs; {} on a GPU without FP8 tensor cores (before Ada/Hopper) or a torch without _scaled_mm."""
    import torch

    if torch.cuda.get_device_capability(dev) < (8, 9) or not hasattr(torch, "_scaled_mm"):
        return {}
    a = torch.randn(gemm_n, gemm_n, device=dev).to(torch.float8_e4m3fn)
    b = torch.randn(gemm_n, gemm_n, device=dev).to(torch.float8_e4m3fn).t()   # column-major, as cuBLASLt wants
    one = torch.ones((), device=dev, dtype=torch.float32)
    ms = _median_ms(lambda: torch._scaled_mm(a, b, scale_a=one, scale_b=one, out_dtype=torch.bfloat16), repeats)
    return {"gemm_float8_e4m3fn_tflops": 2 * gemm_n**3 / (ms * 1e-3) / 1e12}


def l2_bandwidth(dev, repeats: int, copies: int = 64) -> dict:
    """Copy bandwidth (read + write) over working sets from 1/32 of the L2 to twice its size. A copy of a few MB
    takes microseconds, so `copies` of them run as one CUDA graph (no launch gaps) per timed replay. The L2 figure
    is the best of the working sets that fit in half the L2 (a lower bound: the gaps between graph nodes
    count against it); the larger sizes show the fall to DRAM speed."""
    import torch

    l2 = torch.cuda.get_device_properties(dev).L2_cache_size
    curve = {}
    for frac in (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1, 2):
        n = int(l2 * frac) // 2 // 4 * 4   # bytes of the source; the destination as many
        src = torch.empty(n // 4, device=dev, dtype=torch.float32).uniform_()
        dst = torch.empty_like(src)
        graph = torch.cuda.CUDAGraph()
        torch.mul(src, 1.0, out=dst)   # an elementwise kernel, not cudaMemcpy: ncu can count the same kernel
        torch.cuda.synchronize()
        with torch.cuda.graph(graph):
            for _ in range(copies):
                torch.mul(src, 1.0, out=dst)
        ms = _median_ms(graph.replay, repeats)
        curve[str(2 * n)] = 2 * n * copies / (ms * 1e-3) / 1e9
        del graph, src, dst
    fitting = [gbps for ws, gbps in curve.items() if int(ws) <= l2 // 2]
    return {"l2_bytes": l2, "l2_gbps": max(fitting), "copy_gbps_by_working_set_bytes": curve}


def _median_ms(fn, repeats: int) -> float:
    import torch

    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


def save_calibration(result: dict, out: str | Path | None = None) -> Path:
    path = Path(out) if out else peaks_dir() / (result["device_name"].replace(" ", "_") + ".json")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, orjson.dumps(result, option=orjson.OPT_INDENT_2))
    return path
