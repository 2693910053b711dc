"""Where the GPU time goes: per phase and kernel class, bound shares, GPU busy time against wall time."""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.timing.overhead import LAUNCH_BOUND_BUSY_PCT, phase_inflation, verdicts  # noqa: F401


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


def phase_summary(kernels: pd.DataFrame, wall_gpu: pd.DataFrame | None = None,
                  figures: dict | None = None) -> pd.DataFrame:
    """Per phase: kernel time, GPU busy and wall time (analysis.timing.walltime's window), bound shares of kernel time,
    the profiler's inflation and the GPU-busy share against the unprofiled time where the sidecar has it, and
    verdicts under the profiler and without it."""
    wall_gpu = wall_gpu if wall_gpu is not None else pd.DataFrame(columns=["phase", "kind", "us", "steps"])
    rows = []
    # the columns it reads: each phase's group would otherwise copy every column of every launch
    used = kernels[[c for c in ("phase", "start_us", "dur_us", "work_source", "bound", "step") if c in kernels]]
    for phase, g in used.groupby("phase", observed=True):
        w = wall_gpu[wall_gpu["phase"] == phase]
        has_wall = bool((w["kind"] == "wall").any())
        wall = float(w.loc[w["kind"] == "wall", "us"].sum()) if has_wall else None
        busy = float(w.loc[w["kind"] == "gpu", "us"].sum()) if has_wall else \
            busy_us(g["start_us"].to_numpy(), (g["start_us"] + g["dur_us"]).to_numpy())
        modeled = g[g["work_source"] != "unmodeled"] if "work_source" in g else g.iloc[0:0]
        shares = (modeled.groupby("bound")["dur_us"].sum() / g["dur_us"].sum() * 100) if len(g) else {}
        row = {"phase": str(phase), "kernels": len(g), "kernel_us": float(g["dur_us"].sum()), "gpu_busy_us": busy,
               "wall_us": wall, "steps": int(w["steps"].iloc[0]) if has_wall else (
                   int(g["step"].nunique()) if g["step"].notna().any() else None),
               "gpu_busy_pct_of_wall": 100 * busy / wall if wall else None}
        inflation = phase_inflation(figures, str(phase))
        row["profiler_inflation"] = inflation
        row["unprofiled_wall_us"] = wall / inflation if wall and inflation else None
        row["gpu_busy_pct_of_unprofiled"] = 100 * busy / row["unprofiled_wall_us"] if row["unprofiled_wall_us"] \
            else None
        for b in ("memory", "compute", "latency", "l2"):
            row[f"{b}_bound_pct"] = float(shares.get(b, 0.0)) if len(g) else 0.0
        row["unmodeled_pct"] = float(100 * g.loc[g.get("work_source", "") == "unmodeled", "dur_us"].sum()
                                     / g["dur_us"].sum()) if len(g) and "work_source" in g else None
        row["verdict"], row["verdict_unprofiled"] = verdicts(row, figures)
        rows.append(row)
    return pd.DataFrame(rows)


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
        g = g.merge(_most_common(kernels, ["phase", "short_name", "kernel_class"], "bound"),
                    on=["phase", "short_name", "kernel_class"])
    g["pct_of_phase"] = 100 * g["kernel_us"] / g.groupby("phase")["kernel_us"].transform("sum")
    return g.sort_values(["phase", "kernel_us"], ascending=[True, False]).groupby("phase").head(n)


def _most_common(df: pd.DataFrame, keys: list[str], col: str) -> pd.DataFrame:
    """Each group's most common `col`, the smallest value among ties (what Series.mode().iat[0] gives), in one
    count over all groups rather than a Python call per group."""
    counts = df.groupby(keys + [col], observed=True).size().rename("_n").reset_index()
    counts = counts.sort_values(keys + ["_n", col], ascending=[True] * len(keys) + [False, True], kind="stable")
    return counts.drop_duplicates(keys)[keys + [col]]
