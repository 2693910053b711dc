"""One table per topic, for one run (analyze) or several side by side (compare): throughput and latency, wall
time per step (GPU busy per class, GPU idle), host time per step, kernel time per class, bound shares and
verdicts, memory. Cells are text written by analysis.numbers, so the terminal, report.md and the headline show
the same digits; units are in the headers."""
from __future__ import annotations

import pandas as pd

from analysis.timing import repeat_figures as rf
from analysis.numbers import count, gib, ms, sig3
from analysis.timing.walltime import HOST_FAMILIES, IDLE_BETWEEN, IDLE_IN_STEPS
from tracer.schema import as_str

PHASE_ORDER = ("prefill", "mixed", "decode", "none")
GPU_BUSY = "GPU busy (all classes)"
WALL = "wall time"


def figures_of(result: dict) -> dict:
    return ((result["summary"].get("run") or {}).get("figures")) or {}


def _phases(runs) -> list[str]:
    seen = {p for _, r in runs for p in r["wall"]["phase"].unique()} if runs else set()
    return [p for p in PHASE_ORDER if p in seen] + sorted(seen - set(PHASE_ORDER))


def ratio_header(runs, j: int) -> str:
    return f"{runs[j][0]} / {runs[0][0]}"


def delta_header(runs, j: int) -> str:
    return f"saved by {runs[j][0]} (ms)"


# figure rows: (label, key in figures or unprofiled figures, formatter, from the unprofiled dict)
THROUGHPUT_ROWS = (
    ("output tokens/s", "output_tokens_per_s", sig3, False),
    ("TTFT (ms)", "ttft_ms", sig3, False),
    ("decode ms/token, mean", "decode_ms_per_token_mean", sig3, False),
    ("decode ms/token, p50", "decode_ms_per_token_p50", sig3, False),
    ("decode ms/token, p99", "decode_ms_per_token_p99", sig3, False),
    ("unprofiled output tokens/s", "output_tokens_per_s", sig3, True),
    ("unprofiled TTFT (ms)", "ttft_ms", sig3, True),
    ("unprofiled decode ms/token, mean", "decode_ms_per_token_mean", sig3, True),
    ("unprofiled decode ms/token, p99", "decode_ms_per_token_p99", sig3, True),
    ("profiler inflation (x)", "profiler_inflation", sig3, False),
    ("decode steps", "decode_steps", count, False),
)


def figure_value(result: dict, key: str, unprofiled: bool = False):
    f = figures_of(result)
    if key == "profiler_inflation" and key not in f and (f.get("unprofiled") or {}).get("decode_ms_per_token_mean"):
        return f["decode_ms_per_token_mean"] / f["unprofiled"]["decode_ms_per_token_mean"]
    return ((f.get("unprofiled") or {}) if unprofiled else f).get(key)


def _ratio(a, b):
    try:
        return float(b) / float(a) if a not in (None, 0) and b is not None else None
    except (TypeError, ValueError):
        return None


def throughput_table(runs) -> pd.DataFrame:
    """The figures of THROUGHPUT_ROWS; repeated figures (analysis.timing.repeat_figures) with a spread row after each,
    HF generate()'s figures and the HF-as-generate() comparison rows where a sidecar has them."""
    rows = []

    def add(label, vals, fmt=sig3, ratio=True):
        if all(v is None for v in vals):   # no run has it (no sidecar): said once in the notices, not as a row of -
            return
        row = {"figure": label, **{name: fmt(v) for (name, _), v in zip(runs, vals)}}
        for j in range(1, len(runs)):
            row[ratio_header(runs, j)] = sig3(_ratio(vals[0], vals[j])) if ratio and fmt is sig3 else "-"
        rows.append(row)

    figs = [figures_of(r) for _, r in runs]
    if any(rf.unprofiled(f).get("runs") for f in figs):
        add("unprofiled runs", [rf.unprofiled(f).get("runs") for f in figs], count)
    for label, key, fmt, unprof in THROUGHPUT_ROWS:
        add(label, [figure_value(r, key, unprof) for _, r in runs], fmt)
        if unprof and any(rf.spread(rf.unprofiled(f), key) is not None for f in figs):
            add(f"{label}: spread (±%)", [rf.spread(rf.unprofiled(f), key) for f in figs], rf.spread_text, False)
    if any(rf.profiled(f).get("runs") for f in figs):
        key = "decode_ms_per_token_mean"
        add("profiled runs", [rf.profiled(f).get("runs") for f in figs], count)
        add("profiled decode ms/token, median of runs", [rf.profiled(f).get(key) for f in figs])
        add("profiled decode ms/token: spread (±%)", [rf.spread(rf.profiled(f), key) for f in figs], rf.spread_text,
            False)
    if any(rf.has_generate(f) for f in figs):
        add("HF generate() runs", [rf.unprofiled(f).get(rf.GENERATE + "runs") for f in figs], count)
        for label, gkey, lkey in rf.GENERATE_SHOWN:
            add(f"HF generate() {label}", [rf.unprofiled(f).get(rf.GENERATE + gkey) for f in figs])
            add(f"HF generate() {label}: spread (±%)",
                [rf.unprofiled(f).get(f"{rf.GENERATE}{gkey}_spread_pct") for f in figs], rf.spread_text, False)
        if len(runs) > 1:   # the ratios a comparison quotes: HF as generate() runs it
            for label, gkey, lkey in rf.GENERATE_SHOWN:
                add(f"unprofiled {label} (HF: generate())", [rf.hf_comparable(f, lkey)[0] for f in figs])
    return pd.DataFrame(rows)


