"""Plots people would rather look at than read: roofline, phase/class breakdown, run comparisons, sweeps."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

PHASE_COLORS = {"prefill": "#d1495b", "decode": "#00798c", "mixed": "#edae49", "none": "#999999"}
CLASS_COLORS = {"gemm": "#1f77b4", "attention": "#d62728", "norm": "#9467bd", "elementwise": "#2ca02c",
                "reduction": "#ff7f0e", "copy": "#8c564b", "communication": "#e377c2", "sampling": "#17becf",
                "memcpy/memset": "#bcbd22", "other": "#7f7f7f"}


def _roof(ax, peaks: dict, label_prefix: str = "", color="black"):
    bw = peaks["hbm_gbps"] * 1e9
    x = np.logspace(-2, 4, 200)
    for key, style in (("bf16", "-"), ("fp32", ":")):
        p = peaks[key] * 1e12
        ax.plot(x, np.minimum(p, x * bw) / 1e12, style, color=color, lw=1.2,
                label=f"{label_prefix}{key} roof {peaks[key]:.0f} TFLOP/s, {peaks['hbm_gbps']:.0f} GB/s")


def roofline_plot(runs: list[tuple[str, pd.DataFrame, dict]], out: Path, title: str, by: str = "phase") -> Path:
    """Kernels as points (sized by time) on log-log axes, with memory and compute roofs; one colour per phase
    (single run) or per run (comparison)."""
    fig, ax = plt.subplots(figsize=(9, 6))
    run_colors = plt.cm.tab10.colors
    same_peaks = len({str(p) for _, _, p in runs}) == 1  # one device: draw its roofs once
    for r, (label, k, peaks) in enumerate(runs):
        m = k[(k["work_source"] != "unmodeled") & (k["flops"] > 0) & (k["dram_bytes"] > 0)]
        if peaks and (r == 0 or not same_peaks):
            _roof(ax, peaks, "" if same_peaks else f"{label}: ", color="black" if same_peaks else
                  run_colors[r % 10])
        if m.empty:
            continue
        size = 10 + 300 * m["dur_us"] / max(m["dur_us"].max(), 1e-9)
        if by == "phase" and len(runs) == 1:
            for phase, g in m.groupby("phase"):
                ax.scatter(g["intensity_flop_per_byte"], g["achieved_tflops"], s=size[g.index], alpha=0.5,
                           color=PHASE_COLORS.get(phase, "grey"), label=f"{phase} kernels", edgecolors="none")
        else:
            ax.scatter(m["intensity_flop_per_byte"], m["achieved_tflops"], s=size, alpha=0.45,
                       color=run_colors[r % 10], label=f"{label} kernels", edgecolors="none")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP / DRAM byte)")
    ax.set_ylabel("attained TFLOP/s")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.2)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def breakdown_plot(runs: list[tuple[str, pd.DataFrame]], out: Path, title: str) -> Path:
    """Stacked bars of kernel time per phase and class (ms), one group per run."""
    fig, ax = plt.subplots(figsize=(9, 5))
    labels, bottoms = [], []
    bars = []
    for label, cb in runs:
        for phase, g in cb.groupby("phase"):
            labels.append(f"{label}\n{phase}" if len(runs) > 1 else phase)
            bars.append(g.set_index("kernel_class")["kernel_us"] / 1e3)
    classes = sorted({c for b in bars for c in b.index}, key=lambda c: list(CLASS_COLORS).index(c)
                     if c in CLASS_COLORS else 99)
    x = np.arange(len(bars))
    bottoms = np.zeros(len(bars))
    for c in classes:
        vals = np.array([b.get(c, 0.0) for b in bars])
        ax.bar(x, vals, bottom=bottoms, color=CLASS_COLORS.get(c, "grey"), label=c)
        bottoms += vals
    ax.set_xticks(x, labels, fontsize=7, rotation=30 if len(runs) > 1 else 0, ha="right" if len(runs) > 1 else "center")
    ax.set_ylabel("kernel time (ms)")
    ax.set_title(title)
    if classes:
        ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
