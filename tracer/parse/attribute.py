"""From raw event frames to the schema's tables: launch correlation, launching ops, phases and steps.

A kernel belongs to the CPU-side range that encloses its launch, not to whatever overlaps it in GPU time:
kernel --correlation--> runtime/driver launch (or cudaGraphLaunch for graph replays) --thread and time-->
innermost enclosing op and phase range on that thread.
"""
from __future__ import annotations

import numpy as np
import orjson
import pandas as pd

from tracer import schema
from tracer.schema import PHASE_OF_RANGE, VLLM_STEP, as_text_category, categorical_of
from tracer.parse.classify import classify_kernels, short_kernel_name
from tracer.parse.frame_steps import SOURCE as FRAME_SOURCE, frame_step_ranges



def build_tables(raw: dict) -> dict:
    """Raw frames (chrome.py or nsys.py) -> {"kernels", "memops", "ops", "ranges", "runtime", "meta"}."""
    ranges = with_frame_steps(ranges_table(raw["annotations"], raw.get("range_source", "annotation")),
                              raw.get("frames"))
    runtime = _runtime(raw["runtime"])
    ops = ops_table(raw["ops"], ranges)
    kernels = kernels_table(raw["kernels"], runtime, ops, ranges)
    memops = memops_table(raw["memcpy"], raw["memset"], runtime, ranges)
    return {"kernels": kernels, "memops": memops, "ops": ops, "ranges": ranges,
            "runtime": runtime_table(raw["runtime"]), "meta": raw["meta"]}


def _field(raw: pd.DataFrame, name: str) -> pd.Series:
    """A raw frame's column, or all missing where the trace's events lack that field."""
    return raw[name] if name in raw else pd.Series(np.nan, index=raw.index)


def _num(series, dtype="Int64"):
    return pd.to_numeric(series, errors="coerce").astype(dtype) if len(series) else pd.Series(dtype=dtype)


def ranges_table(ann: pd.DataFrame, source: str) -> pd.DataFrame:
    if ann.empty:
        return schema.empty("ranges")
    df = pd.DataFrame({"name": ann["name"].astype("string").fillna(""),
                       "start_us": pd.to_numeric(ann["ts"], errors="coerce").astype(float),
                       "pid": _num(_field(ann, "pid")),
                       "tid": _num(_field(ann, "tid"))})
    df["end_us"] = df["start_us"] + pd.to_numeric(ann["dur"], errors="coerce").fillna(0).astype(float)
    df = df.sort_values(["start_us", "end_us"], ascending=[True, False], kind="stable").reset_index(drop=True)
    df["depth"] = _depths(df)
    m = df["name"].str.extract(VLLM_STEP)
    is_vllm = m[0].notna()
    df["source"] = np.where(is_vllm, "vllm_step", source)
    prefill_tok = pd.to_numeric(m[1], errors="coerce")   # execute_context_<n>(<prompt tokens>)
    decode_seq = pd.to_numeric(m[3], errors="coerce")    # _generation_<m>(<decode tokens>)
    has_p = (prefill_tok.fillna(0) > 0).to_numpy(dtype=bool)
    has_d = (decode_seq.fillna(0) > 0).to_numpy(dtype=bool)
    vllm_phase = np.select([has_p & has_d, has_p, has_d], ["mixed", "prefill", "decode"], "none")
    ours = df["name"].map(PHASE_OF_RANGE).fillna("none")
    df["phase"] = np.where(is_vllm, vllm_phase, ours)
    df["prefill_tokens"] = prefill_tok.astype("Int64")
    df["decode_tokens"] = decode_seq.astype("Int64")
    step = pd.Series(pd.NA, index=df.index, dtype="Int64")
    is_step = (df["name"] == "decode_step") | is_vllm
    for _, idx in df[is_step].groupby(df.loc[is_step, "name"] == "decode_step").groups.items():
        step.loc[idx] = np.arange(len(idx))
    df["step"] = step
    return schema.conform(df, "ranges")


def with_frame_steps(ranges: pd.DataFrame, frames: pd.DataFrame | None) -> pd.DataFrame:
    """The ranges plus vLLM's execute_model frames as steps (tracer/parse/frame_steps.py), where the trace has no
    step annotations of its own (with them, the frames would be the same steps again)."""
    if ranges["step"].notna().any():
        return ranges
    steps = frame_step_ranges(frames)
    if steps.empty:
        return ranges
    df = pd.concat([ranges, schema.conform(steps, "ranges")], ignore_index=True) if len(ranges) else steps
    df = df.sort_values(["start_us", "end_us"], ascending=[True, False], kind="stable").reset_index(drop=True)
    df["depth"] = _depths(df)
    return schema.conform(df, "ranges")