def wall_values(result: dict, phase: str) -> dict:
    """{component: us per step} of one phase, with the GPU-busy total and the wall time."""
    w = result["wall"]
    w = w[w["phase"] == phase]
    out = {r.component: r.us_per_step for r in w.itertuples() if r.kind != "wall"}
    if len(w):
        out[GPU_BUSY] = float(w.loc[w["kind"] == "gpu", "us_per_step"].sum())
        out[WALL] = float(w.loc[w["kind"] == "wall", "us_per_step"].sum())
    return out


def wall_components(runs, phase: str) -> list[str]:
    classes = sorted({c for _, r in runs for c, v in wall_values(r, phase).items()
                      if c not in (IDLE_IN_STEPS, IDLE_BETWEEN, GPU_BUSY, WALL)})
    return classes + [GPU_BUSY, IDLE_IN_STEPS, IDLE_BETWEEN, WALL]


def steps_of(result: dict, phase: str):
    w = result["wall"]
    w = w[w["phase"] == phase]
    return int(w["steps"].iloc[0]) if len(w) else None


def wall_table(runs) -> pd.DataFrame:
    """Wall time per step (ms) by phase: GPU busy per class + GPU idle in and between steps = wall."""
    rows = []
    for phase in _phases(runs):
        rows.append({"phase": phase, "component": "steps",
                     **{name: count(steps_of(r, phase)) for name, r in runs},
                     **{delta_header(runs, j): "-" for j in range(1, len(runs))}})
        vals = [wall_values(r, phase) for _, r in runs]
        for c in wall_components(runs, phase):
            row = {"phase": phase, "component": c, **{name: ms(v.get(c)) for (name, _), v in zip(runs, vals)}}
            for j in range(1, len(runs)):
                a, b = vals[0].get(c, 0.0 if vals[0] else None), vals[j].get(c, 0.0 if vals[j] else None)
                row[delta_header(runs, j)] = ms(a - b) if a is not None and b is not None else "-"
            rows.append(row)
    return pd.DataFrame(rows)


def host_values(result: dict, phase: str) -> dict:
    h = result["host"]
    h = h[h["phase"] == phase]
    return dict(zip(h["family"], h["us_per_step"]))


def host_table(runs) -> pd.DataFrame:
    """Host time per step (ms) by what the host thread was in; the families sum to the wall time."""
    rows = []
    for phase in _phases(runs):
        vals = [host_values(r, phase) for _, r in runs]
        for fam in HOST_FAMILIES:
            row = {"phase": phase, "host time in": fam, **{name: ms(v.get(fam)) for (name, _), v in zip(runs, vals)}}
            for j in range(1, len(runs)):
                a, b = vals[0].get(fam), vals[j].get(fam)
                row[delta_header(runs, j)] = ms(a - b) if a is not None and b is not None else "-"
            rows.append(row)
        walls = [sum(v.values()) if v else None for v in vals]
        row = {"phase": phase, "host time in": WALL, **{name: ms(v) for (name, _), v in zip(runs, walls)}}
        for j in range(1, len(runs)):
            row[delta_header(runs, j)] = ms(walls[0] - walls[j]) if walls[0] is not None and walls[j] is not None \
                else "-"
        rows.append(row)
    return pd.DataFrame(rows)


def has_kernels(result: dict) -> bool:
    return bool(result["summary"]["totals"]["kernels"])


