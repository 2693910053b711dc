"""Plots people would rather look at than read: roofline, phase/class breakdown, run comparisons, sweeps.

Figures are drawn straight to files with matplotlib's Figure, without pyplot: no display, no global figure
registry, and a quarter of a second less to import. matplotlib is imported where a figure is drawn, so that the
colours here cost nothing to import."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

PHASE_COLORS = {"prefill": "#d1495b", "decode": "#00798c", "mixed": "#edae49", "none": "#999999"}
CLASS_COLORS = {"gemm": "#1f77b4", "attention": "#d62728", "norm": "#9467bd", "elementwise": "#2ca02c",
                "reduction": "#ff7f0e", "copy": "#8c564b", "communication": "#e377c2", "sampling": "#17becf",
                "quantize": "#aec7e8", "moe": "#ff9896", "memcpy/memset": "#bcbd22", "other": "#7f7f7f"}


IDLE_COLORS = {"GPU idle in steps (launch gaps)": "#d9d9d9", "GPU idle between steps (host)": "#f2f2f2"}
PHASE_MARKERS = {"prefill": "s", "mixed": "D", "decode": "o", "none": "^"}
RUN_MARKERS = ("o", "s", "D", "^", "v", "P", "X")
LABELLED = 5   # heaviest kernels named on a roofline panel
# a panel title's height, given: left to matplotlib, every draw measures the ticks once more to lift the title
# over any at the top (there are none here), a tenth of a figure's CPU
TITLE_Y = 1.0


def _roof(ax, peaks: dict, label_prefix: str = "", color="black", x_span=(1e-6, 1e4), precisions=()) -> list:
    """Draw the compute roofs (bf16 tensor cores, fp32, and the 8-bit tensor paths the kernels use) under the DRAM
    roof, the L2 roof where the peaks carry it, and the bf16 ridge point, over the panel's span of intensities;
    return the roofs' (x, y) vertices in data units."""
    bw = peaks["hbm_gbps"] * 1e9
    drawn = []

    def roof(flop_s: float, byte_s: float, *style, **kw):
        # two straight pieces on log-log axes, so the span's ends and the knee draw it exactly (300 points made every
        # draw and the names' placement transform and test 300 segments)
        knee = flop_s / byte_s
        x = np.array([x_span[0], *([knee] if x_span[0] < knee < x_span[1] else []), x_span[1]])
        y = np.minimum(flop_s, x * byte_s) / 1e12
        ax.plot(x, y, *style, **kw)
        drawn.append((x, y))

    for key, style in (("bf16", "-"), ("fp32", ":")) + tuple((p, "-.") for p in ("fp8", "int8") if p in precisions):
        if not peaks.get(key):
            continue
        roof(peaks[key] * 1e12, bw, style, color=color, lw=1.2,
             label=f"{label_prefix}{key} roof {peaks[key]:.0f} TFLOP/s, DRAM {peaks['hbm_gbps']:.0f} GB/s")
    if peaks.get("l2_gbps"):
        roof(peaks["bf16"] * 1e12, peaks["l2_gbps"] * 1e9, "--", color=color, lw=0.9, alpha=0.7,
             label=f"{label_prefix}L2 roof {peaks['l2_gbps']:.0f} GB/s")
    ridge = peaks["bf16"] * 1e12 / bw
    if x_span[0] < ridge < x_span[1]:
        ax.axvline(ridge, color=color, lw=0.7, ls="-.", alpha=0.5)
        ax.annotate(f"ridge {ridge:.0f} FLOP/B", (ridge, peaks["bf16"]), fontsize=7, rotation=90, va="top",
                    ha="right", color=color, alpha=0.7)
    return drawn


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def power_of_ten(value: float, _position=None) -> str:
    """A log axis's tick label as 10ⁿ in plain text (only at whole powers): matplotlib's default writes them as
    mathtext, whose parser is built and run in every drawing process (0.1 s of a roofline)."""
    if not value > 0:
        return ""
    exponent = round(np.log10(value))
    return "10" + str(exponent).translate(_SUPERSCRIPT) if np.isclose(np.log10(value), exponent) else ""


