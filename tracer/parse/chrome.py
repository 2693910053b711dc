"""Kineto / torch.profiler Chrome trace JSON (ours, vLLM's, other people's) into raw event frames.

One pass over the events splits them by category into column lists; no per-row objects are kept beyond the
decoded JSON. Old Kineto category names (2021: Operator, Runtime, Kernel, Memcpy, Memset) map to today's.
Attribution (phases, launching ops) happens in attribute.py, on the frames this returns.
"""
from __future__ import annotations

import re

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


CHUNK_BYTES = 64 * 2**20
# Where one event ends and the next begins, for Kineto's writers (compact or pretty): `},` then `{"ph"`
_EVENT_BOUNDARY = re.compile(rb'\}\s*,\s*\{\s*"ph"')

_FIELDS = {
    "kernel": ("name", "ts", "dur", "pid", "tid", "device", "stream", "correlation", "External id", "grid",
               "block", "registers per thread", "shared memory"),
    "memcpy": ("name", "ts", "dur", "device", "stream", "correlation", "bytes"),
    "memset": ("name", "ts", "dur", "device", "stream", "correlation", "bytes"),
    "runtime": ("name", "ts", "dur", "pid", "tid", "correlation", "External id"),
    "op": ("name", "ts", "dur", "pid", "tid", "External id", "Input Dims", "Input type", "flops"),
    "annotation": ("name", "ts", "dur", "pid", "tid"),
    "gpu_annotation": ("name", "ts", "dur"),
}
_TOP = ("name", "ts", "dur", "pid", "tid")


def _event_chunks(data: bytes):
    """Decoded pieces of a large trace, each holding a run of whole events, so the decoded objects of only one
    piece are alive at a time. Yields (header dict or None, list of events). Falls back to one piece when the
    events cannot be cut apart safely."""
    if len(data) <= CHUNK_BYTES or not data.lstrip().startswith(b"{"):
        yield None, None
        return
    cuts = []
    pos = data.find(b'"traceEvents"')
    while pos != -1:
        m = _EVENT_BOUNDARY.search(data, pos + CHUNK_BYTES if cuts else pos)
        if not m:
            break
        cuts.append(m.start())
        pos = m.start()
    if not cuts:
        yield None, None
        return
    head = orjson.loads(data[:cuts[0] + 1] + b"]}")
    yield head, head.get("traceEvents", [])
    for a, b in zip(cuts, cuts[1:]):
        yield None, orjson.loads(b"[" + data[data.index(b"{", a + 1):b + 1] + b"]")
    tail = orjson.loads(b'{"traceEvents":[' + data[data.index(b"{", cuts[-1] + 1):])
    yield tail, tail.get("traceEvents", [])


def chrome_trace_frames(data: bytes, source: str) -> dict:
    """Decode a Chrome trace and return {"kernels", "memcpy", "memset", "runtime", "ops", "annotations",
    "gpu_annotations"} DataFrames of raw columns plus "meta" (device properties, distributed info)."""
    cols = {kind: {f: [] for f in names} for kind, names in _FIELDS.items()}
    doc: dict = {}
    n_events = 0
    try:
        for header, events in _event_chunks(data):
            if events is None:  # small or unusual file: decode it whole
                doc, events = _whole(data, source)
            elif header is not None:
                doc.update({k: v for k, v in header.items() if k != "traceEvents"})
            n_events += len(events)
            _collect(events, cols)
    except orjson.JSONDecodeError as e:
        raise TracerError(f"{source}: not valid JSON ({e}); is the file complete?") from None
    meta = {"source_format": "chrome", "device_properties": doc.get("deviceProperties", []),
            "distributed": doc.get("distributedInfo"), "trace_metadata": _small(doc.get("metadata")),
            "schema_version": doc.get("schemaVersion"), "events": n_events}
    frames = {k: pd.DataFrame(v) for k, v in cols.items()}
    return {"kernels": frames["kernel"], "memcpy": frames["memcpy"], "memset": frames["memset"],
            "runtime": frames["runtime"], "ops": frames["op"], "annotations": frames["annotation"],
            "gpu_annotations": frames["gpu_annotation"], "meta": meta}


def _whole(data: bytes, source: str):
    doc = orjson.loads(data)
    if isinstance(doc, list):  # the JSON Array Format of the Trace Event spec
        return {}, doc
    if isinstance(doc, dict) and isinstance(doc.get("traceEvents"), list):
        return doc, doc["traceEvents"]
    raise TracerError(f"{source}: JSON but not a Chrome trace (no traceEvents list)")


def _collect(events: list, cols: dict) -> None:
    """Append the fields of interest of each event to its category's column lists (one pass)."""
    category = _CATEGORY
    appenders = {kind: [(f, c.append, f in _TOP) for f, c in cols[kind].items()] for kind in cols}
    for e in events:
        if e.__class__ is not dict:
            continue
        kind = category.get(e.get("cat"))
        if kind is None or e.get("ph") != "X":
            continue
        args = e.get("args") or {}
        for f, append, top in appenders[kind]:
            append(e.get(f) if top else args.get(f))


def _small(value):
    """Keep trace metadata that is small and safe to echo (no environment dumps, which may hold secrets)."""
    if not isinstance(value, dict):
        return None
    return {k: v for k, v in value.items() if isinstance(v, (str, int, float)) and len(str(v)) < 200
            and "token" not in k.lower() and "env" not in k.lower()}