def class_table(runs) -> pd.DataFrame:
    """Kernel time per phase and class: kernels (count), time (ms, summed over the phase), share (%)."""
    keyed = {}
    for name, r in runs:
        for c in r["summary"]["classes"]:
            keyed.setdefault((c["phase"], c["kernel_class"]), {})[name] = c
    order = {p: i for i, p in enumerate(PHASE_ORDER)}
    rows = []
    for (phase, cls) in sorted(keyed, key=lambda k: (order.get(k[0], 9), k[1])):
        row = {"phase": phase, "class": cls}
        for name, _ in runs:
            c = keyed[(phase, cls)].get(name)
            multi = len(runs) > 1
            row[f"{name}: kernels" if multi else "kernels"] = count(c["kernels"]) if c else "-"
            row[f"{name}: ms" if multi else "kernel time (ms)"] = ms(c["kernel_us"]) if c else "-"
            row[f"{name}: %" if multi else "% of phase kernel time"] = sig3(c["pct_of_phase"]) if c else "-"
        rows.append(row)
    return pd.DataFrame(rows)


BOUND_COLUMNS = (("GPU busy (% of wall)", "gpu_busy_pct_of_wall"),
                 ("GPU busy (% of unprofiled time)", "gpu_busy_pct_of_unprofiled"),
                 ("profiler inflation (x)", "profiler_inflation"),
                 ("memory-bound (%)", "memory_bound_pct"), ("l2-bound (%)", "l2_bound_pct"),
                 ("compute-bound (%)", "compute_bound_pct"), ("latency-bound (%)", "latency_bound_pct"),
                 ("unmodeled (%)", "unmodeled_pct"))
VERDICT_COLUMNS = ("verdict", "verdict without the profiler")


def bound_table(runs) -> pd.DataFrame:
    """Per phase and run: GPU-busy shares, the profiler's inflation, bound shares of kernel time (%)."""
    rows = []
    any_l2 = any((p.get("l2_bound_pct") or 0) > 0 for _, r in runs for p in r["summary"]["phases"])
    order = {p: i for i, p in enumerate(PHASE_ORDER)}
    for phase in sorted({p["phase"] for _, r in runs for p in r["summary"]["phases"]}, key=lambda p: order.get(p, 9)):
        for name, r in runs:
            p = next((p for p in r["summary"]["phases"] if p["phase"] == phase), None)
            if p is None:
                continue
            row = {"phase": phase} | ({"run": name} if len(runs) > 1 else {})
            for header, key in BOUND_COLUMNS:
                if key == "l2_bound_pct" and not any_l2:
                    continue
                row[header] = sig3(p.get(key))
            rows.append(row)
    return pd.DataFrame(rows)


def verdict_table(runs) -> pd.DataFrame:
    """Per phase and run: the verdict under the profiler and against the unprofiled time."""
    rows = []
    order = {p: i for i, p in enumerate(PHASE_ORDER)}
    for phase in sorted({p["phase"] for _, r in runs for p in r["summary"]["phases"]}, key=lambda p: order.get(p, 9)):
        for name, r in runs:
            p = next((p for p in r["summary"]["phases"] if p["phase"] == phase), None)
            if p is not None:
                rows.append({"phase": phase} | ({"run": name} if len(runs) > 1 else {})
                            | {"verdict": p.get("verdict") or "-",
                               "verdict without the profiler": p.get("verdict_unprofiled") or "-"})
    return pd.DataFrame(rows)


MEMORY_ROWS = (("peak allocated (GiB)", "peak_allocated_bytes", gib), ("peak reserved (GiB)", "peak_reserved_bytes", gib),
               ("NVML peak used (GiB)", "nvml_peak_memory_used_bytes", gib), ("KV cache (GiB)", "kv_cache_bytes", gib),
               ("KV blocks allocated", "kv_blocks_allocated", count), ("KV blocks used, peak", "kv_blocks_used_peak", count),
               ("host peak RSS (GiB)", "peak_rss_bytes", gib))


def memory_table(runs) -> pd.DataFrame:
    rows = []
    for label, key, fmt in MEMORY_ROWS:
        vals = [figures_of(r).get(key) for _, r in runs]
        if all(v is None for v in vals):
            continue
        row = {"memory": label, **{name: fmt(v) for (name, _), v in zip(runs, vals)}}
        for j in range(1, len(runs)):
            row[ratio_header(runs, j)] = sig3(_ratio(vals[0], vals[j]))
        rows.append(row)
    return pd.DataFrame(rows)


