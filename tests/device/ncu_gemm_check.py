"""Unit check of Nsight Compute's counters and NVTX filter: one bf16 GEMM of known FLOPs inside the CUDA profiler
range and inside the NVTX range `decode` of domain `tracer`, as tracer's phases mark it.
Run as: ncu --profile-from-start off --nvtx --nvtx-include PATTERN --metrics ... python tests/device/ncu_gemm_check.py"""
import torch

from workloads.phases import phase

if __name__ == "__main__":
    m, n, k = 2048, 4096, 1024
    a = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(k, n, device="cuda", dtype=torch.bfloat16)
    torch.mm(a, b)
    torch.cuda.synchronize()
    with torch.cuda.profiler.profile(), phase("decode"):
        torch.mm(a, b)
        torch.cuda.synchronize()
    print(f"gemm {m}x{n}x{k}: {2 * m * n * k} FLOPs, {2 * (m * k + k * n + m * n)} bytes at least")
