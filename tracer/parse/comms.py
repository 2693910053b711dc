"""The NCCL arguments of communication kernels: the `comms` table (schema.COMMS), one row per kernel of class
communication.

Kineto records what a collective moved in event args the trace tables do not keep: on the kernel itself
(PyTorch 2.2+: `Collective name`, `In msg nelems`, `Out msg nelems`, `dtype`, `Group size`, `Process Group
Name`), on the `record_param_comms` CPU op around the launch, and (older traces) as the `Input Dims` /
`Input type` of the `nccl:<collective>` annotation around it. Those events are few, so rather than widen the
hot decoding path for every trace, this module finds them in the raw bytes (a substring search) and decodes
only them. It runs only for traces that have communication kernels.
"""
from __future__ import annotations

import bisect
from pathlib import Path

import orjson
import pandas as pd

from tracer import schema
from tracer.parse.classify import collective_of

_NEEDLES = (b'"Collective name"', b'"nccl:')
_ARG_FIELDS = {"Collective name": "collective_name", "In msg nelems": "in_nelems", "Out msg nelems": "out_nelems",
               "dtype": "dtype", "Group size": "group_size", "Process Group Name": "process_group"}


def _event_at(data: bytes, hit: int) -> tuple[int, dict | None]:
    """The event whose text holds position `hit`: Kineto writes `"ph"` first in every event and comm args are
    flat, so the event starts at the `{` before the nearest `"ph"` and ends at one of the next few `}`."""
    ph = data.rfind(b'"ph"', 0, hit)
    start = data.rfind(b"{", 0, ph) if ph >= 0 else -1
    if start < 0:
        return -1, None
    end = hit
    for _ in range(6):
        end = data.find(b"}", end + 1)
        if end < 0:
            return start, None
        try:
            ev = orjson.loads(data[start:end + 1])
        except orjson.JSONDecodeError:
            continue
        return start, ev if isinstance(ev, dict) else None
    return start, None


def comm_events(data: bytes) -> dict:
    """{"kernel": {correlation: args}, "cpu": [(tid, start, end, fields)]} from the raw trace bytes: the NCCL
    args of kernels, and the CPU-side ops / annotations that carry them (innermost first when nested)."""
    kernel_args: dict[int, dict] = {}
    cpu: list[tuple] = []
    seen: set[int] = set()
    for needle in _NEEDLES:
        pos = data.find(needle)
        while pos >= 0:
            start, ev = _event_at(data, pos)
            pos = data.find(needle, pos + len(needle))
            if ev is None or ev.get("ph") != "X" or start in seen:
                continue
            seen.add(start)  # an event both needles find is taken once
            args = ev.get("args") or {}
            cat, name = ev.get("cat"), str(ev.get("name", ""))
            fields = {col: args[k] for k, col in _ARG_FIELDS.items() if k in args}
            if cat in ("kernel", "Kernel") and fields and args.get("correlation") is not None:
                kernel_args[int(args["correlation"])] = {**fields, "args_source": "kernel"}
            elif cat in ("cpu_op", "Operator") and name == "record_param_comms" and fields:
                cpu.append(_cpu_entry(ev, {**fields, "args_source": "record_param_comms"}))
            elif cat == "user_annotation" and name.startswith("nccl:"):
                cpu.append(_cpu_entry(ev, {"collective_name": name[5:], "args_source": "annotation",
                                           **_annotation_size(args)}))
    return {"kernel": kernel_args, "cpu": [c for c in cpu if c is not None]}


def _cpu_entry(ev: dict, fields: dict):
    try:
        ts, dur = float(ev["ts"]), float(ev.get("dur") or 0.0)
        return (int(ev.get("tid")), ts, ts + dur, fields)
    except (KeyError, TypeError, ValueError):
        return None


def _annotation_size(args: dict) -> dict:
    """Older traces: the `nccl:*` annotation's first input, e.g. Input Dims [[19618307]], Input type ['float']."""
    dims, types = args.get("Input Dims") or [], args.get("Input type") or []
    if not dims or not isinstance(dims[0], list) or not dims[0] or not all(isinstance(d, int) for d in dims[0]):
        return {}
    n = 1
    for d in dims[0]:
        n *= d
    out = {"in_nelems": n}
    if types and isinstance(types[0], str) and types[0]:
        out["dtype"] = types[0]
    return out


def comms_table(kernels: pd.DataFrame, events: dict | None) -> pd.DataFrame:
    """One row per communication kernel (kernel_id = its row in `kernels`) with the NCCL args found for it:
    on the kernel (by correlation), else on the innermost record_param_comms op or nccl:* annotation on the
    launching thread whose span holds the launch. The collective: NCCL's name, else the CPU op's, else the
    kernel name's."""
    comm = kernels.index[kernels["kernel_class"] == "communication"] if len(kernels) else []
    if not len(comm):
        return schema.conform_comms(pd.DataFrame())
    events = events or {"kernel": {}, "cpu": []}
    cpu = sorted(events["cpu"], key=lambda c: (c[0], c[1]))
    keys = [(c[0], c[1]) for c in cpu]
    rows = []
    for i in comm:
        k = kernels.loc[i]
        corr = k["correlation"]
        fields = events["kernel"].get(int(corr)) if pd.notna(corr) else None
        if fields is None and pd.notna(k["launch_tid"]) and pd.notna(k["launch_start_us"]):
            fields = _enclosing(cpu, keys, int(k["launch_tid"]), float(k["launch_start_us"]))
        fields = dict(fields or {"args_source": "none"})
        fields["collective"] = collective_of(str(fields.get("collective_name", "")), str(k["name"]),
                                             str(k["op_name"]))
        fields["kernel_id"] = i
        rows.append(fields)
    return schema.conform_comms(pd.DataFrame(rows))


def _enclosing(cpu: list, keys: list, tid: int, t: float) -> dict | None:
    """The innermost (latest-starting) entry on `tid` whose span holds `t`; the record_param_comms op wins over
    an annotation of the same call (it holds the element counts)."""
    j = bisect.bisect_right(keys, (tid, t)) - 1
    found = None
    while j >= 0 and keys[j][0] == tid:
        c = cpu[j]
        if c[1] <= t <= c[2]:
            if c[3].get("args_source") == "record_param_comms":
                return c[3]
            found = found or c[3]
        elif found is None and t - c[1] > 10e6:  # nothing open for 10 s before the launch: stop looking
            break
        j -= 1
    return found


def trace_comms(path: str | Path, tables: dict) -> pd.DataFrame:
    """The comms table of the trace at `path` whose tables are `tables`; the file is read again only when it
    has communication kernels and is a Chrome trace (nsys exports keep no NCCL args: names only)."""
    k = tables["kernels"]
    if k.empty or not (k["kernel_class"] == "communication").any():
        return schema.conform_comms(pd.DataFrame())
    events = None
    if tables["meta"].get("source_format") == "chrome":
        from tracer.parse.load import read_bytes
        events = comm_events(read_bytes(Path(path)))
    return comms_table(k, events)
