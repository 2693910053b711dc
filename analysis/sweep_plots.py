"""Plots of a sweep's tables: throughput against batch or request count, latency against length, memory by
backend, GPU utilisation over time."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


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
        axes[0].errorbar(b[x], b["tps"], yerr=[b["tps"] - b["tps_min"], b["tps_max"] - b["tps"]], marker="o",
                         capsize=3, label=backend)
        axes[1].plot(b[x], b["ttft"], marker="o", label=backend)
        axes[2].plot(b[x], b["tpot"], marker="o", label=backend)
    for ax, title in zip(axes, ("output tokens/s (median, min-max over repeats)", "TTFT (ms, median)",
                                "decode ms per token (median)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel(x)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "throughput_latency.png", dpi=110)
    plt.close(fig)
    written.append(out / "throughput_latency.png")

    mem_cols = [c for c in ("peak_allocated_bytes", "nvml_peak_memory_used_bytes", "kv_cache_bytes") if c in ok]
    if mem_cols:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for backend, b in ok.groupby("backend"):
            for c in mem_cols:
                m = b.groupby(x)[c].median().dropna()
                if not m.empty:
                    ax.plot(m.index, m.values / 2**30, marker="o", label=f"{backend} {c.replace('_bytes', '')}")
        ax.set_xscale("log", base=2)
        ax.set_xlabel(x)
        ax.set_ylabel("GiB")
        ax.set_title("memory by backend (vLLM reserves its KV cache up front)")
        ax.grid(alpha=0.3)
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
            fig, ax = plt.subplots(figsize=(10, 4))
            offset = 0.0
            for (backend, key), seg in tl.groupby(["backend", x], sort=False):
                ax.plot(seg["t_s"] + offset, seg["gpu_util_pct"], lw=0.8,
                        color="#00798c" if backend == "vllm" else "#d1495b")
                ax.text(offset, 102, f"{backend}\n{x}={key}", fontsize=6)
                offset += float(seg["t_s"].max()) + 0.05
            ax.set_ylim(0, 115)
            ax.set_xlabel("time (s, points back to back)")
            ax.set_ylabel("GPU utilisation % (NVML)")
            ax.set_title("GPU utilisation over time (red: hf, teal: vllm; first repeat of each point)")
            fig.tight_layout()
            fig.savefig(out / "gpu_utilization.png", dpi=110)
            plt.close(fig)
            written.append(out / "gpu_utilization.png")
    return written
