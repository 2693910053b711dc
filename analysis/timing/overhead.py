"""The profiler's own cost: its inflation of each phase's time (the sidecar's profiled figures against the same
figures timed without a profiler in the same process, after the warm-ups) and verdicts that say it.

The unprofiled time of a phase is its profiled wall time divided by the inflation; the GPU-busy share against
it assumes the kernels take the time the profiler measured (CUPTI adds little to kernel durations; its cost is
on the host, in every op and launch)."""
from __future__ import annotations

from analysis.numbers import sig3

# A phase whose GPU is busy for less than this share of its wall time is limited by the host side (Python,
# launches, synchronisation), not by the kernels.
LAUNCH_BOUND_BUSY_PCT = 60.0
NO_UNPROFILED = "this run has no unprofiled timing; record it again to separate the profiler's cost"
# the sidecar figure whose profiled / unprofiled ratio is a phase's inflation
_PHASE_FIGURE = {"decode": "decode_ms_per_token_mean", "prefill": "ttft_ms"}


def phase_inflation(figures: dict | None, phase: str) -> float | None:
    f = figures or {}
    un = f.get("unprofiled") or {}
    if phase == "decode" and f.get("profiler_inflation"):
        return float(f["profiler_inflation"])
    key = _PHASE_FIGURE.get(phase)
    prof = f.get("profiled") or f   # the median of the profiled runs where there were several
    if key and prof.get(key) and un.get(key):
        return float(prof[key]) / float(un[key])
    return None


def has_unprofiled(figures: dict | None) -> bool:
    return bool((figures or {}).get("unprofiled"))


def _kernel_verdict(row: dict) -> str:
    shares = {b: row.get(f"{b}_bound_pct") or 0.0 for b in ("memory", "compute", "latency", "l2")}
    top = max(shares, key=shares.get)
    unmodeled = row.get("unmodeled_pct") or 0.0
    if shares[top] <= 0 or unmodeled > shares[top]:   # no verdict on a share the model does not back
        return f"no bound verdict: {sig3(unmodeled)}% of kernel time is unmodeled"
    return f"{top}-bound kernels dominate ({sig3(shares[top])}% of kernel time)"


def verdicts(row: dict, figures: dict | None) -> tuple[str, str]:
    """(verdict under the profiler, verdict against the unprofiled time). A launch/CPU-bound verdict always says
    what the profiler costs, or that it is unknown."""
    busy = row.get("gpu_busy_pct_of_wall")
    unb = row.get("gpu_busy_pct_of_unprofiled")
    infl = row.get("profiler_inflation")
    kernels = _kernel_verdict(row)
    if busy is None:
        return kernels, "-"
    if infl:
        cost = f"profiler inflation {sig3(infl)}x"
    elif has_unprofiled(figures):
        cost = "no unprofiled figure for this phase"
    else:
        cost = "the profiler's own cost is unknown: no unprofiled timing"
    un_verdict = "-"
    if unb is not None:
        un_verdict = (f"launch/CPU-bound: GPU busy {sig3(unb)}% of the unprofiled time" if unb < LAUNCH_BOUND_BUSY_PCT
                      else f"GPU-bound without the profiler (busy {sig3(unb)}% of the unprofiled time): {kernels}")
    if busy < LAUNCH_BOUND_BUSY_PCT:
        return f"launch/CPU-bound under the profiler: GPU busy {sig3(busy)}% of wall time ({cost})", un_verdict
    return f"{kernels}; GPU busy {sig3(busy)}% of wall time ({cost})", un_verdict
