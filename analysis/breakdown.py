"""Where the GPU time goes: per phase and kernel class, bound shares, GPU busy time against wall time."""
from __future__ import annotations

import numpy as np
import pandas as pd

# A phase whose GPU is busy for less than this share of its wall time is limited by the CPU side (Python,
# launches, synchronisation), not by the kernels.
LAUNCH_BOUND_BUSY_PCT = 60.0


def busy_us(starts: np.ndarray, ends: np.ndarray) -> float:
    """Length of the union of [start, end) intervals: time the GPU ran at least one kernel."""
    if len(starts) == 0:
        return 0.0
    order = np.argsort(starts)
    s, e = starts[order], ends[order]
    run_end = np.maximum.accumulate(e)
    new_block = np.r_[True, s[1:] > run_end[:-1]]
    last_of_block = np.r_[new_block[1:], True]
    block_starts, block_ends = s[new_block], run_end[last_of_block]
    return float((block_ends - block_starts).sum())


def phase_wall_us(ranges: pd.DataFrame) -> dict:
    """Wall time per phase from the CPU ranges that mark it (outermost ones, so nested steps are not added twice)."""
    out: dict[str, float] = {}
    r = ranges[ranges["phase"] != "none"]
    for phase, g in r.groupby("phase"):
        top = g[g["depth"] == g["depth"].min()] if phase != "decode" else g[g["name"] != "decode_step"]
        if top.empty:
            top = g
        out[phase] = float((top["end_us"] - top["start_us"]).sum())
    return out


def phase_summary(kernels: pd.DataFrame, ranges: pd.DataFrame) -> pd.DataFrame:
    walls = phase_wall_us(ranges)
    rows = []
    for phase, g in kernels.groupby("phase"):
        busy = busy_us(g["start_us"].to_numpy(), (g["start_us"] + g["dur_us"]).to_numpy())
        wall = walls.get(phase)
        modeled = g[g["work_source"] != "unmodeled"] if "work_source" in g else g.iloc[0:0]
        shares = (modeled.groupby("bound")["dur_us"].sum() / g["dur_us"].sum() * 100) if len(g) else {}
        row = {"phase": phase, "kernels": len(g), "kernel_us": float(g["dur_us"].sum()), "gpu_busy_us": busy,
               "wall_us": wall, "gpu_busy_pct_of_wall": 100 * busy / wall if wall else None,
               "steps": int(g["step"].nunique()) if g["step"].notna().any() else None}
        for b in ("memory", "compute", "latency"):
            row[f"{b}_bound_pct"] = float(shares.get(b, 0.0)) if len(g) else 0.0
        row["unmodeled_pct"] = float(100 * g.loc[g.get("work_source", "") == "unmodeled", "dur_us"].sum()
                                     / g["dur_us"].sum()) if len(g) and "work_source" in g else None
        row["verdict"] = _verdict(row)
        rows.append(row)
    return pd.DataFrame(rows)


def _verdict(row: dict) -> str:
    busy = row.get("gpu_busy_pct_of_wall")
    if busy is not None and busy < LAUNCH_BOUND_BUSY_PCT:
        return f"launch/CPU-bound: GPU busy {busy:.0f}% of the phase's wall time"
    shares = {b: row[f"{b}_bound_pct"] for b in ("memory", "compute", "latency")}
    top = max(shares, key=shares.get)
    return f"{top}-bound kernels dominate ({shares[top]:.0f}% of kernel time)"


def class_breakdown(kernels: pd.DataFrame) -> pd.DataFrame:
    """Kernel time per phase and class, with shares of the phase's kernel time."""
    if kernels.empty:
        return pd.DataFrame(columns=["phase", "kernel_class", "kernels", "kernel_us", "pct_of_phase"])
    g = kernels.groupby(["phase", "kernel_class"]).agg(kernels=("dur_us", "size"), kernel_us=("dur_us", "sum"))
    g["pct_of_phase"] = 100 * g["kernel_us"] / g.groupby(level=0)["kernel_us"].transform("sum")
    return g.reset_index()


def top_kernels(kernels: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    if kernels.empty:
        return pd.DataFrame()
    cols = {"kernel_us": ("dur_us", "sum"), "calls": ("dur_us", "size"), "mean_us": ("dur_us", "mean")}
    for extra in ("roof_pct", "intensity_flop_per_byte"):
        if extra in kernels:
            cols[extra] = (extra, "mean")
    g = kernels.groupby(["phase", "short_name", "kernel_class"]).agg(**cols).reset_index()
    if "bound" in kernels:
        b = kernels.groupby(["phase", "short_name", "kernel_class"])["bound"].agg(lambda s: s.mode().iat[0])
        g = g.merge(b.reset_index(), on=["phase", "short_name", "kernel_class"])
    g["pct_of_phase"] = 100 * g["kernel_us"] / g.groupby("phase")["kernel_us"].transform("sum")
    return g.sort_values(["phase", "kernel_us"], ascending=[True, False]).groupby("phase").head(n)
