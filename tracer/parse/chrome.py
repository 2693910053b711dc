"""Kineto / torch.profiler Chrome trace JSON (ours, vLLM's, other people's) into raw event frames.

One pass over the events splits them by category into column lists; no per-row objects are kept beyond the
decoded JSON. Old Kineto category names (2021: Operator, Runtime, Kernel, Memcpy, Memset) map to today's.
Attribution (phases, launching ops) happens in attribute.py, on the frames this returns.
"""
from __future__ import annotations

import orjson
import pandas as pd

from tracer.errors import TracerError

_CATEGORY = {
    "kernel": "kernel", "Kernel": "kernel",
    "gpu_memcpy": "memcpy", "Memcpy": "memcpy",
    "gpu_memset": "memset", "Memset": "memset",
    "cuda_runtime": "runtime", "Runtime": "runtime", "cuda_driver": "runtime",
    "cpu_op": "op", "Operator": "op",
    "user_annotation": "annotation", "gpu_user_annotation": "gpu_annotation",
}


def chrome_trace_frames(data: bytes, source: str) -> dict:
    """Decode a Chrome trace and return {"kernels", "memops", "runtime", "ops", "annotations"} DataFrames of raw
    columns plus "meta" (device properties, versions, distributed info)."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise TracerError(f"{source}: not valid JSON ({e}); is the file complete?") from None
    if isinstance(doc, list):  # the JSON Array Format of the Trace Event spec
        events, doc = doc, {}
    elif isinstance(doc, dict) and isinstance(doc.get("traceEvents"), list):
        events = doc["traceEvents"]
    else:
        raise TracerError(f"{source}: JSON but not a Chrome trace (no traceEvents list)")

    cols: dict[str, dict[str, list]] = {k: {} for k in ("kernel", "memcpy", "memset", "runtime", "op",
                                                        "annotation", "gpu_annotation")}
    fields = {
        "kernel": ("name", "ts", "dur", "pid", "tid", "device", "stream", "correlation", "External id", "grid",
                   "block", "registers per thread", "shared memory"),
        "memcpy": ("name", "ts", "dur", "device", "stream", "correlation", "bytes"),
        "runtime": ("name", "ts", "dur", "pid", "tid", "correlation", "External id"),
        "op": ("name", "ts", "dur", "pid", "tid", "External id", "Input Dims", "Input type", "flops"),
        "annotation": ("name", "ts", "dur", "pid", "tid"),
        "gpu_annotation": ("name", "ts", "dur"),
    }
    fields["memset"] = fields["memcpy"]
    for kind, names in fields.items():
        cols[kind] = {f: [] for f in names}
    thread_names = {}
    for e in events:
        if not isinstance(e, dict):
            continue
        kind = _CATEGORY.get(e.get("cat"))
        if kind is None or e.get("ph") != "X":
            if e.get("ph") == "M" and e.get("name") == "thread_name":
                thread_names[(e.get("pid"), e.get("tid"))] = (e.get("args") or {}).get("name")
            continue
        args = e.get("args") or {}
        c = cols[kind]
        for f in c:
            c[f].append(e.get(f) if f in ("name", "ts", "dur", "pid", "tid") else args.get(f))
    meta = {"source_format": "chrome", "device_properties": doc.get("deviceProperties", []),
            "distributed": doc.get("distributedInfo"), "trace_metadata": _small(doc.get("metadata")),
            "schema_version": doc.get("schemaVersion"), "events": len(events)}
    frames = {k: pd.DataFrame(v) for k, v in cols.items()}
    return {"kernels": frames["kernel"], "memcpy": frames["memcpy"], "memset": frames["memset"],
            "runtime": frames["runtime"], "ops": frames["op"], "annotations": frames["annotation"],
            "gpu_annotations": frames["gpu_annotation"], "meta": meta}


def _small(value):
    """Keep trace metadata that is small and safe to echo (no environment dumps, which may hold secrets)."""
    if not isinstance(value, dict):
        return None
    return {k: v for k, v in value.items() if isinstance(v, (str, int, float)) and len(str(v)) < 200
            and "token" not in k.lower() and "env" not in k.lower()}
