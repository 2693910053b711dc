"""L2 check for `tracer calibrate`: the same L2-resident copy the calibration times (source + destination a quarter
of the L2), run 8 times inside the CUDA profiler range, for ncu to count `lts__t_bytes` and DRAM bytes of each.
Run as: ncu --profile-from-start off --cache-control none --clock-control none --metrics ... python THIS"""
import torch

if __name__ == "__main__":
    l2 = torch.cuda.get_device_properties(0).L2_cache_size
    n = l2 // 2 // 2 // 4 * 4
    src = torch.empty(n // 4, device="cuda", dtype=torch.float32).uniform_()
    dst = torch.empty_like(src)
    for _ in range(3):
        torch.mul(src, 1.0, out=dst)
    torch.cuda.synchronize()
    with torch.cuda.profiler.profile():
        for _ in range(8):
            torch.mul(src, 1.0, out=dst)
        torch.cuda.synchronize()
    print(f"L2 {l2} bytes; copy of {n} bytes: {2 * n} bytes read + written per copy")
