"""The numbers the interactive report (analysis.reports.html.analysis_page) draws and lists, as plain numeric frames: roofline
points with everything a hover shows, the roofs the kernels use, kernels per step, and the kernel and model
operation tables. One row per kernel name (and model operation and layer) rather than per launch, so a report
of a million launches stays small; the per-launch rows are kernels.parquet."""
from __future__ import annotations

import numpy as np
import pandas as pd

from tracer.schema import categorical_of, distinct_values

# peaks keys that are not compute roofs (TFLOP/s): bandwidths, sizes, counts, and the text fields
NOT_COMPUTE = {"hbm_gbps", "l2_gbps", "l2_mb", "sms"}
MAX_POINTS_PER_PHASE = 2000   # above this, a phase's points are kernel names only, without the layer
NAME_CHARS = 300              # full kernel names in hovers, cut here (CUTLASS names run to kilobytes)


def roofline_points(k: pd.DataFrame, run: str = "") -> pd.DataFrame:
    """One point per phase, kernel name, model operation and layer (kernel name alone where a phase would have
    more than MAX_POINTS_PER_PHASE points): summed FLOPs over summed DRAM bytes (over L2 bytes where the model
    moves nothing to DRAM: `hollow`) against attained TFLOP/s, with calls, time, % of roof (time-weighted: the
    share of its time it would need at its roofs), the roof and bound holding most of its time, and the first
    roof flag. Unmodeled kernels have no place on a roofline and are left out.

    Computed on integer codes of the text columns, each text made once per distinct value: a trace of a million
    launches has a few hundred points, and per-launch strings, copies and group-by sorts of every column cost
    seconds. Sums are numpy's over each point's launches in trace order, as pandas' Series.sum takes them."""
    if k.empty or "flops" not in k:
        return pd.DataFrame()
    rows = np.flatnonzero(((k["work_source"].astype(str) != "unmodeled") & (k["flops"] > 0)
                           & (k["dur_us"] > 0)).to_numpy(dtype=bool))
    if len(rows) == 0:
        return pd.DataFrame()
    phase = _Coded(k["phase"], rows, _as_text)
    kernel = _Coded(k["short_name"], rows, _as_text)
    cls = _Coded(k["kernel_class"], rows, None)
    op = _Coded(k["model_op"], rows, _as_text) if "model_op" in k else _Coded.constant("", len(rows))
    layer = _Coded(k["layer"], rows, _as_layer) if "layer" in k else _Coded.constant("-", len(rows))
    peak = _Coded(k["peak_tflops"], rows, None) if "peak_tflops" in k else _Coded.constant(np.nan, len(rows))
    names = _Coded(k["name"], rows, None)
    labels = {c: _Coded(k[c], rows, _as_text) if c in k else _Coded.constant("", len(rows))
              for c in ("roof_flag", "roof", "bound")}

    def values(col, missing=np.nan):   # a sum skips missing values: a sum of zeros there
        if col not in k:
            return np.full(len(rows), missing)
        v = k[col].to_numpy(dtype=float, na_value=np.nan)[rows]
        return v if missing != missing else np.where(np.isnan(v), missing, v)
    data = {"flops": values("flops", 0.0), "dur": values("dur_us"), "dur_sum": values("dur_us", 0.0),
            "dram": values("dram_bytes", 0.0), "l2": values("l2_bytes", 0.0),
            "pct": values("roof_pct") if "roof_pct" in k else None}
    flag_text = labels["roof_flag"].text
    flagged = np.array([bool(t) for t in flag_text], dtype=bool)[labels["roof_flag"].codes] \
        if len(flag_text) else np.zeros(len(rows), bool)   # the first truthy flag (a missing one is truthy)
    frames = []
    present = phase.group != phase.missing   # groupby("phase") leaves rows without a phase out
    for p in pd.unique(phase.group[present]):
        sel = np.flatnonzero(phase.group == p)
        keys = [kernel, cls, op, layer, peak]
        ids, n = _group_ids([c.group[sel] for c in keys])
        per_kernel = n > MAX_POINTS_PER_PHASE
        if per_kernel:
            keys[3] = _Coded.constant("(all)", len(rows))
            ids, n = _group_ids([c.group[sel] for c in keys])
        frames.append(_aggregate(sel, ids, n, phase, keys, names, labels, data, flagged))
    pts = pd.concat(frames, ignore_index=True)
    pts.insert(0, "run", run)
    return pts