def roofline_points(k: pd.DataFrame) -> pd.DataFrame:
    """One point per (phase, kernel, class): summed FLOPs over summed DRAM bytes (L2 bytes where the model gives
    no DRAM traffic: `hollow`), attained TFLOP/s over its summed time."""
    if k.empty or "flops" not in k:
        return pd.DataFrame()
    m = k[(k["work_source"] != "unmodeled") & (k["flops"] > 0)].copy()
    m["l2b"] = m["l2_bytes"] if "l2_bytes" in m else np.nan
    m["flag"] = (m["roof_flag"].astype(str) != "") if "roof_flag" in m else False
    g = m.groupby(["phase", "short_name", "kernel_class"], observed=True).agg(
        flops=("flops", "sum"), dram=("dram_bytes", "sum"), l2=("l2b", "sum"), dur_us=("dur_us", "sum"),
        flag=("flag", "any")).reset_index()
    g["hollow"] = ~(g["dram"] > 0) & (g["l2"] > 0)
    g["intensity"] = np.where(g["dram"] > 0, g["flops"] / g["dram"].where(g["dram"] > 0),
                              g["flops"] / g["l2"].where(g["l2"] > 0))
    g["tflops"] = g["flops"] / (g["dur_us"] * 1e-6) / 1e12
    return g[np.isfinite(g["intensity"]) & (g["dur_us"] > 0)]


def plotted_kernels(k: pd.DataFrame) -> pd.DataFrame:
    """The kernels as roofline_plot needs them, summed per phase, name, class, work source, precision, flag and
    whether they have FLOPs: the same roofline from a few hundred rows instead of one per launch (a child that
    draws gets them through a pipe: a 623 MB trace's 270k launches took half a second to send)."""
    if k.empty or "flops" not in k:
        return k
    keys = [c for c in ("phase", "short_name", "kernel_class", "work_source", "precision") if c in k]
    sums = [c for c in ("flops", "dram_bytes", "l2_bytes", "dur_us") if c in k]
    d = k[keys + sums].assign(
        _flagged=(k["roof_flag"].astype(str) != "") if "roof_flag" in k else False, _positive=k["flops"] > 0)
    g = d.groupby(keys + ["_flagged", "_positive"], observed=True, dropna=False, sort=False)[sums].sum().reset_index()
    return g.assign(roof_flag=np.where(g["_flagged"], "above its roof", "")).drop(columns=["_flagged", "_positive"])


def _scatter(ax, pts: pd.DataFrame, marker: str, size_max: float, label_suffix: str, seen: set):
    for cls, g in pts.groupby("kernel_class", observed=True):
        color = CLASS_COLORS.get(str(cls), "grey")
        size = 15 + 300 * g["dur_us"] / size_max
        for hollow, h in g.groupby("hollow"):
            lab = str(cls) if str(cls) not in seen else None
            seen.add(str(cls))
            ax.scatter(h["intensity"], h["tflops"], s=size[h.index], marker=marker, alpha=0.6, label=lab,
                       facecolors="none" if hollow else color, edgecolors=color, linewidths=1.0)
        flagged = g[g["flag"]]
        if len(flagged):
            ax.scatter(flagged["intensity"], flagged["tflops"], s=60, marker="x", color="red", lw=1.0)


class _DataUnits:
    """An axes' data coordinates, named through matplotlib's `_as_mpl_transform` hook. textalloc draws the whole
    figure once to settle the layout unless it is given a transform (a fifth of a roofline's time); the margins and
    limits here are fixed before it runs, so there is nothing to settle."""

    def _as_mpl_transform(self, ax):
        return ax.transData


