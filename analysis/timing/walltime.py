"""Where the wall time of each phase and step goes, GPU side and host side.

A phase's wall time is its window on the host's clock: its own ranges where the trace has them (HF's `prefill`,
`decode`), else the union of its steps' periods (vLLM's engine steps, each from its start to the next step's
start: the scheduler and output processing after a step belong to it). Inside the window:

    wall = GPU busy per kernel class + GPU idle while a step's range runs (launch gaps)
                                     + GPU idle outside step ranges (host time between steps)

GPU busy is the union of kernel and memcpy/memset intervals (time with two kernels running counts once, for the
one that started first), on the device with most kernel time. The host side of the same window, on the threads
that own the phase's ranges, split by what the thread was in, innermost first: CUDA launch calls, graph
launches, synchronisation and copies, other CUDA API calls, ops that launched sampling kernels (sampler), other
ATen ops, and the rest (Python: model code inside steps, scheduler / generate loop between them).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.timing.intervals import covered_between, first_cover, intersect, measure_within, overlapping, union
from tracer.schema import as_str, distinct_values

IDLE_IN_STEPS = "GPU idle in steps (launch gaps)"
IDLE_BETWEEN = "GPU idle between steps (host)"
HOST_FAMILIES = ("kernel launches", "graph launches", "CUDA sync and copies", "other CUDA API", "sampler ops",
                 "ATen ops", "Python in steps (model code)", "Python between steps (scheduler, loop)")
_LAUNCH = ("cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel", "cuLaunchKernelEx",
           "cudaLaunchCooperativeKernel", "cuLaunchCooperativeKernel",
           # HIP: ATen's kernels, hipBLASLt/CK/aiter code objects (hipExtModuleLaunchKernel), Triton's modules
           "hipLaunchKernel", "hipExtLaunchKernel", "hipExtModuleLaunchKernel", "hipModuleLaunchKernel",
           "hipLaunchCooperativeKernel", "hipModuleLaunchCooperativeKernel", "hipLaunchKernelExC")


def phase_windows(ranges: pd.DataFrame) -> dict:
    """{phase: {"window": (s, e), "steps": (s, e), "n_steps": int, "tids": set, "periods": DataFrame}}."""
    out: dict = {}
    r = ranges[ranges["phase"].astype(str) != "none"]
    if r.empty:
        return out
    steps_all = ranges[ranges["step"].notna()].sort_values("start_us", kind="stable")
    for phase, g in r.groupby("phase", sort=True):
        outer = g[g["step"].isna()]
        outer = outer[outer["depth"] == outer["depth"].min()] if len(outer) else outer
        steps = g[g["step"].notna()]
        periods = _periods(steps, steps_all, outer)
        if len(outer):
            window = union(outer["start_us"], outer["end_us"])
        else:
            window = union(periods["start_us"], periods["period_end_us"])
        marks = steps if len(steps) else outer
        out[str(phase)] = {"window": window, "steps": intersect(*union(marks["start_us"], marks["end_us"]), *window),
                           "n_steps": int(len(marks)), "tids": set(g["tid"].dropna().astype(int)),
                           "periods": periods}
    return out


def _periods(steps: pd.DataFrame, steps_all: pd.DataFrame, outer: pd.DataFrame) -> pd.DataFrame:
    """Each step from its start to the next step's start on its thread (any phase), the last to the end of the
    phase range that encloses it, else to its own end."""
    frames = []
    o_s, o_e = outer["start_us"].to_numpy(dtype=float), outer["end_us"].to_numpy(dtype=float)
    all_tids = steps_all["tid"].fillna(-1)
    for tid, g in steps.groupby(steps["tid"].fillna(-1)):
        starts_all = np.sort(steps_all.loc[all_tids == tid, "start_us"].to_numpy())
        s, e = g["start_us"].to_numpy(dtype=float), g["end_us"].to_numpy(dtype=float)
        j = np.searchsorted(starts_all, s, side="right")
        has_next = j < len(starts_all)
        end = np.where(has_next, starts_all[np.minimum(j, len(starts_all) - 1)] if len(starts_all) else np.inf,
                       np.inf)
        if len(outer):
            cap = _enclosing_end(s, e, o_s, o_e)
        else:
            cap = np.where(has_next, np.inf, e)
        frames.append(pd.DataFrame({"step": g["step"].astype(int).to_numpy(), "start_us": g["start_us"].to_numpy(),
                                    "end_us": g["end_us"].to_numpy(),
                                    "period_end_us": np.maximum(np.minimum(end, cap), e)}))
    if not frames:
        return pd.DataFrame(columns=["step", "start_us", "end_us", "period_end_us"])
    return pd.concat(frames, ignore_index=True)


def _enclosing_end(s: np.ndarray, e: np.ndarray, o_s: np.ndarray, o_e: np.ndarray) -> np.ndarray:
    """For each [s, e], the latest end of the outer ranges enclosing it, else e; in blocks of rows so the
    rows x ranges masks stay small."""
    out = np.empty(len(s))
    block = max(1, 2**22 // max(len(o_s), 1))
    for i in range(0, len(s), block):
        bs, be = s[i:i + block, None], e[i:i + block, None]
        inside = (o_s[None, :] <= bs) & (o_e[None, :] >= be)
        latest = np.where(inside, o_e[None, :], -np.inf).max(axis=1)
        out[i:i + block] = np.where(inside.any(axis=1), latest, e[i:i + block])
    return out


def gpu_segments(kernels: pd.DataFrame, memops: pd.DataFrame) -> dict:
    """{class: (seg_s, seg_e)}: first-cover busy segments of the device with most kernel time, per class."""
    if not len(kernels):
        return {}
    # plain arrays and class codes: no frame of a million rows to build, no sort of a million class names
    dev = kernels.groupby(kernels["device"].fillna(-1))["dur_us"].sum().idxmax()
    on = (kernels["device"].fillna(-1) == dev).to_numpy(dtype=bool)
    start = kernels["start_us"].to_numpy(dtype=float, na_value=np.nan)[on]
    end = start + kernels["dur_us"].to_numpy(dtype=float, na_value=np.nan)[on]
    codes, distinct = distinct_values(kernels["kernel_class"])
    codes, classes = codes[on], [str(c) for c in distinct]
    if len(memops):
        m_on = (memops["device"].fillna(-1) == dev).to_numpy(dtype=bool)
        m_start = memops["start_us"].to_numpy(dtype=float, na_value=np.nan)[m_on]
        m_end = m_start + memops["dur_us"].to_numpy(dtype=float, na_value=np.nan)[m_on]
        if "memcpy/memset" not in classes:
            classes.append("memcpy/memset")
        start, end = np.r_[start, m_start], np.r_[end, m_end]
        codes = np.r_[codes, np.full(len(m_start), classes.index("memcpy/memset"))]
    known = ~np.isnan(start) & ~np.isnan(end)
    order, seg_s, seg_e = first_cover(start[known], end[known])
    cls = codes[known][order]
    keep = seg_e > seg_s
    out = {}
    for c in sorted({str(classes[i]) for i in np.unique(cls[keep])}):
        sel = keep & np.isin(cls, [i for i, name in enumerate(classes) if str(name) == c])
        out[c] = (seg_s[sel], seg_e[sel])
    return out


def _length(s, e) -> float:
    return float((np.asarray(e) - np.asarray(s)).sum())


def gpu_decomposition(windows: dict, segs: dict) -> pd.DataFrame:
    """Long table: phase, component, us, us_per_step (kernel classes, then the two idle parts, then wall)."""
    rows = []
    all_s, all_e = union(np.concatenate([s for s, _ in segs.values()]) if segs else [],
                         np.concatenate([e for _, e in segs.values()]) if segs else [])
    for phase, w in windows.items():
        ws, we = w["window"]
        ss, se = w["steps"]
        n = max(w["n_steps"], 1)
        wall = _length(ws, we)
        for c, (s, e) in sorted(segs.items()):
            us = measure_within(s, e, ws, we)
            if us > 0:
                rows.append({"phase": phase, "component": c, "kind": "gpu", "us": us})
        busy = measure_within(all_s, all_e, ws, we)
        busy_steps = measure_within(all_s, all_e, ss, se)
        in_steps = _length(ss, se)
        rows.append({"phase": phase, "component": IDLE_IN_STEPS, "kind": "idle", "us": in_steps - busy_steps})
        rows.append({"phase": phase, "component": IDLE_BETWEEN, "kind": "idle",
                     "us": (wall - in_steps) - (busy - busy_steps)})
        rows.append({"phase": phase, "component": "wall", "kind": "wall", "us": wall})
        for r in rows:
            if r["phase"] == phase:
                r["steps"] = n
    df = pd.DataFrame(rows, columns=["phase", "component", "kind", "us", "steps"])
    df["us_per_step"] = df["us"] / df["steps"]
    return df


def host_decomposition(windows: dict, ops: pd.DataFrame, runtime: pd.DataFrame | None,
                       kernels: pd.DataFrame) -> pd.DataFrame:
    """Long table: phase, family, us, us_per_step; the families sum to the phase's wall time."""
    rows = []
    runtime = runtime if runtime is not None else pd.DataFrame(columns=["name", "start_us", "dur_us", "tid"])
    # each call's family as its index in HOST_FAMILIES, worked out once per distinct API name and spread back by
    # the names' codes (not as a text per call, hashed again)
    if len(runtime):
        codes, names = distinct_values(runtime["name"])
        rt_family = pd.Index(HOST_FAMILIES).get_indexer(_host_family(names))[codes]
    else:
        rt_family = np.zeros(0, dtype=np.int64)
    sampler_ops = set(kernels.loc[as_str(kernels["kernel_class"]) == "sampling", "op_id"].dropna().astype(int)) \
        if len(kernels) else set()
    is_sampler = np.isin(np.arange(len(ops)), list(sampler_ops)) if len(ops) else np.zeros(0, bool)
    rt_s, rt_e = _starts_ends(runtime)
    op_s, op_e = _starts_ends(ops)
    rt_tid, op_tid = _tids(runtime), _tids(ops)
    for phase, w in windows.items():
        ws, we = w["window"]
        ss, se = w["steps"]
        n = max(w["n_steps"], 1)
        wall = _length(ws, we)
        # only calls and ops that overlap the phase's windows: the others change nothing inside them, and the
        # unions below need not sort them (a trace's other phases hold most of its ops)
        tids = np.fromiter(w["tids"], dtype=np.int64)
        on_rt = np.isin(rt_tid, tids) & overlapping(rt_s, rt_e, ws, we)
        on_op = np.isin(op_tid, tids) & overlapping(op_s, op_e, ws, we)
        # (family, its API calls or ops: start and end arrays, selected by mask, not frames copied whole)
        layers = [(f, rt_s, rt_e, on_rt & (rt_family == i)) for i, f in enumerate(HOST_FAMILIES[:4])]
        layers += [(HOST_FAMILIES[4], op_s, op_e, on_op & is_sampler), (HOST_FAMILIES[5], op_s, op_e, on_op)]
        acc_s, acc_e = np.zeros(0), np.zeros(0)
        before = 0.0
        for family, starts, ends, sel in layers:
            acc_s, acc_e = union(np.r_[acc_s, starts[sel]], np.r_[acc_e, ends[sel]])
            now = measure_within(acc_s, acc_e, ws, we)
            rows.append({"phase": phase, "family": family, "us": now - before, "steps": n})
            before = now
        in_steps = _length(ss, se) - measure_within(acc_s, acc_e, ss, se)
        rows.append({"phase": phase, "family": HOST_FAMILIES[6], "us": in_steps, "steps": n})
        rows.append({"phase": phase, "family": HOST_FAMILIES[7], "us": wall - before - in_steps, "steps": n})
    df = pd.DataFrame(rows, columns=["phase", "family", "us", "steps"])
    df["us_per_step"] = df["us"] / df["steps"]
    return df


