"""Plots of a sweep's tables: throughput against batch or request count, latency against length, memory by
backend, GPU utilisation over time."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

COLORS = {"hf": "#d1495b", "vllm": "#00798c"}


def _swept_axis(ax, values, label: str) -> None:
    """Log-2 axis labelled with the values actually swept (10, 50, 100 ...), not powers of two."""
    ax.set_xscale("log", base=2)
    ticks = sorted(set(int(v) for v in values))
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(label)


def plot_sweep(out_dir) -> list[Path]:
    out = Path(out_dir)
    df = pd.read_parquet(out / "sweep.parquet")
    ok = df[df["status"] == "ok"]
    if ok.empty:
        return []
    written = []
    mode = ok["mode"].iloc[0]
    x = "requests" if mode == "requests" else ("batch" if ok["batch"].nunique() > 1 else "prompt_tokens")
    g = ok.groupby(["backend", x]).agg(tps=("output_tokens_per_s", "median"), tps_min=("output_tokens_per_s", "min"),
                                       tps_max=("output_tokens_per_s", "max"), ttft=("ttft_ms", "median"),
                                       tpot=("decode_ms_per_token_mean", "median")).reset_index()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for backend, b in g.groupby("backend"):
        c = COLORS.get(backend)
        axes[0].errorbar(b[x], b["tps"], yerr=[b["tps"] - b["tps_min"], b["tps_max"] - b["tps"]], marker="o",
                         capsize=3, label=backend, color=c)
        axes[1].plot(b[x], b["ttft"], marker="o", label=backend, color=c)
        axes[2].plot(b[x], b["tpot"], marker="o", label=backend, color=c)
    for ax, title in zip(axes, ("output tokens/s (median, min-max over repeats)", "TTFT (ms, median)",
                                "decode ms per token (median)")):
        _swept_axis(ax, g[x], x)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "throughput_latency.png", dpi=110)
    plt.close(fig)
    written.append(out / "throughput_latency.png")

    mem = _memory_series(ok, x)
    if mem:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        styles = {"NVML device memory used": "-", "allocator peak": "--", "KV cache reserved": ":",
                  "KV cache used": "-."}
        for (backend, what), m in mem.items():
            ax.plot(m.index, m.values / 2**30, marker="o", ls=styles[what], color=COLORS.get(backend),
                    label=f"{backend}: {what}")
        _swept_axis(ax, ok[x], x)
        ax.set_yscale("log")
        ax.set_ylabel("GiB (log)")
        ax.set_title("memory by backend: vLLM reserves its KV cache up front and fills a little of it", fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "memory.png", dpi=110)
        plt.close(fig)
        written.append(out / "memory.png")

    tl_path = out / "nvml_timeline.parquet"
    if tl_path.exists():
        tl = pd.read_parquet(tl_path)
        tl = tl[tl["repeat"] == 0]
        if not tl.empty:
            backends = list(dict.fromkeys(tl["backend"]))
            fig, axes = plt.subplots(len(backends), 1, figsize=(11, 2.2 + 1.6 * len(backends)), squeeze=False)
            for ax, backend in zip(axes[:, 0], backends):
                offset = 0.0
                for key, seg in tl[tl["backend"] == backend].groupby(x, sort=False):
                    ax.plot(seg["t_s"] + offset, seg["gpu_util_pct"], lw=0.8, color=COLORS.get(backend))
                    ax.axvline(offset, color="0.7", lw=0.6)
                    ax.text(offset, 103, f" {x}={key}", fontsize=7, va="bottom")
                    offset += float(seg["t_s"].max()) + 0.05
                ax.set_ylim(0, 118)
                ax.set_ylabel(f"{backend}\nGPU util %")
                ax.grid(alpha=0.3, axis="y")
            axes[-1, 0].set_xlabel("time within each point (s; points back to back, first repeat)")
            axes[0, 0].set_title("GPU utilisation sampled by NVML during the sweep", fontsize=10)
            fig.tight_layout()
            fig.savefig(out / "gpu_utilization.png", dpi=110)
            plt.close(fig)
            written.append(out / "gpu_utilization.png")
    return written


def _memory_series(ok: pd.DataFrame, x: str) -> dict:
    """(backend, what) -> bytes by swept value (median over repeats). KV used is what the requests filled:
    vLLM's peak blocks used times the block size; HF's cache tensors are all used."""
    out = {}
    for backend, b in ok.groupby("backend"):
        by = b.groupby(x)
        cols = {"NVML device memory used": "nvml_peak_memory_used_bytes", "allocator peak": "peak_allocated_bytes"}
        for what, col in cols.items():
            if col in b and b[col].notna().any():
                out[(backend, what)] = by[col].median().dropna()
        if "kv_blocks_used_peak" in b and b["kv_blocks_used_peak"].notna().any():
            out[(backend, "KV cache reserved")] = by["kv_cache_bytes"].median().dropna()
            used = b["kv_blocks_used_peak"] * b["kv_bytes_per_block"]
            out[(backend, "KV cache used")] = used.groupby(b[x]).median().dropna()
        elif "kv_cache_bytes" in b and b["kv_cache_bytes"].notna().any():
            out[(backend, "KV cache used")] = by["kv_cache_bytes"].median().dropna()
    return {k: v for k, v in out.items() if not v.empty}