def _as_text(u: pd.Series) -> pd.Series:
    return u.astype(str).replace({"nan": "", "<NA>": ""})


def _as_layer(u: pd.Series) -> pd.Series:
    return u.astype("Int64").astype(str).replace({"<NA>": "-"})


class _Coded:
    """A column's rows (at `rows`) as codes into the values they take: `values` the raw values, `text` those values
    made text (by `fn`, elementwise, once each; the raw values where fn is None), `group` the rows' codes with equal
    texts sharing one, `distinct` the text of each group, `missing` the group of a missing text (-1 where there is
    none)."""

    def __init__(self, s: pd.Series | None, rows: np.ndarray | None, fn, _codes=None, _values=None):
        if s is not None:
            codes, uniques = pd.factorize(s, use_na_sentinel=False)
            _codes, _values = codes[rows], pd.Series(uniques)
        self.codes = _codes
        self.values = _values.to_numpy(dtype=object)
        self.text = fn(_values).to_numpy(dtype=object) if fn else self.values
        text_codes, self.distinct = pd.factorize(self.text, use_na_sentinel=False)
        self.group = text_codes[_codes] if len(_codes) else _codes
        missing = [i for i, t in enumerate(self.distinct) if t is None or t != t]
        self.missing = missing[0] if missing else -1

    @classmethod
    def constant(cls, value, n: int) -> "_Coded":
        return cls(None, None, None, np.zeros(n, dtype=np.int64), pd.Series([value], dtype=object))

    def at(self, row: int):
        return self.text[self.codes[row]]


def _group_ids(columns: list[np.ndarray], sort: bool = False) -> tuple[np.ndarray, int]:
    """Each row's group over the columns (codes; missing values a group of their own) and the number of groups:
    numbered in order of first appearance as groupby(sort=False, dropna=False) visits them, or with `sort` in the
    codes' order, the first column first (a sorted group-by's: codes in text order give text order). One combined
    key, factorized once."""
    key, span = np.zeros(len(columns[0]), dtype=np.int64), 1
    for codes in columns:
        size = int(codes.max()) + 1 if len(codes) else 1
        if span * size >= 2**62:   # renumbered, in the same order, before the combined key could overflow
            key, distinct = pd.factorize(key, sort=True)
            span = len(distinct)
        key, span = key * size + codes, span * size
    ids, distinct = pd.factorize(key, sort=sort)
    return ids, len(distinct)


