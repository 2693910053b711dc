"""Communication as its own class: each collective's bytes and achieved bandwidth, and per rank and step the
time spent computing, communicating, both at once, and neither; across ranks, the slowest one per step and how
long the others waited for it. Reads tables only (kernels, memops, ops, comms, meta).

Bandwidth follows nccl-tests (PERFORMANCE.md): algbw = size / time, with size the larger of the input and
output message (the whole buffer of all_reduce / broadcast, the gathered output of all_gather, the input of
reduce_scatter); busbw = algbw * 2(n-1)/n for all_reduce, * (n-1)/n for all_gather, reduce_scatter and
all_to_all, * 1 for broadcast, reduce, send/recv. A collective's kernel runs from the first rank's arrival,
so on a rank that waited for a straggler it includes the wait and its bandwidth reads low.

On a rank with GPU kernels, communication = communication kernels; compute = every other kernel and
memcpy/memset. On a CPU-only rank (vLLM's CPU backend: `_C::shm_allreduce`), the same from CPU ops of one
thread, where nothing overlaps by construction.
"""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd

from tracer.parse.classify import classify_kernel, collective_of

_BUSBW_FACTOR = {"all_reduce": lambda n: 2 * (n - 1) / n, "all_gather": lambda n: (n - 1) / n,
                 "reduce_scatter": lambda n: (n - 1) / n, "all_to_all": lambda n: (n - 1) / n,
                 "broadcast": lambda n: 1.0, "reduce": lambda n: 1.0, "send_recv": lambda n: 1.0,
                 "send": lambda n: 1.0, "recv": lambda n: 1.0}
_ELEM_BYTES = [(r"float8|fp8|e4m3|e5m2|byte|char|int8|uint8|bool", 1), (r"bfloat16|half|float16|short|int16", 2),
               (r"double|float64|long|int64|complexfloat", 8), (r"float|int", 4)]


def elem_bytes(dtype) -> int | None:
    """Bytes per element of a dtype as Kineto writes it (Float, BFloat16, c10::Half, long int, ...)."""
    if not isinstance(dtype, str) or not dtype:
        return None
    d = dtype.lower().replace("c10::", "").replace("torch.", "")
    for pattern, n in _ELEM_BYTES:
        if re.search(pattern, d):
            return n
    return None


def busbw_factor(collective: str, n) -> float:
    if n is None or pd.isna(n) or n < 1 or collective not in _BUSBW_FACTOR:
        return float("nan")
    return _BUSBW_FACTOR[collective](int(n))


def _largest_input(shapes: str, dtypes: str) -> tuple[float, str]:
    """Elements and dtype of the largest tensor among an op's inputs (recorded shapes as JSON)."""
    try:
        dims, types = json.loads(shapes or "[]"), json.loads(dtypes or "[]")
    except ValueError:
        return float("nan"), ""
    best, best_type = float("nan"), ""
    for i, d in enumerate(dims):
        if isinstance(d, list) and d and all(isinstance(x, list) and x and all(isinstance(y, int) for y in x)
                                             for x in d):   # a TensorList (c10d::allreduce_): its tensors together
            n = float(sum(np.prod(x) for x in d))
            if not n <= best:
                best, best_type = n, ""
        elif isinstance(d, list) and d and all(isinstance(x, int) for x in d):
            n = float(np.prod(d))
            if not n <= best:
                best, best_type = n, types[i] if i < len(types) and isinstance(types[i], str) else ""
    return best, best_type


def _dominant_float_dtype(ops: pd.DataFrame) -> str:
    """The floating dtype most op inputs of the rank have (Kineto's names: float, BFloat16, c10::Half)."""
    if not len(ops) or "input_dtypes" not in ops:
        return ""
    found = ops["input_dtypes"].astype(str).str.extractall(r'"(float|double|BFloat16|c10::Half|Half)"')[0]
    return str(found.value_counts().index[0]) if len(found) else ""


def _world_size(meta: dict):
    dist = (meta or {}).get("distributed") or {}
    return dist.get("world_size") if isinstance(dist, dict) else None