def roofline_plot(runs: list[tuple[str, pd.DataFrame, dict]], out: Path, title: str) -> Path:
    """roofline_figure written to `out` as a PNG."""
    roofline_figure(runs, title).savefig(out, dpi=110)
    return out


def roofline_figure(runs: list[tuple[str, pd.DataFrame, dict]], title: str):
    """Kernels aggregated by name as points (area: time) on log-log axes, coloured by kernel class, marker by
    phase (one run) or by run (comparison, one panel per phase); hollow: placed by L2 bytes (no DRAM traffic
    modelled); red x: above its roof. Roofs, ridge and the heaviest kernels' names drawn."""
    pts = [(label, roofline_points(k), peaks) for label, k, peaks in runs]
    phases = sorted({p for _, g, _ in pts if len(g) for p in g["phase"].astype(str).unique()},
                    key=lambda p: list(PHASE_MARKERS).index(p) if p in PHASE_MARKERS else 9)
    panels = phases if len(runs) > 1 and len(phases) > 1 else [None]
    from matplotlib.figure import Figure   # here: report.html takes this module's colours without matplotlib
    from matplotlib.ticker import LogLocator

    fig = Figure(figsize=(7 * len(panels), 6))
    axes = fig.subplots(1, len(panels), squeeze=False, sharey=True)
    # fixed margins, not tight_layout(): that measures every text by drawing the figure once more (0.25 s); set
    # first, since the names are placed in display space
    fig.subplots_adjust(left=0.09 / len(panels), right=1 - 0.02 / len(panels), bottom=0.09, top=0.95, wspace=0.04)
    size_max = max([g["dur_us"].max() for _, g, _ in pts if len(g)] + [1e-9])
    every = pd.concat([g for _, g, _ in pts if len(g)] or [pd.DataFrame()], ignore_index=True)
    for ax, panel in zip(axes[0], panels):
        seen: set = set()
        drawn_peaks, roofs = [], []
        parts = [g if panel is None else g[g["phase"].astype(str) == panel] for _, g, _ in pts if len(g)]
        shown = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        x_span = (shown["intensity"].min() / 3, shown["intensity"].max() * 3) if len(shown) else (1e-6, 1e4)
        for r, (label, g, peaks) in enumerate(pts):
            if peaks and str(peaks) not in drawn_peaks:
                used = set().union(*(set(k["precision"].astype(str).unique()) for _, k, _ in runs if "precision" in k))
                roofs += _roof(ax, peaks, "" if not drawn_peaks else f"{label}: ",
                               color="black" if not drawn_peaks else "grey", x_span=x_span, precisions=used)
                drawn_peaks.append(str(peaks))
            if g.empty:
                continue
            sel = g if panel is None else g[g["phase"].astype(str) == panel]
            groups = [(str(p), h) for p, h in sel.groupby("phase", observed=True)] if len(runs) == 1 else [(label, sel)]
            for key, h in groups:
                marker = PHASE_MARKERS.get(key, "o") if len(runs) == 1 else RUN_MARKERS[r % len(RUN_MARKERS)]
                _scatter(ax, h.reset_index(drop=True), marker, size_max, key, seen)
                ax.scatter([], [], marker=marker, color="black", facecolors="none", label=f"{key} (marker)")
        named = shown.nlargest(LABELLED, "dur_us").drop_duplicates("short_name") if len(shown) else shown
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_major_formatter(power_of_ten)   # (minor ticks keep matplotlib's labels: spans under a decade)
        ax.yaxis.set_major_formatter(power_of_ten)
        for axis in (ax.xaxis, ax.yaxis):   # minor grid lines at 2 and 5 only: every tick is an artist to draw
            axis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
        if len(shown):
            ax.set_xlim(*x_span)
        if len(every):   # the panels share their y axis: fit it to every panel's points
            ax.set_ylim(every["tflops"].min() / 3, max([every["tflops"].max(), *(p["bf16"] for _, _, p in pts if p)]) * 2)
        if len(named):
            # the heaviest points of the panel (all runs) named once each, placed (textalloc: greedy, in display
            # space) where no name overlaps another, a point, a roof or the axes' edge, a line to its point
            import textalloc

            textalloc.allocate(ax, named["intensity"].to_numpy(float), named["tflops"].to_numpy(float),
                               [str(n)[:36] for n in named["short_name"]], x_scatter=shown["intensity"].to_numpy(float),
                               y_scatter=shown["tflops"].to_numpy(float),
                               x_lines=[x for x, _ in roofs], y_lines=[y for _, y in roofs], textsize=6.5,
                               linecolor="#555555", linewidth=0.5, textcolor="#222222", nbr_candidates=100,
                               transform=_DataUnits())
        ax.set_xlabel("arithmetic intensity (FLOP / DRAM byte; hollow: per L2 byte)")
        ax.set_title(title if panel is None else f"{title}: {panel}", fontsize=9, y=TITLE_Y)
        ax.grid(True, which="both", alpha=0.2)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6, loc="lower right")
    axes[0][0].set_ylabel("attained TFLOP/s")
    return fig