def _starts_ends(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    start = df["start_us"].to_numpy(dtype=float)
    return start, start + df["dur_us"].to_numpy(dtype=float)


def _tids(df: pd.DataFrame) -> np.ndarray:
    """The rows' threads as int64, a missing one as a value no thread has (NumPy's isin, not pandas' on Int64)."""
    if not len(df):
        return np.zeros(0, dtype=np.int64)
    return df["tid"].to_numpy(dtype=np.int64, na_value=np.iinfo(np.int64).min)


def _host_family(names: pd.Series) -> pd.Series:
    """The host family (HOST_FAMILIES[:4]) of each CUDA API name."""
    rt_name = names.astype(str).str.replace(r"_v\d+$", "", regex=True)   # nsys: cudaLaunchKernel_v7000
    return pd.Series(np.select([rt_name.isin(_LAUNCH), rt_name.str.contains("GraphLaunch"),
                                rt_name.str.contains("Synchronize|Memcpy|Memset")],
                               HOST_FAMILIES[:3], HOST_FAMILIES[3]), index=names.index)


def step_table(windows: dict, segs: dict) -> pd.DataFrame:
    """One row per step: its range and period (start to the next step) and the GPU busy time inside each."""
    all_s, all_e = union(np.concatenate([s for s, _ in segs.values()]) if segs else [],
                         np.concatenate([e for _, e in segs.values()]) if segs else [])
    frames = []
    for phase, w in windows.items():
        p = w["periods"]
        if p.empty:
            continue
        p = p.copy()
        p.insert(0, "phase", phase)
        p["range_us"] = p["end_us"] - p["start_us"]
        p["period_us"] = p["period_end_us"] - p["start_us"]
        # each step its own window: the busy measure before its end less the busy measure before its start
        start = p["start_us"].to_numpy(dtype=float)
        busy_in = covered_between(all_s, all_e, start, p["end_us"].to_numpy(dtype=float))
        busy_all = covered_between(all_s, all_e, start, p["period_end_us"].to_numpy(dtype=float))
        p["gpu_busy_us"] = busy_all
        p["idle_in_step_us"] = p["range_us"] - np.array(busy_in)
        p["idle_after_step_us"] = p["period_us"] - p["range_us"] - (np.array(busy_all) - np.array(busy_in))
        frames.append(p.drop(columns=["period_end_us"]))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def step_class_table(steps: pd.DataFrame, segs: dict) -> pd.DataFrame:
    """Long table: phase, step, component, us: GPU busy per kernel class inside each step's period (start to the
    next step's start), then its idle in and after the step's range; per step the parts sum to its period."""
    if steps.empty:
        return pd.DataFrame(columns=["phase", "step", "component", "us"])
    starts = steps["start_us"].to_numpy(dtype=float)
    ends = starts + steps["period_us"].to_numpy(dtype=float)
    # every step's period its own window: the class's busy measure before its end less that before its start
    parts = {c: covered_between(s, e, starts, ends) for c, (s, e) in sorted(segs.items())}
    parts[IDLE_IN_STEPS] = steps["idle_in_step_us"].to_numpy(dtype=float)
    parts[IDLE_BETWEEN] = steps["idle_after_step_us"].to_numpy(dtype=float)
    wide = pd.DataFrame({"phase": steps["phase"].to_numpy(), "step": steps["step"].to_numpy(), **parts})
    return wide.melt(id_vars=["phase", "step"], var_name="component", value_name="us")


def walltime(tables: dict) -> dict:
    """{"gpu": long table, "host": long table, "steps": per-step table, "step_classes": per step and component}
    for the trace's phases."""
    windows = phase_windows(tables["ranges"])
    segs = gpu_segments(tables["kernels"], tables["memops"])
    steps = step_table(windows, segs)
    return {"gpu": gpu_decomposition(windows, segs),
            "host": host_decomposition(windows, tables["ops"], tables.get("runtime"), tables["kernels"]),
            "steps": steps, "step_classes": step_class_table(steps, segs)}
