"""Latency and throughput against offered load, for one or more `tracer load --rates` sweeps on one figure."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

PANELS = (("ttft_ms", "TTFT (ms)"), ("tpot_ms", "TPOT (ms)"), ("e2e_ms", "end-to-end latency (ms)"))


def read_sweeps(folders) -> list[tuple[str, pd.DataFrame]]:
    out = []
    for folder in folders:
        df = pd.read_parquet(Path(folder) / "sweep.parquet")
        label = df["label"].iloc[0] if "label" in df and len(df) else Path(folder).name
        out.append((label, df.sort_values("offered_rate_per_s")))
    return out


def _rate_axis(ax, sweeps) -> None:
    """Offered load on a log axis when the sweep spans a decade or more (rates doubling from 1 to 256 are
    squeezed into the left edge of a linear one)."""
    rates = pd.concat([df.offered_rate_per_s for _, df in sweeps]).dropna()
    rates = rates[rates > 0]
    if len(rates) and rates.max() / rates.min() >= 10:
        from matplotlib.ticker import FixedLocator, NullLocator
        ax.set_xscale("log", base=2)
        ticks = sorted(set(rates))
        ax.xaxis.set_major_locator(FixedLocator(ticks))   # the rates swept, written as numbers, not 2^k
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticks(ticks, [f"{r:g}" for r in ticks])


def plot_load(folders, out_png) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweeps = read_sweeps(folders)
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    for ax, (metric, title) in zip(axes.flat[:3], PANELS):
        for label, df in sweeps:
            line = ax.plot(df.offered_rate_per_s, df[f"{metric}_p50"], marker="o", label=f"{label} p50")[0]
            ax.plot(df.offered_rate_per_s, df[f"{metric}_p99"], marker="x", ls="--", color=line.get_color(),
                    label=f"{label} p99")
        slo = sweeps[0][1].get(f"slo_{metric}")
        if slo is not None and slo.notna().any():
            ax.axhline(float(slo.dropna().iloc[0]), color="grey", lw=0.8, ls=":", label="SLO")
        ax.set(title=title, xlabel="offered load (requests/s)", yscale="log")
        _rate_axis(ax, sweeps)
        ax.legend(fontsize=7)
    ax = axes.flat[3]
    for label, df in sweeps:
        line = ax.plot(df.offered_rate_per_s, df.request_throughput_per_s, marker="o", label=f"{label} completed")[0]
        ax.plot(df.offered_rate_per_s, df.goodput_requests_per_s, marker="x", ls="--", color=line.get_color(),
                label=f"{label} goodput (SLO)")
    rates = sorted(set(pd.concat([df.offered_rate_per_s for _, df in sweeps]).dropna()))
    ax.plot(rates, rates, color="grey", lw=0.8, ls=":", label="offered")
    ax.set(title="throughput (requests/s)", xlabel="offered load (requests/s)")
    _rate_axis(ax, sweeps)
    ax.legend(fontsize=7)
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


def sustainable_rate(df: pd.DataFrame, slo_ttft_ms: float, slo_tpot_ms: float) -> float | None:
    """The highest offered rate whose p99 TTFT and p99 TPOT meet the SLO with no errors, None if none does."""
    ok = df[(df.ttft_ms_p99 <= slo_ttft_ms) & ~(df.tpot_ms_p99 > slo_tpot_ms) & (df.errors + df.timeouts == 0)]
    return float(ok.offered_rate_per_s.max()) if len(ok) else None