def _depths(df: pd.DataFrame) -> np.ndarray:
    """Nesting depth per thread; ranges sorted by start, then longest first. A range that ends exactly where
    the next begins does not enclose it (sequential steps touch)."""
    depth = np.zeros(len(df), dtype=np.int64)
    for _, idx in df.groupby(df["tid"].fillna(-1)).indices.items():
        depth[idx] = _nesting_depth(df["start_us"].to_numpy()[idx], df["end_us"].to_numpy()[idx],
                                    touching_encloses=False)
    return depth


def innermost_enclosing(t: np.ndarray, t_tid: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                        tids: np.ndarray) -> np.ndarray:
    """For each time point, the index of the innermost interval of the same thread that contains it, or -1.
    Intervals on one thread nest properly (ranges and ops are scopes), so intervals of one nesting depth are
    disjoint: one binary search per depth, deepest first, settles every point without a Python loop over them."""
    out = np.full(len(t), -1, dtype=np.int64)
    if len(starts) == 0 or len(t) == 0:
        return out
    for tid in np.unique(tids):
        sel = np.flatnonzero(tids == tid)
        pts = np.flatnonzero(t_tid == tid)
        if len(pts) == 0:
            continue
        order = sel[np.lexsort((-ends[sel], starts[sel]))]
        depth = _nesting_depth(starts[order], ends[order])
        tp = t[pts]
        found = np.full(len(pts), -1, dtype=np.int64)
        for d in range(int(depth.max()), -1, -1):
            level = order[depth == d]
            if len(level) == 0:
                continue
            s, e = starts[level], ends[level]
            todo = np.flatnonzero(found < 0)
            if len(todo) == 0:
                break
            c = np.searchsorted(s, tp[todo], side="right") - 1
            ok = c >= 0
            ok[ok] = e[c[ok]] >= tp[todo][ok]
            found[todo[ok]] = level[c[ok]]
        out[pts] = found
    return out


def _nesting_depth(s: np.ndarray, e: np.ndarray, touching_encloses: bool = True) -> np.ndarray:
    """Depth of each interval (sorted by start, longest first) in its thread's nesting: the intervals begun
    before it that have not ended by its start (by default one ending exactly then still encloses it)."""
    return np.arange(len(s)) - np.searchsorted(np.sort(e), s, side="left" if touching_encloses else "right")


def _runtime(rt: pd.DataFrame) -> pd.DataFrame:
    if rt.empty:
        return pd.DataFrame({"correlation": pd.Series(dtype="Int64"), "launch_api": pd.Series(dtype="string"),
                             "launch_start_us": pd.Series(dtype=float), "launch_tid": pd.Series(dtype="Int64"),
                             "launch_external_id": pd.Series(dtype="Int64")})
    df = pd.DataFrame({"correlation": _num(rt["correlation"]), "launch_api": as_text_category(rt["name"]),
                       "launch_start_us": pd.to_numeric(rt["ts"], errors="coerce").astype(float),
                       "launch_tid": _num(rt["tid"]),
                       "launch_external_id": _num(_field(rt, "External id"))})
    return df.dropna(subset=["correlation"]).drop_duplicates("correlation")


def runtime_table(rt: pd.DataFrame) -> pd.DataFrame:
    if rt.empty:
        return schema.empty("runtime")
    df = pd.DataFrame({"name": as_text_category(rt["name"]),
                       "start_us": pd.to_numeric(rt["ts"], errors="coerce").astype(float),
                       "dur_us": pd.to_numeric(rt["dur"], errors="coerce").astype(float),
                       "pid": _num(rt["pid"]), "tid": _num(rt["tid"]), "correlation": _num(rt["correlation"])})
    return schema.conform(df.sort_values("start_us", kind="stable").reset_index(drop=True), "runtime")


def ops_table(raw_ops: pd.DataFrame, ranges: pd.DataFrame) -> pd.DataFrame:
    if raw_ops.empty:
        return schema.empty("ops")
    df = pd.DataFrame({"name": as_text_category(raw_ops["name"]),
                       "start_us": pd.to_numeric(raw_ops["ts"], errors="coerce").astype(float),
                       "dur_us": pd.to_numeric(raw_ops["dur"], errors="coerce").astype(float),
                       "pid": _num(raw_ops["pid"]), "tid": _num(raw_ops["tid"]),
                       "external_id": _num(_field(raw_ops, "External id"))})
    df["input_shapes"] = _text_column(raw_ops.get("Input Dims"), len(df), _as_json)
    df["input_dtypes"] = _text_column(raw_ops.get("Input type"), len(df), _as_json)
    df["profiler_flops"] = pd.to_numeric(_field(raw_ops, "flops"), errors="coerce")
    phase, step, _ = _phase_of(df["start_us"].to_numpy(), df["tid"], ranges)
    df["phase"], df["step"] = phase, step
    return schema.conform(df, "ops")