def top_operations_table(runs, n: int = 5) -> pd.DataFrame:
    """Per phase and run, the model operations (analysis.work.layer_map `model_op`: qkv_proj, attention, lm_head, ...)
    taking the most kernel time: ms per step, share of the phase's kernel time, % of roof (the time-weighted mean
    of its modeled kernels' roof_pct: the share of the roof-bound time it would take at its roofs) and the bound
    holding most of its time. Empty where no run maps kernels to operations (no model known)."""
    rows = []
    order = {p: i for i, p in enumerate(PHASE_ORDER)}
    for j, (name, r) in enumerate(runs):
        k = r.get("kernels")
        if k is None or k.empty or "model_op" not in k or not (as_str(k["model_op"]) != "").any():
            continue
        k = k[[c for c in ("phase", "model_op", "dur_us", "roof_pct", "bound") if c in k]]   # not every column
        phase_total_us = k.groupby(as_str(k["phase"]))["dur_us"].sum()
        k = k[as_str(k["model_op"]) != ""]
        for phase, g in k.groupby(as_str(k["phase"]), sort=False):
            steps = steps_of(r, phase) or 1
            phase_us = phase_total_us[phase]
            per_op = g.groupby(as_str(g["model_op"]))
            top = per_op["dur_us"].sum().sort_values(ascending=False).head(n)
            for op, us in top.items():
                ops = per_op.get_group(op)
                modeled = ops[ops["roof_pct"].notna()] if "roof_pct" in ops else ops.iloc[:0]
                roof = (modeled["roof_pct"] * modeled["dur_us"]).sum() / modeled["dur_us"].sum() \
                    if len(modeled) else None
                bound = ops.groupby(ops["bound"].astype(str))["dur_us"].sum().idxmax() if "bound" in ops else "-"
                rows.append({"phase": phase, "run": name, "operation": op, "ms per step": ms(us / steps),
                             "% of phase kernel time": sig3(100 * us / phase_us if phase_us else None),
                             "% of roof": sig3(roof), "bound": bound,
                             "_phase": order.get(phase, 9), "_run": j, "_us": us})
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows).sort_values(["_phase", "_run", "_us"], ascending=[True, True, False], kind="stable")
    df = df.drop(columns=["_phase", "_run", "_us"]).reset_index(drop=True)
    return df if len(runs) > 1 else df.drop(columns="run")


def top_table(result: dict) -> pd.DataFrame:
    t = result["top"]
    if t is None or t.empty:
        return pd.DataFrame()
    out = pd.DataFrame({"phase": t["phase"].astype(str), "kernel": t["short_name"].astype(str).str.slice(0, 48),
                        "class": t["kernel_class"].astype(str), "calls": t["calls"].map(count),
                        "time (ms)": t["kernel_us"].map(ms), "mean (us)": t["mean_us"].map(sig3),
                        "% of phase": t["pct_of_phase"].map(sig3)})
    if "roof_pct" in t:
        out["% of roof"] = t["roof_pct"].map(sig3)
    if "bound" in t:
        out["bound"] = t["bound"].astype(str)
    return out


def ncu_table(result: dict) -> pd.DataFrame:
    n = result["summary"].get("ncu")
    if not n:
        return pd.DataFrame()
    df = pd.DataFrame(n)
    return pd.DataFrame({c: df[c].map(count if c == "kernels" else (sig3 if df[c].dtype.kind in "fi" else str))
                         for c in df.columns})


def topic_tables(runs) -> list[tuple[str, pd.DataFrame]]:
    """[(title, table)], in reading order; tables with no rows are left out."""
    gpu = any(has_kernels(r) for _, r in runs)
    out = [("Throughput and latency", throughput_table(runs)),
           ("Wall time per step (ms): GPU busy per class + GPU idle = wall", wall_table(runs) if gpu else None),
           ("Host time per step (ms), by what the host thread was in", host_table(runs)),
           ("Kernel time per class", class_table(runs)),
           ("Top model operations per phase", top_operations_table(runs)),
           ("GPU busy and bound shares (% of kernel time)", bound_table(runs)),
           ("Verdicts", verdict_table(runs)),
           ("Memory", memory_table(runs))]
    if len(runs) == 1:
        out += [("Top kernels per phase", top_table(runs[0][1])), ("Analytic against Nsight Compute", ncu_table(runs[0][1]))]
    return [(t, df) for t, df in out if df is not None and not df.empty]


def render(tables, markdown: bool) -> str:
    parts = []
    for title, df in tables:
        if markdown:
            parts += [f"## {title}", "", df.to_markdown(index=False, disable_numparse=True), ""]
        else:
            parts += [f"{title}:", df.to_string(index=False), ""]
    return "\n".join(parts)
