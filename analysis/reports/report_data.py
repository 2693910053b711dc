"""The numbers the interactive report (analysis.reports.html_report) draws and lists, as plain numeric frames: roofline
points with everything a hover shows, the roofs the kernels use, kernels per step, and the kernel and model
operation tables. One row per kernel name (and model operation and layer) rather than per launch, so a report
of a million launches stays small; the per-launch rows are kernels.parquet."""
from __future__ import annotations

import numpy as np
import pandas as pd

# peaks keys that are not compute roofs (TFLOP/s): bandwidths, sizes, counts, and the text fields
NOT_COMPUTE = {"hbm_gbps", "l2_gbps", "l2_mb", "sms"}
MAX_POINTS_PER_PHASE = 2000   # above this, a phase's points are kernel names only, without the layer
NAME_CHARS = 300              # full kernel names in hovers, cut here (CUTLASS names run to kilobytes)


def _text(s: pd.Series) -> pd.Series:
    return s.astype(str).replace({"nan": "", "<NA>": ""})


def _weighted(values: pd.Series, weights: pd.Series) -> float:
    ok = values.notna() & weights.notna()
    w = weights[ok].sum()
    return float((values[ok] * weights[ok]).sum() / w) if w > 0 else np.nan


def _main_by_time(labels: pd.Series, dur: pd.Series) -> str:
    """The label holding most of the time (a kernel name's bound, roof)."""
    if labels.empty:
        return ""
    return str(dur.groupby(labels.astype(str)).sum().idxmax())


def roofline_points(k: pd.DataFrame, run: str = "") -> pd.DataFrame:
    """One point per phase, kernel name, model operation and layer (kernel name alone where a phase would have
    more than MAX_POINTS_PER_PHASE points): summed FLOPs over summed DRAM bytes (over L2 bytes where the model
    moves nothing to DRAM: `hollow`) against attained TFLOP/s, with calls, time, % of roof (time-weighted: the
    share of its time it would need at its roofs), the roof and bound holding most of its time, and the first
    roof flag. Unmodeled kernels have no place on a roofline and are left out."""
    if k.empty or "flops" not in k:
        return pd.DataFrame()
    m = k[(k["work_source"].astype(str) != "unmodeled") & (k["flops"] > 0) & (k["dur_us"] > 0)].copy()
    if m.empty:
        return pd.DataFrame()
    m["phase"] = _text(m["phase"])
    m["kernel"] = _text(m["short_name"])
    m["model_op"] = _text(m["model_op"]) if "model_op" in m else ""
    m["layer_s"] = m["layer"].astype("Int64").astype(str).replace({"<NA>": "-"}) if "layer" in m else "-"
    m["flag"] = _text(m["roof_flag"]) if "roof_flag" in m else ""
    m["roof_s"] = _text(m["roof"]) if "roof" in m else ""
    m["bound_s"] = _text(m["bound"]) if "bound" in m else ""
    m["l2b"] = m["l2_bytes"] if "l2_bytes" in m else np.nan
    m["peak"] = m["peak_tflops"] if "peak_tflops" in m else np.nan
    frames = []
    for phase, g in m.groupby("phase", sort=False):
        keys = ["kernel", "kernel_class", "model_op", "layer_s", "peak"]
        if g.groupby(keys, observed=True, dropna=False).ngroups > MAX_POINTS_PER_PHASE:
            g = g.assign(layer_s="(all)")
        frames.append(_aggregate(g, keys))
    pts = pd.concat(frames, ignore_index=True)
    pts.insert(0, "run", run)
    return pts


