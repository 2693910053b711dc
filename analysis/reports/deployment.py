"""What a deployment choice does to each phase's kernel time: quantized projections (their precision, time, bytes
and bound) and Mixture-of-Experts layers (their share, split into routing, expert GEMMs and the rest).

Reads the analysed kernels table only (model_op, precision, kernel_class, bound, dram_bytes); summary.json's
`deployment` holds one row per phase, and `headline` sets two runs' rows side by side.
"""
from __future__ import annotations

import pandas as pd

from analysis.numbers import ms, sig3
from tracer.schema import as_str

ROUTING_ASSUMPTION = ("MoE expert weights per step are those of E(1-(1-k/E)^T) experts, the number a step of T tokens "
                      "touches on average under uniform routing, and fused_moe's executed FLOPs assume the same "
                      "(the trace does not show the routing: record with --moe-routing for the true counts)")


def recorded_routing_sentence(recorded: int, steps: int) -> str:
    """summary.json's `moe.routing` where the run recorded which experts its tokens went to."""
    rest = ("" if recorded == steps else
            f"; the other {steps - recorded} steps' (another composition) under uniform routing: {ROUTING_ASSUMPTION}")
    return (f"MoE expert weights and fused_moe's executed rows per step from the recorded routing (tracer record "
            f"--moe-routing) in {recorded} of {steps} steps{rest}")


def deployment_by_phase(k: pd.DataFrame) -> pd.DataFrame:
    """Per phase: kernel_us; GEMM time, DRAM bytes, dominant bound and the share of GEMM time on 8-bit tensor
    paths; quantization kernels' share; the MoE layers' share (routing, expert GEMMs)."""
    if k.empty or "model_op" not in k:
        return pd.DataFrame()
    ops = as_str(k["model_op"])
    rows = []
    # the columns it reads: each phase's group would otherwise copy every column of every launch
    used = k[[c for c in ("phase", "dur_us", "kernel_class", "bound", "precision", "dram_bytes") if c in k]]
    for phase, g in used.groupby("phase", observed=True):
        o = ops.loc[g.index]
        total = float(g["dur_us"].sum())
        if not total:
            continue
        gemm = g[g["kernel_class"].astype(str) == "gemm"]
        gemm_us = float(gemm["dur_us"].sum())
        bound = gemm.groupby("bound", observed=True)["dur_us"].sum() if len(gemm) else pd.Series(dtype=float)
        eight_bit = gemm["precision"].astype(str).isin(["fp8", "int8"]) if "precision" in gemm else False
        moe = o.str.startswith("moe.")
        quant = (g["kernel_class"].astype(str) == "quantize") | o.str.endswith(".quant")
        rows.append({
            "phase": str(phase), "kernel_us": total, "gemm_us": gemm_us, "gemm_pct": 100 * gemm_us / total,
            "gemm_dram_bytes": float(gemm["dram_bytes"].sum()) if len(gemm) else 0.0,
            "gemm_bound": str(bound.idxmax()) if len(bound) else "-",
            "gemm_8bit_pct": float(100 * gemm.loc[eight_bit, "dur_us"].sum() / gemm_us) if gemm_us else 0.0,
            "quantize_pct": float(100 * g.loc[quant, "dur_us"].sum() / total),
            "moe_pct": float(100 * g.loc[moe, "dur_us"].sum() / total),
            "moe_experts_pct": float(100 * g.loc[o.str.startswith("moe.experts."), "dur_us"].sum() / total),
            "moe_routing_pct": float(100 * g.loc[o.isin(["moe.router", "moe.routing"]), "dur_us"].sum() / total),
        })
    return pd.DataFrame(rows)


def deployment_sentences(runs) -> list[str]:
    """For a comparison: what each later run's quantization or MoE changed per phase against the first."""
    out = []
    base_label, base = runs[0]
    a_rows = {r["phase"]: r for r in (base["summary"].get("deployment") or [])}
    a_q = (base["summary"].get("quantization") or {}).get("method") or "none"
    for label, r in runs[1:]:
        b_rows = {x["phase"]: x for x in (r["summary"].get("deployment") or [])}
        b_q = (r["summary"].get("quantization") or {}).get("method") or "none"
        if a_q == b_q or not a_rows or not b_rows:
            continue
        parts = []
        for phase in ("prefill", "mixed", "decode"):
            a, b = a_rows.get(phase), b_rows.get(phase)
            if not a or not b or not a["gemm_us"]:
                continue
            parts.append(f"{phase}: GEMM kernel time {ms(b['gemm_us'])} vs {ms(a['gemm_us'])} ms "
                         f"({sig3(b['gemm_us'] / a['gemm_us'])}x), GEMM DRAM bytes {sig3(b['gemm_dram_bytes'] / a['gemm_dram_bytes']) if a['gemm_dram_bytes'] else '-'}x, "
                         f"GEMMs mostly {b['gemm_bound']}-bound (were {a['gemm_bound']}), "
                         f"{sig3(b['gemm_8bit_pct'])}% of GEMM time on 8-bit tensor cores, quantization kernels "
                         f"{sig3(b['quantize_pct'])}% of the phase")
        if parts:
            out.append(f"{label} ({b_q}) against {base_label} ({a_q}), per phase: " + "; ".join(parts) + ".")
    return out


_COLUMNS = [("phase", "phase"), ("gemm_us", "GEMM (ms)"), ("gemm_pct", "GEMM (% of phase)"),
            ("gemm_dram_bytes", "GEMM DRAM (MB)"), ("gemm_bound", "GEMM bound"),
            ("gemm_8bit_pct", "GEMM on 8-bit tensor cores (%)"), ("quantize_pct", "quantization kernels (%)"),
            ("moe_pct", "MoE layers (%)"), ("moe_experts_pct", "expert GEMMs (%)"), ("moe_routing_pct", "routing (%)")]


def deployment_markdown(runs) -> str:
    """One table, a row per run and phase, for runs whose model is quantized or has MoE layers ("" otherwise)."""
    if not any((r["summary"].get("quantization") or {}).get("method") or r["summary"].get("moe") for _, r in runs):
        return ""
    rows = []
    for label, r in runs:
        for d in r["summary"].get("deployment") or []:
            cells = [label]
            for key, _ in _COLUMNS:
                v = d.get(key)
                cells.append(ms(v) if key == "gemm_us" else sig3(v / 1e6) if key == "gemm_dram_bytes"
                             else str(v) if isinstance(v, str) else sig3(v))
            rows.append(cells)
    if not rows:
        return ""
    head = ["run"] + [h for _, h in _COLUMNS]
    lines = ["### Quantization and Mixture of Experts per phase", "", "| " + " | ".join(head) + " |",
             "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(c) + " |" for c in rows]
    return "\n".join(lines)