def breakdown_plot(runs: list[tuple[str, pd.DataFrame]], out: Path, title: str) -> Path:
    """Stacked bars of wall time per step (ms), one panel per phase, one bar per run: GPU busy per kernel class,
    then GPU idle in steps and between steps (analysis.timing.walltime's long table)."""
    phases = sorted({p for _, w in runs for p in (w["phase"].unique() if len(w) else [])},
                    key=lambda p: list(PHASE_MARKERS).index(p) if p in PHASE_MARKERS else 9)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.2 * max(len(phases), 1) + 2.5, 5))
    axes = fig.subplots(1, max(len(phases), 1), squeeze=False)
    comps = sorted({c for _, w in runs for c in (w.loc[w["kind"] == "gpu", "component"] if len(w) else [])},
                   key=lambda c: list(CLASS_COLORS).index(c) if c in CLASS_COLORS else 99) + list(IDLE_COLORS)
    for ax, phase in zip(axes[0], phases):
        x = np.arange(len(runs))
        bottoms = np.zeros(len(runs))
        for c in comps:
            vals = np.array([float(w.loc[(w["phase"] == phase) & (w["component"] == c), "us_per_step"].sum()) / 1e3
                             if len(w) else 0.0 for _, w in runs])
            ax.bar(x, vals, bottom=bottoms, color=CLASS_COLORS.get(c) or IDLE_COLORS.get(c, "grey"),
                   edgecolor="#999999" if c in IDLE_COLORS else "none", lw=0.5, label=c)
            bottoms += vals
        for xi, total in zip(x, bottoms):
            ax.annotate(f"{total:.3g} ms", (xi, total), ha="center", va="bottom", fontsize=7)
        ax.set_xticks(x, [label if len(runs) > 1 else "" for label, _ in runs], fontsize=7, rotation=20 if len(runs) > 1 else 0,
                      ha="right" if len(runs) > 1 else "center")
        ax.set_title(f"{phase}: wall time per step", fontsize=9, y=TITLE_Y)
        ax.margins(y=0.08)
        ax.set_ylabel("ms per step")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, fontsize=7, loc="center right")
    fig.suptitle(title, fontsize=10)
    # fixed margins (the legend in the right fifth; room for slanted run names), not tight_layout(), which draws
    # the figure once more to measure its texts; 0.75 in between panels for the next one's y labels (wspace is a
    # fraction of a panel's width)
    width = fig.get_figwidth()
    several = len(runs) > 1
    fig.subplots_adjust(left=(1.3 if several else 0.6) / width, right=0.78, top=0.88, bottom=0.22 if several else 0.08,
                        wspace=0.75 / (0.78 * width / max(len(phases), 1) - 0.75) if len(phases) > 1 else 0.2)
    fig.savefig(out, dpi=110)
    return out