def _aggregate(g: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    rows = []
    for key, h in g.groupby(keys, observed=True, dropna=False, sort=False):
        kernel, cls, op, layer, peak = key
        flops, dram, l2, dur = h["flops"].sum(), h["dram_bytes"].sum(), h["l2b"].sum(), h["dur_us"].sum()
        hollow = not dram > 0 and l2 > 0
        intensity = flops / (dram if dram > 0 else l2) if (dram > 0 or l2 > 0) else np.nan
        rows.append({"phase": h["phase"].iat[0], "kernel": kernel, "name": str(h["name"].iat[0])[:NAME_CHARS],
                     "kernel_class": str(cls), "model_op": op or "-", "layer": layer, "calls": len(h),
                     "time_us": dur, "mean_us": dur / len(h), "flops": flops, "dram_bytes": dram, "l2_bytes": l2,
                     "intensity": intensity, "tflops": flops / (dur * 1e-6) / 1e12,
                     "roof_pct": _weighted(h["roof_pct"], h["dur_us"]) if "roof_pct" in h else np.nan,
                     "roof": _main_by_time(h["roof_s"], h["dur_us"]), "bound": _main_by_time(h["bound_s"], h["dur_us"]),
                     "flag": next((f for f in h["flag"] if f), ""), "hollow": bool(hollow), "peak_tflops": peak})
    out = pd.DataFrame(rows)
    return out[np.isfinite(out["intensity"]) & (out["intensity"] > 0) & (out["tflops"] > 0)]


def compute_roofs(peaks: dict | None, used_tflops) -> list[tuple[str, float]]:
    """[(label, TFLOP/s)] of the peaks dict's compute roofs that the kernels use (their peak_tflops), named by
    every key with that figure (`bf16/fp16`), highest first: new roofs (fp8, int8) appear once kernels use them."""
    if not peaks:
        return []
    used = {round(float(v), 6) for v in used_tflops if v == v and v}
    names: dict[float, list[str]] = {}
    for key, value in peaks.items():
        if key in NOT_COMPUTE or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if round(float(value), 6) in used:
            names.setdefault(float(value), []).append(key)
    return sorted(((("/".join(keys)), v) for v, keys in names.items()), key=lambda r: -r[1])


def memory_roofs(peaks: dict | None) -> list[tuple[str, float]]:
    """[(label, GB/s)]: DRAM, and L2 where the peaks carry it."""
    if not peaks:
        return []
    out = [("DRAM", float(peaks["hbm_gbps"]))] if peaks.get("hbm_gbps") else []
    if peaks.get("l2_gbps"):
        out.append(("L2", float(peaks["l2_gbps"])))
    return out


def step_kernels(k: pd.DataFrame, run: str = "") -> pd.DataFrame:
    """Per step, its kernels by name and model operation: calls, time, share of the step's kernel time."""
    if k.empty:
        return pd.DataFrame()
    s = k[k["step"].notna()].copy()
    if s.empty:
        return pd.DataFrame()
    s["phase"] = _text(s["phase"])
    s["kernel"] = _text(s["short_name"])
    s["model_op"] = _text(s["model_op"]).replace({"": "-"}) if "model_op" in s else "-"
    g = s.groupby(["phase", "step", "kernel", "kernel_class", "model_op"], observed=True).agg(
        calls=("dur_us", "size"), time_us=("dur_us", "sum")).reset_index()
    g["kernel_class"] = g["kernel_class"].astype(str)
    g["pct_of_step"] = 100 * g["time_us"] / g.groupby(["phase", "step"])["time_us"].transform("sum")
    g.insert(0, "step_key", step_key(run, g["phase"], g["step"]))
    g.insert(0, "run", run)
    return g.sort_values(["phase", "step", "time_us"], ascending=[True, True, False]).reset_index(drop=True)


def step_key(run: str, phase, step) -> pd.Series:
    """`run: phase step N`, the label a step is chosen by."""
    prefix = f"{run}: " if run else ""
    return prefix + pd.Series(phase).astype(str).reset_index(drop=True) + " step " \
        + pd.Series(step).astype("Int64").astype(str).reset_index(drop=True)


def kernel_table(k: pd.DataFrame, steps_per_phase: dict, run: str = "") -> pd.DataFrame:
    """Per phase, kernel name, class and model operation: calls, time, per step, mean, share of the phase's
    kernel time, time-weighted % of roof, the bound holding most of its time, flagged calls."""
    if k.empty:
        return pd.DataFrame()
    d = k.assign(phase=_text(k["phase"]), kernel=_text(k["short_name"]), kernel_class=_text(k["kernel_class"]),
                 model_op=_text(k["model_op"]).replace({"": "-"}) if "model_op" in k else "-",
                 flagged=(_text(k["roof_flag"]) != "") if "roof_flag" in k else False,
                 bound_s=_text(k["bound"]) if "bound" in k else "",
                 work=_text(k["work_source"]) if "work_source" in k else "",
                 roof_w=(k["roof_pct"] * k["dur_us"]) if "roof_pct" in k else np.nan,
                 roof_t=k["dur_us"].where(k["roof_pct"].notna()) if "roof_pct" in k else np.nan)
    keys = ["phase", "kernel", "kernel_class", "model_op"]
    g = d.groupby(keys, observed=True).agg(calls=("dur_us", "size"), time_us=("dur_us", "sum"),
                                           roof_w=("roof_w", "sum"), roof_t=("roof_t", "sum"),
                                           flagged=("flagged", "sum")).reset_index()
    bound = d.groupby(keys + ["bound_s"], observed=True)["dur_us"].sum().reset_index() \
        .sort_values("dur_us", ascending=False).drop_duplicates(keys)
    work = d.groupby(keys + ["work"], observed=True)["dur_us"].sum().reset_index() \
        .sort_values("dur_us", ascending=False).drop_duplicates(keys)
    g = g.merge(bound[keys + ["bound_s"]], on=keys, how="left").merge(work[keys + ["work"]], on=keys, how="left")
    g["mean_us"] = g["time_us"] / g["calls"]
    g["ms_per_step"] = g["time_us"] / 1e3 / g["phase"].map(lambda p: steps_per_phase.get(p) or 1)
    g["pct_of_phase"] = 100 * g["time_us"] / g.groupby("phase")["time_us"].transform("sum")
    g["roof_pct"] = np.where(g["roof_t"] > 0, g["roof_w"] / g["roof_t"].where(g["roof_t"] > 0), np.nan)
    g = g.rename(columns={"bound_s": "bound", "work": "work_source"}).drop(columns=["roof_w", "roof_t"])
    g.insert(0, "run", run)
    return g.sort_values(["phase", "time_us"], ascending=[True, False]).reset_index(drop=True)


def operation_table(kernels: pd.DataFrame) -> pd.DataFrame:
    """Per run, phase and model operation (from kernel_table's rows): calls, time, ms per step, share of the
    phase's kernel time, time-weighted % of roof, the bound holding most of its time."""
    k = kernels[kernels["model_op"] != "-"] if len(kernels) else kernels
    if k.empty:
        return pd.DataFrame()
    k = k.assign(roof_w=k["roof_pct"] * k["time_us"], roof_t=k["time_us"].where(k["roof_pct"].notna()))
    keys = ["run", "phase", "model_op"]
    g = k.groupby(keys).agg(kernels=("kernel", "nunique"), calls=("calls", "sum"), time_us=("time_us", "sum"),
                            ms_per_step=("ms_per_step", "sum"), pct_of_phase=("pct_of_phase", "sum"),
                            roof_w=("roof_w", "sum"), roof_t=("roof_t", "sum")).reset_index()
    bound = k.groupby(keys + ["bound"])["time_us"].sum().reset_index().sort_values("time_us", ascending=False) \
        .drop_duplicates(keys)
    g = g.merge(bound[keys + ["bound"]], on=keys, how="left")
    g["roof_pct"] = np.where(g["roof_t"] > 0, g["roof_w"] / g["roof_t"].where(g["roof_t"] > 0), np.nan)
    return g.drop(columns=["roof_w", "roof_t"]).sort_values(["run", "phase", "time_us"],
                                                            ascending=[True, True, False]).reset_index(drop=True)


def steps_per_phase(result: dict) -> dict:
    w = result["wall"]
    return {str(p): int(g["steps"].iloc[0]) for p, g in w.groupby("phase")} if len(w) else {}