def _aggregate(sel, ids, n, phase, keys, names, labels, data, flagged) -> pd.DataFrame:
    """One point per group: sums over its launches in trace order, firsts, and the labels with most time."""
    order = sel[np.argsort(ids, kind="stable")]
    bounds = np.r_[0, np.cumsum(np.bincount(ids, minlength=n))]
    roof = _main_label(ids, sel, labels["roof"], data["dur"])
    bound = _main_label(ids, sel, labels["bound"], data["dur"])
    pct = data["pct"]
    out = []
    for j in range(n):
        pos = order[bounds[j]:bounds[j + 1]]
        first = pos[0]
        kernel, cls, op, layer, peak = (c.at(first) for c in keys)
        flops, dram, l2, dur = (data["flops"][pos].sum(), data["dram"][pos].sum(), data["l2"][pos].sum(),
                                data["dur_sum"][pos].sum())
        hollow = not dram > 0 and l2 > 0
        intensity = flops / (dram if dram > 0 else l2) if (dram > 0 or l2 > 0) else np.nan
        hit = np.flatnonzero(flagged[pos])
        out.append({"phase": phase.at(first), "kernel": kernel, "name": str(names.at(first))[:NAME_CHARS],
                    "kernel_class": str(cls), "model_op": op or "-", "layer": layer, "calls": len(pos),
                    "time_us": dur, "mean_us": dur / len(pos), "flops": flops, "dram_bytes": dram, "l2_bytes": l2,
                    "intensity": intensity, "tflops": flops / (dur * 1e-6) / 1e12,
                    "roof_pct": _weighted_of(pct[pos], data["dur"][pos]) if pct is not None else np.nan,
                    "roof": roof[j], "bound": bound[j], "flag": labels["roof_flag"].at(pos[hit[0]]) if len(hit) else "",
                    "hollow": bool(hollow), "peak_tflops": peak})
    df = pd.DataFrame(out)
    return df[np.isfinite(df["intensity"]) & (df["intensity"] > 0) & (df["tflops"] > 0)]


def _weighted_of(values: np.ndarray, weights: np.ndarray) -> float:
    """_weighted on arrays."""
    ok = ~np.isnan(values) & ~np.isnan(weights)
    w = weights[ok].sum()
    return float((values[ok] * weights[ok]).sum() / w) if w > 0 else np.nan


def _main_label(ids: np.ndarray, sel: np.ndarray, labels: _Coded, dur: np.ndarray) -> list[str]:
    """Per group, its rows' label with most time, the first in text order on a tie; "" where all its rows' labels
    are missing (a missing label is no candidate)."""
    texts = np.array([str(t) for t in labels.distinct], dtype=object)
    order = np.argsort(texts.astype(str), kind="stable")   # the distinct labels in text order
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    group = labels.group[sel]
    present = group != labels.missing
    best = _main_by_time(ids[present], int(ids.max()) + 1 if len(ids) else 0, rank[group[present]],
                         max(len(order), 1), dur[sel][present])
    return [str(texts[order[b]]) if b >= 0 else "" for b in best]


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
    rows = np.flatnonzero(k["step"].notna().to_numpy(dtype=bool) & k["kernel_class"].notna().to_numpy(dtype=bool))
    if len(rows) == 0:
        return pd.DataFrame()
    # only the columns it needs: a copy of every column of a million launches costs seconds
    s = k[[c for c in ("phase", "step", "short_name", "kernel_class", "model_op", "dur_us") if c in k]].iloc[rows]
    step_codes, steps = pd.factorize(s["step"].to_numpy(dtype=np.int64), sort=True)
    cls = s["kernel_class"]   # grouped in its categories' order, as a group-by of the categorical column
    keys = {"phase": _text_codes(s, "phase"), "step": (step_codes, steps),
            "kernel": _text_codes(s, "short_name"),
            "kernel_class": (cls.cat.codes.to_numpy(dtype=np.int64), cls.cat.categories.astype(str).to_numpy()),
            "model_op": _text_codes(s, "model_op", empty="-", absent="-")}
    ids, n, g = _groups(keys)
    g["calls"] = np.bincount(ids, minlength=n)
    g["time_us"] = _sums(ids, {"dur": s["dur_us"].to_numpy(dtype=float, na_value=np.nan)})["dur"].to_numpy()
    g["step"] = pd.array(g["step"], dtype="Int64")
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
    ids, n, g = _groups({"phase": _text_codes(k, "phase"), "kernel": _text_codes(k, "short_name"),
                         "kernel_class": _text_codes(k, "kernel_class"),
                         "model_op": _text_codes(k, "model_op", empty="-", absent="-")})
    dur = k["dur_us"].to_numpy(dtype=float, na_value=np.nan)
    pct = k["roof_pct"].to_numpy(dtype=float, na_value=np.nan) if "roof_pct" in k else np.full(len(k), np.nan)
    flag_codes, flags = _text_codes(k, "roof_flag")
    sums = _sums(ids, {"time_us": dur, "roof_w": pct * dur, "roof_t": np.where(np.isnan(pct), np.nan, dur),
                       "flagged": (flags != "")[flag_codes].astype(np.int64)})
    g["calls"] = np.bincount(ids, minlength=n)
    g["time_us"] = sums["time_us"].to_numpy()
    g["flagged"] = sums["flagged"].to_numpy()
    for column, source in (("bound", "bound"), ("work_source", "work_source")):
        codes, texts = _text_codes(k, source)
        g[column] = pd.array(texts[_main_by_time(ids, n, codes, len(texts), dur)], dtype="str")
    roof_w, roof_t = sums["roof_w"].to_numpy(), sums["roof_t"].to_numpy()
    g["mean_us"] = g["time_us"] / g["calls"]
    g["ms_per_step"] = g["time_us"] / 1e3 / g["phase"].map(lambda p: steps_per_phase.get(p) or 1)
    g["pct_of_phase"] = 100 * g["time_us"] / g.groupby("phase")["time_us"].transform("sum")
    g["roof_pct"] = np.where(roof_t > 0, roof_w / np.where(roof_t > 0, roof_t, 1.0), np.nan)
    g.insert(0, "run", run)
    return g.sort_values(["phase", "time_us"], ascending=[True, False]).reset_index(drop=True)