def collectives(tables: dict) -> pd.DataFrame:
    """One row per collective call of one rank's tables: where it ran (gpu kernel / cpu op), its collective,
    bytes and where they came from, group size, duration, algbw and busbw in GB/s."""
    k, world = tables["kernels"], _world_size(tables.get("meta"))
    if len(k) and (k["kernel_class"] == "communication").any():
        comm = k[k["kernel_class"] == "communication"]
        args = tables.get("comms")
        if args is not None and len(args):
            args = args.set_index("kernel_id").reindex(comm.index)
        else:
            args = pd.DataFrame(index=comm.index, columns=["in_nelems", "out_nelems", "dtype", "group_size",
                                                           "collective", "args_source"])
        out = pd.DataFrame({"on": "gpu", "name": comm["short_name"].astype(str), "step": comm["step"],
                            "phase": comm["phase"].astype(str), "start_us": comm["start_us"],
                            "dur_us": comm["dur_us"]}, index=comm.index)
        out["collective"] = [c if isinstance(c, str) and c else collective_of(str(n), str(o))
                             for c, n, o in zip(args["collective"], comm["name"], comm["op_name"])]
        nel = pd.concat([args["in_nelems"].astype("Float64"), args["out_nelems"].astype("Float64")], axis=1).max(axis=1)
        dtype = args["dtype"].astype(object)
        source = args["args_source"].astype(object).where(nel.notna(), "none")
        # no NCCL args: the launching op's largest input (vLLM's custom all-reduce records its tensor's shape)
        for i in comm.index[nel.isna().to_numpy()]:
            n, t = _largest_input(str(comm.at[i, "op_input_shapes"]), str(comm.at[i, "op_input_dtypes"]))
            if n == n:
                nel[i], dtype[i], source[i] = n, t, "op_shapes"
        group = args["group_size"].astype("Float64")
    else:
        ops = tables["ops"]
        is_comm = ops["name"].astype(str).map(lambda n: classify_kernel("", n) == "communication") \
            if len(ops) else pd.Series(dtype=bool)
        # the innermost communication op only (c10d::allreduce_ wraps record_param_comms wraps the call)
        comm = ops[is_comm.to_numpy(dtype=bool)] if len(ops) else ops
        comm = comm[~comm["name"].astype(str).isin(["record_param_comms"])]
        comm = _innermost(comm)
        out = pd.DataFrame({"on": "cpu", "name": comm["name"].astype(str), "step": comm["step"],
                            "phase": comm["phase"].astype(str), "start_us": comm["start_us"],
                            "dur_us": comm["dur_us"]}, index=comm.index)
        out["collective"] = [collective_of(str(n)) for n in comm["name"]]
        sizes = [_largest_input(str(s), str(t)) for s, t in zip(comm["input_shapes"], comm["input_dtypes"])]
        nel = pd.Series([s[0] for s in sizes], index=comm.index, dtype="Float64")
        dtype = pd.Series([s[1] for s in sizes], index=comm.index, dtype=object)
        source = pd.Series("op_shapes", index=comm.index, dtype=object).where(nel.notna(), "none")
        # Kineto records no dtype for a TensorList (gloo's c10d::allreduce_, vLLM's CPU fallback when its
        # shared-memory all-reduce is unavailable): the reduced tensor is an activation, in the ops' dominant dtype
        untyped = nel.notna() & (dtype == "")
        if untyped.any():
            dtype[untyped.to_numpy(dtype=bool)] = _dominant_float_dtype(ops)
            source[untyped.to_numpy(dtype=bool)] = "op_shapes, activation dtype"
        group = pd.Series(np.nan, index=comm.index, dtype="Float64")
    group_source = pd.Series("args", index=out.index, dtype=object).where(group.notna(), "none")
    if world:  # the trace's world size where the args name no group (vLLM's TP group is the world)
        group_source = group_source.where(group.notna(), "world_size")
        group = group.fillna(float(world))
    eb = pd.Series([elem_bytes(d) for d in dtype], index=out.index, dtype="Float64")
    out["bytes"] = (nel * eb).astype("float64")
    out["bytes_source"] = source.where(eb.notna(), "none").astype(str)
    out["group_size"] = group.astype("Int64")
    out["group_size_source"] = group_source.astype(str)
    out["algbw_gbps"] = out["bytes"] / (out["dur_us"] * 1e3)
    out["busbw_gbps"] = out["algbw_gbps"] * [busbw_factor(c, n) for c, n in zip(out["collective"], group)]
    return out.reset_index(drop=True)


