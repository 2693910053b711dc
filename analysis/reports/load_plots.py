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


def _swept_rates(sweeps) -> list[float]:
    return sorted(set(pd.concat([df.offered_rate_per_s for _, df in sweeps]).dropna()))


def _rate_axis(ax, rates) -> None:
    """Offered load on a log axis when the sweep spans a decade or more (rates doubling from 1 to 256 are
    squeezed into the left edge of a linear one), ticked at the rates swept, written as numbers, not 2^k."""
    positive = [r for r in rates if r > 0]
    if positive and positive[-1] / positive[0] >= 10:
        from matplotlib.ticker import NullLocator
        ax.set_xscale("log", base=2)
        ax.set_xticks(positive, [f"{r:g}" for r in positive])
        ax.xaxis.set_minor_locator(NullLocator())


def plot_load(folders, out_png) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweeps = read_sweeps(folders)
    rates = _swept_rates(sweeps)
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
        _rate_axis(ax, rates)
        ax.legend(fontsize=7)
    ax = axes.flat[3]
    for label, df in sweeps:
        line = ax.plot(df.offered_rate_per_s, df.request_throughput_per_s, marker="o", label=f"{label} completed")[0]
        ax.plot(df.offered_rate_per_s, df.goodput_requests_per_s, marker="x", ls="--", color=line.get_color(),
                label=f"{label} goodput (SLO)")
    ax.plot(rates, rates, color="grey", lw=0.8, ls=":", label="offered")
    ax.set(title="throughput (requests/s)", xlabel="offered load (requests/s)")
    _rate_axis(ax, rates)
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