def _text_codes(k: pd.DataFrame, column: str, empty: str = "", absent: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Each row's code into the column's distinct texts (`empty` for "", "nan" and "<NA>"), numbered in text order,
    and those texts; the one text `absent` where the table has no such column. Made once per distinct value: a
    million launches' strings hashed or made per row cost a tenth of a second a column."""
    if column not in k:
        return np.zeros(len(k), dtype=np.int64), np.array([absent], dtype=object)
    codes, distinct = distinct_values(k[column])
    text = _as_text(distinct.astype(object)).fillna("")
    text = categorical_of(text.replace({"": empty}) if empty else text, codes)   # categories in text order
    return text.codes.astype(np.int64), np.asarray(text.categories, dtype=object)


def _groups(keys: dict[str, tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, int, pd.DataFrame]:
    """Each row's group over the key columns (name: (each row's code, the values the codes stand for)), numbered
    in the codes' order (_group_ids with `sort`); the number of groups; and a frame of each group's key values
    (text as the schema's text dtype)."""
    codes = [c for c, _ in keys.values()]
    ids, n = _group_ids(codes, sort=True)
    first = np.full(n, len(ids), dtype=np.int64)   # each group's first row holds its key values
    np.minimum.at(first, ids, np.arange(len(ids)))
    out = {}
    for c, (name, (_, values)) in zip(codes, keys.items()):
        v = np.asarray(values)[c[first]]
        out[name] = pd.array(v, dtype="str") if v.dtype == object else v
    return ids, n, pd.DataFrame(out)


def _main_by_time(ids: np.ndarray, n: int, codes: np.ndarray, n_codes: int, dur: np.ndarray) -> np.ndarray:
    """Per group (ids 0..n-1), the code its rows take with most time, the lowest on a tie; -1 for a group
    without rows."""
    time = np.full(n * n_codes, -np.inf)
    by_pair = _sums(ids * n_codes + codes, {"dur": dur})
    time[by_pair.index.to_numpy()] = by_pair["dur"].to_numpy()
    time = time.reshape(n, n_codes)
    return np.where(time.max(axis=1) > -np.inf, time.argmax(axis=1), -1)


def _sums(ids: np.ndarray, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """Each column's sum per group id (the sorted ids that occur), over the rows in their order with pandas'
    compensated summation, missing values skipped: a group-by's sums to the last bit, so equal sums stay equal
    and sort as they did."""
    return pd.DataFrame(columns).groupby(ids).sum()


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