def _innermost(ops: pd.DataFrame) -> pd.DataFrame:
    """Drop ops that enclose another op of the frame on the same thread."""
    if len(ops) < 2:
        return ops
    o = ops.sort_values(["tid", "start_us"])
    end = (o["start_us"] + o["dur_us"]).to_numpy()
    nxt_start = np.r_[o["start_us"].to_numpy()[1:], np.inf]
    same_tid = np.r_[o["tid"].to_numpy()[1:] == o["tid"].to_numpy()[:-1], False]
    return o[~(same_tid & (nxt_start < end))]


def union_us(starts: np.ndarray, ends: np.ndarray) -> float:
    """Length of the union of intervals."""
    if len(starts) == 0:
        return 0.0
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], ends[order]
    reach = np.maximum.accumulate(e)
    new = np.r_[True, s[1:] > reach[:-1]]
    first = np.flatnonzero(new)
    return float((np.maximum.reduceat(e, first) - s[first]).sum())


def _intervals(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    s = df["start_us"].to_numpy(dtype=float)
    return s, s + df["dur_us"].to_numpy(dtype=float)


def step_times(tables: dict) -> pd.DataFrame:
    """Per step of one rank (one row `step` <NA> for a trace without steps): window_us (first start to last end
    of its work), compute_us, comm_us, overlap_us (both at once), exposed_comm_us (comm with no compute
    beside it), idle_us (neither), all from unions of intervals."""
    k = tables["kernels"]
    if len(k):
        comm_mask = (k["kernel_class"] == "communication").to_numpy()
        comm, compute = k[comm_mask], pd.concat([k[~comm_mask], tables["memops"]], ignore_index=True)
        exclusive = False
    else:
        ops = tables["ops"]
        mask = ops["name"].astype(str).map(lambda n: classify_kernel("", n) == "communication").to_numpy(dtype=bool) \
            if len(ops) else np.zeros(0, bool)
        comm, compute = ops[mask], ops  # one CPU thread: compute is what is left of the ops' union
        exclusive = True
    if comm.empty and compute.empty:
        return pd.DataFrame()
    has_steps = compute["step"].notna().any() or comm["step"].notna().any()
    keys = sorted(set(compute["step"].dropna().astype(int)) | set(comm["step"].dropna().astype(int))) \
        if has_steps else [None]
    rows = []
    for step in keys:
        c = comm if step is None else comm[comm["step"] == step]
        w = compute if step is None else compute[compute["step"] == step]
        cs, ce = _intervals(c)
        ws, we = _intervals(w)
        comm_us, busy = union_us(cs, ce), union_us(np.r_[cs, ws], np.r_[ce, we])
        if exclusive:
            compute_us, overlap = busy - comm_us, 0.0
        else:
            compute_us = union_us(ws, we)
            overlap = compute_us + comm_us - busy
        lo, hi = min(np.r_[cs, ws]), max(np.r_[ce, we])
        rows.append({"step": step, "on": "cpu" if exclusive else "gpu", "window_us": hi - lo,
                     "compute_us": compute_us, "comm_us": comm_us, "overlap_us": overlap,
                     "exposed_comm_us": comm_us - overlap, "idle_us": (hi - lo) - busy, "collectives": len(c),
                     "comm_pct_of_window": 100 * comm_us / (hi - lo) if hi > lo else None,
                     "overlap_pct_of_comm": 100 * overlap / comm_us if comm_us else None})
    out = pd.DataFrame(rows)
    out["step"] = out["step"].astype("Int64")
    return out


def stragglers(times: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`times`: step_times of every rank with a `rank` column. Per step seen on two or more ranks: the slowest
    rank (most compute) and, per rank, wait_us: the time it spent in collectives beyond the slowest rank's
    (a rank that arrives first at a collective waits inside it for the last). Returns (times with wait_us,
    per-step summary)."""
    t = times.reset_index(drop=True)
    t["wait_us"] = np.nan
    t["_key"] = t["step"].astype("Int64").fillna(-1)
    rows = []
    for key, g in t.groupby("_key", sort=True):
        if g["rank"].nunique() < 2:
            continue
        slow = g.loc[g["compute_us"].idxmax()]
        wait = (g["comm_us"] - slow["comm_us"]).clip(lower=0)
        t.loc[g.index, "wait_us"] = wait
        others = wait[g["rank"] != slow["rank"]]
        rows.append({"step": None if key == -1 else int(key), "ranks": int(g["rank"].nunique()),
                     "slowest_rank": int(slow["rank"]), "slowest_compute_us": float(slow["compute_us"]),
                     "fastest_compute_us": float(g["compute_us"].min()),
                     "max_wait_us": float(others.max()), "mean_wait_us": float(others.mean()),
                     "total_wait_us": float(others.sum())})
    return t.drop(columns="_key"), pd.DataFrame(rows)


def communication_summary(calls: pd.DataFrame, times: pd.DataFrame, per_step: pd.DataFrame,
                          predicted: list[dict] | None = None) -> dict:
    """summary.json's `communication`: per collective (calls, bytes, time, median busbw), per rank totals over
    its steps, and the straggler steps. `predicted`: the model's tensor-parallel all-reduces of each rank
    (analysis.work.tensor_parallel.predicted_allreduce), summed and set beside the measured all_reduce rows as
    predicted_calls and predicted_bytes."""
    def records(df):
        return json.loads(df.to_json(orient="records")) if df is not None and len(df) else []

    by_coll = pd.DataFrame()
    if len(calls):
        c = calls.copy()
        if "rank" not in c:
            c["rank"] = 0
        by_coll = c.groupby(["collective", "on"], observed=True).agg(
            calls=("dur_us", "size"), ranks=("rank", "nunique"), dur_us=("dur_us", "sum"),
            bytes=("bytes", "sum"), bytes_known_pct=("bytes", lambda b: 100 * b.notna().mean()),
            median_algbw_gbps=("algbw_gbps", "median"), median_busbw_gbps=("busbw_gbps", "median")).reset_index()
    model = [p for p in (predicted or []) if p]
    if len(by_coll) and model:
        is_ar = by_coll["collective"] == "all_reduce"
        by_coll["predicted_calls"] = pd.Series(sum(p["calls"] for p in model), index=by_coll.index).where(
            is_ar).astype("Int64")
        by_coll["predicted_bytes"] = pd.Series(sum(p["bytes"] for p in model), index=by_coll.index).where(is_ar)
    per_rank = pd.DataFrame()
    if len(times):
        t = times.copy()
        if "rank" not in t:
            t["rank"] = 0
        cols = ["window_us", "compute_us", "comm_us", "overlap_us", "exposed_comm_us", "idle_us"] + \
            (["wait_us"] if "wait_us" in t else [])
        per_rank = t.groupby("rank")[cols].sum(min_count=1).reset_index()
        per_rank["steps"] = t.groupby("rank")["step"].count().to_numpy()
        per_rank["comm_pct_of_window"] = 100 * per_rank["comm_us"] / per_rank["window_us"]
        per_rank["overlap_pct_of_comm"] = 100 * per_rank["overlap_us"] / per_rank["comm_us"].where(per_rank["comm_us"] > 0)
    return {"collectives": records(by_coll), "per_rank": records(per_rank), "straggler_steps": records(per_step),
            "conventions": "busbw per nccl-tests: all_reduce 2(n-1)/n, all_gather/reduce_scatter/all_to_all "
                           "(n-1)/n, others 1; wait_us = time in collectives beyond the slowest rank's"}


def markdown(comm: dict) -> str:
    lines = ["## Communication", ""]
    for title, key in (("Collectives", "collectives"), ("Per rank", "per_rank"),
                       ("Slowest rank per step", "straggler_steps")):
        if comm.get(key):
            lines += [f"### {title}", "", pd.DataFrame(comm[key]).round(2).to_markdown(index=False), ""]
    lines.append(f"_{comm['conventions']}_")
    return "\n".join(lines) + "\n"