def _text_column(values, n: int, to_text) -> pd.Series:
    """A text column of the tables from a raw frame's column: typed decoding already made it text; the generic
    decoding path holds JSON values, which `to_text` turns into text."""
    if values is None:
        return as_text_category(pd.Series([""] * n, dtype="string"))
    if isinstance(values.dtype, pd.CategoricalDtype) or pd.api.types.infer_dtype(values) in ("string", "empty"):
        return as_text_category(values).reset_index(drop=True)   # (an object column of lists is not text)
    return as_text_category(pd.Series([to_text(v) for v in values], dtype="string"))


def _as_json(v) -> str:
    return v if isinstance(v, str) else orjson.dumps(v).decode() if v is not None else ""


def _joined_dims(v) -> str:
    return ",".join(str(x) for x in v) if isinstance(v, list) else ""


def _phase_of(t: np.ndarray, tid: pd.Series, ranges: pd.DataFrame):
    """Phase, step and range name of the innermost phase range (ours or vLLM's) enclosing each time point."""
    n = len(t)
    step = pd.array(np.zeros(n, dtype=np.int64), dtype="Int64")
    step[:] = pd.NA
    # phase ranges, and steps whose phase analysis decides (execute_model frames)
    pr = ranges[(ranges["phase"] != "none") | (ranges["source"] == FRAME_SOURCE)]
    if pr.empty or n == 0:
        return _labels(np.full(n, -1), np.array([], dtype=object), "none"), step, _labels(np.full(n, -1), [], "")
    tids = tid.fillna(-1).to_numpy(dtype=np.int64)
    rt = pr["tid"].fillna(-1).to_numpy(dtype=np.int64)
    ends = _vllm_step_ends(pr)
    if not np.isin(tids, rt).any():  # e.g. nsys NVTX on another thread id scheme: fall back to time alone
        tids = np.zeros(n, dtype=np.int64)
        rt = np.zeros(len(pr), dtype=np.int64)
    idx = innermost_enclosing(t, tids, pr["start_us"].to_numpy(), ends, rt)
    hit = idx >= 0
    if hit.any():
        step[hit] = pr["step"].astype("Int64").iloc[idx[hit]].to_numpy()
    return (_labels(idx, pr["phase"].to_numpy(dtype=object), "none"), step,
            _labels(idx, pr["name"].to_numpy(dtype=object), ""))


def _labels(idx: np.ndarray, values, missing: str) -> pd.Categorical:
    """values[idx] as a Categorical, `missing` where idx is -1."""
    return categorical_of(np.append(np.asarray(values, dtype=object), missing), np.where(idx >= 0, idx, len(values)))


def _innermost_range_name(t: np.ndarray, tid: pd.Series, ranges: pd.DataFrame) -> np.ndarray:
    """Name of the innermost range of any kind (annotation, NVTX) enclosing each launch on its thread."""
    if ranges.empty or len(t) == 0:
        return _labels(np.full(len(t), -1), [], "")
    idx = innermost_enclosing(t, tid.fillna(-1).to_numpy(dtype=np.int64), ranges["start_us"].to_numpy(),
                              ranges["end_us"].to_numpy(), ranges["tid"].fillna(-1).to_numpy(dtype=np.int64))
    return _labels(idx, ranges["name"].to_numpy(dtype=object), "")


def _vllm_step_ends(pr: pd.DataFrame) -> np.ndarray:
    """vLLM runs the LM head and sampling after its step annotation closes (V1 `sample_tokens`), so a vLLM step
    owns what its thread launches until the next step begins (the last step: for as long again as it lasted)."""
    ends = pr["end_us"].to_numpy().copy()
    steps = pr[pr["source"].isin(["vllm_step", FRAME_SOURCE])].sort_values("start_us")
    for _, g in steps.groupby("tid", dropna=False):
        pos = [pr.index.get_loc(i) for i in g.index]
        starts = g["start_us"].to_numpy()
        for j, p in enumerate(pos):
            nxt = starts[j + 1] if j + 1 < len(pos) else ends[p] + (ends[p] - starts[j])
            ends[p] = max(ends[p], nxt - 1e-3)
    return ends


