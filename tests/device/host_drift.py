"""Device experiment (#27): where does the drift of launch-bound figures come from on a lent H200? (Interleaved
rounds in one process moved HF decode 7.2-8.8 ms/token and vLLM's 1.8-2.9 ms within a minute, tracer's loop and
the users' call alike.) Per CPU: a pure-Python probe pinned to it; then the HF annotated decode pinned to the
fastest and the slowest CPUs in turn, with the SM clock and the CPU MHz beside each round.
Usage: PYTHONPATH=. python3 tests/device/host_drift.py [--rounds 4]"""
import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from interleaved_timing import probe_ms  # noqa: E402


def sm_clock() -> str:
    return subprocess.run(["nvidia-smi", "--query-gpu=clocks.sm,clocks.mem,power.draw,pstate", "--format=csv,noheader"],
                          capture_output=True, text=True).stdout.strip()


def cpu_mhz(cpu: int) -> str:
    try:
        return open(f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_cur_freq").read().strip()
    except OSError:
        lines = [ln for ln in open("/proc/cpuinfo") if ln.startswith("cpu MHz")]
        return lines[cpu].split(":")[1].strip() if cpu < len(lines) else "?"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    per_cpu = {}
    for c in cpus:
        os.sched_setaffinity(0, {c})
        per_cpu[c] = statistics.median(probe_ms() for _ in range(3))
    os.sched_setaffinity(0, set(cpus))
    print("probe ms per cpu:", {c: round(v, 1) for c, v in per_cpu.items()}, flush=True)
    print("lscpu:", subprocess.run(["bash", "-c", "lscpu | grep -E 'Model name|Thread|MHz|Hypervisor'"],
                                   capture_output=True, text=True).stdout.replace("\n", " | "), flush=True)
    import torch

    from workloads.hf import run_hf
    from workloads.models import build_model
    from workloads.spec import parse_workload
    wl = parse_workload("decode_b16")
    lm, config = build_model("gpt2", None, torch.bfloat16, "cuda")
    run_hf(lm, config, wl, "cuda", warmup=2)
    order = sorted(per_cpu, key=per_cpu.get)
    picks = {"fastest": order[0], "slowest": order[-1], "all": None}
    for r in range(args.rounds):
        for name, c in picks.items():
            os.sched_setaffinity(0, {c} if c is not None else set(cpus))
            p = probe_ms()
            res = run_hf(lm, config, wl, "cuda", warmup=0)
            print(f"round {r} {name:8s} cpu {c} probe {p:.1f} ms, decode {statistics.mean(res.decode_step_ms):.3f} "
                  f"ms/token, ttft {res.ttft_ms:.2f} ms | cpu MHz {cpu_mhz(c if c is not None else 0)} | "
                  f"gpu {sm_clock()}", flush=True)
    os.sched_setaffinity(0, set(cpus))


if __name__ == "__main__":
    main()