def kernels_table(raw: pd.DataFrame, runtime: pd.DataFrame, ops: pd.DataFrame, ranges: pd.DataFrame) -> pd.DataFrame:
    if raw.empty:
        return schema.empty("kernels")
    df = pd.DataFrame({"name": as_text_category(raw["name"]),
                       "start_us": pd.to_numeric(raw["ts"], errors="coerce").astype(float),
                       "dur_us": pd.to_numeric(raw["dur"], errors="coerce").astype(float),
                       "device": _num(_field(raw, "device")),
                       "stream": _num(_field(raw, "stream")),
                       "correlation": _num(raw["correlation"]),
                       "external_id": _num(_field(raw, "External id")),
                       "registers_per_thread": _num(_field(raw, "registers per thread")),
                       "shared_mem_bytes": _num(_field(raw, "shared memory"))})
    df["grid"] = _text_column(raw.get("grid"), len(df), _joined_dims)
    df["block"] = _text_column(raw.get("block"), len(df), _joined_dims)
    # sort before the wide text columns are attached: a left merge keeps this order
    df = df.sort_values("start_us", kind="stable").reset_index(drop=True)
    df = df.merge(runtime, on="correlation", how="left")
    df["graph_launch"] = df["launch_api"].fillna("").str.contains("GraphLaunch")
    _attach_ops(df, ops)
    launch_t = df["launch_start_us"].fillna(-1).to_numpy()
    df["phase"], df["step"], _ = _phase_of(launch_t, df["launch_tid"], ranges)
    df["range_name"] = _innermost_range_name(launch_t, df["launch_tid"], ranges)
    df["short_name"] = _map_categories(df["name"], short_kernel_name)
    df["kernel_class"] = classify_kernels(df["name"], df["op_name"])
    return schema.conform(df, "kernels")


def _map_categories(s: pd.Series, fn) -> pd.Series:
    """fn applied once per distinct value of a Categorical, the result again a Categorical."""
    s = as_text_category(s)
    return pd.Series(categorical_of([fn(c) for c in s.cat.categories], s.cat.codes.to_numpy()), index=s.index)


def _attach_ops(df: pd.DataFrame, ops: pd.DataFrame) -> None:
    """The launching op: by the profiler's external id where it links them, else the innermost op enclosing the
    launch on the launch thread."""
    n = len(df)
    op_idx = np.full(n, -1, dtype=np.int64)
    if not ops.empty:
        ext = df["external_id"].fillna(df["launch_external_id"])
        has_ext = ext.notna().to_numpy()
        first = (ops["external_id"].notna() & ~ops["external_id"].duplicated()).to_numpy()   # an id's first op
        ids = pd.Index(ops["external_id"].to_numpy(dtype=np.int64, na_value=-1)[first])
        at = ids.get_indexer(ext.to_numpy(dtype=np.int64, na_value=-1)[has_ext])
        op_idx[has_ext] = np.where(at >= 0, np.flatnonzero(first)[at], -1)
        missing = (op_idx < 0) & df["launch_start_us"].notna().to_numpy()
        if missing.any():
            ends = (ops["start_us"] + ops["dur_us"]).to_numpy()
            found = innermost_enclosing(df["launch_start_us"].to_numpy()[missing],
                                        df["launch_tid"].fillna(-1).to_numpy(dtype=np.int64)[missing],
                                        ops["start_us"].to_numpy(), ends,
                                        ops["tid"].fillna(-2).to_numpy(dtype=np.int64))
            op_idx[missing] = found
    hit = op_idx >= 0
    for col, src in (("op_name", "name"), ("op_input_shapes", "input_shapes"), ("op_input_dtypes", "input_dtypes")):
        if ops.empty:
            df[col] = ""
            continue
        taken = as_text_category(ops[src]).array.take(np.where(hit, op_idx, -1), allow_fill=True)  # codes only
        df[col] = as_text_category(pd.Series(taken, index=df.index))
    df["op_id"] = pd.array(np.where(hit, op_idx, -1), dtype="Int64")
    df.loc[~hit, "op_id"] = pd.NA


def memops_table(memcpy: pd.DataFrame, memset: pd.DataFrame, runtime: pd.DataFrame, ranges: pd.DataFrame):
    parts = []
    for kind, raw in (("memcpy", memcpy), ("memset", memset)):
        if raw.empty:
            continue
        parts.append(pd.DataFrame({"kind": kind, "name": raw["name"].astype("string"),
                                   "start_us": pd.to_numeric(raw["ts"], errors="coerce").astype(float),
                                   "dur_us": pd.to_numeric(raw["dur"], errors="coerce").astype(float),
                                   "bytes": _num(_field(raw, "bytes")),
                                   "device": _num(_field(raw, "device")),
                                   "stream": _num(_field(raw, "stream")),
                                   "correlation": _num(_field(raw, "correlation"))}))
    if not parts:
        return schema.empty("memops")
    df = pd.concat(parts, ignore_index=True).merge(runtime, on="correlation", how="left")
    phase, step, _ = _phase_of(df["launch_start_us"].fillna(-1).to_numpy(), df["launch_tid"], ranges)
    df["phase"], df["step"] = phase, step
    return schema.conform(df.sort_values("start_us", kind="stable").reset_index(drop=True), "memops")
