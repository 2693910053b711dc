"""Kineto / torch.profiler Chrome trace JSON (ours, vLLM's, other people's) into raw event frames.

One pass over the events splits them by category into column lists; no per-row objects are kept beyond the
decoded JSON. Old Kineto category names (2021: Operator, Runtime, Kernel, Memcpy, Memset) map to today's.
Attribution (phases, launching ops) happens in attribute.py, on the frames this returns."""
from __future__ import annotations

import contextlib
import gc
import operator
import os
import re

import orjson
import pandas as pd

from tracer.errors import TracerError
from tracer.io.inputs import release_pages
from tracer.parse.unescaped_quotes import NOTICES, NotJSON, decoded_with_name_quotes_escaped

_CATEGORY = {
    "kernel": "kernel", "Kernel": "kernel",
    "gpu_memcpy": "memcpy", "Memcpy": "memcpy",
    "gpu_memset": "memset", "Memset": "memset",
    "cuda_runtime": "runtime", "Runtime": "runtime", "cuda_driver": "runtime",
    "cpu_op": "op", "Operator": "op",
    "user_annotation": "annotation", "gpu_user_annotation": "gpu_annotation", "python_function": "frame",
}
# Of the Python frames (traces recorded with stacks) only vLLM's execute_model ones are kept: they mark the engine
# steps of vLLM versions that write no step annotations (tracer/parse/frame_steps.py)
_FRAME_KEEP = b"execute_model"

# Spans of 4 MB: a worker's objects stay small enough to reuse freed memory and caches, the cores finish
# together, and traces from 4 MB up are decoded on every core (a 36 MB trace: 0.95 -> 0.25 s; the 623 MB one:
# 3.1 -> 2.65 s, against 64 MB spans)
CHUNK_BYTES = 4 * 2**20
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
    "frame": ("name", "ts", "dur", "pid", "tid"),
}
_TOP = ("name", "ts", "dur", "pid", "tid")


def _event_spans(data):
    """Byte spans of the traceEvents array, each holding whole events (about CHUNK_BYTES), so the decoded objects
    of only one span are alive at a time; None when the events cannot be cut apart safely (decode it whole)."""
    key = data.find(b'"traceEvents"')
    if len(data) <= CHUNK_BYTES or key < 0 or not bytes(data[:4096]).lstrip().startswith(b"{"):
        return None
    first = data.find(b"[", key) + 1
    cuts = [first - 1]
    while True:
        m = _EVENT_BOUNDARY.search(data, cuts[-1] + CHUNK_BYTES)
        if not m:
            break
        cuts.append(m.start())
    if len(cuts) == 1:
        return None
    starts = [first] + [data.find(b"{", c + 1) for c in cuts[1:]]
    ends = [c + 1 for c in cuts[1:]] + [None]  # the last span runs to the end of the document
    return list(zip(starts, ends))


# A span framed as a JSON document: its events as an array; the last one (to the file's end) as the document's tail
_ARRAY = (b"[", b"]")
_TAIL = (b'{"traceEvents":[', b"")


def _decode_span_events(data, span, decoder):
    """decoder.decode of one span framed as a document. In a writable buffer the frame is written over the bytes
    just outside the span (a separator; for the last span, the end of the span before it) and put back after:
    no copy of the span. Safe because one process decodes one span at a time, and forked workers write into
    their own copy-on-write pages. A read-only buffer gets a framed copy."""
    start, end = span
    head, tail = _TAIL if end is None else _ARRAY
    end = len(data) if end is None else end
    view = memoryview(data)
    if view.readonly:
        return decoder.decode(head + data[start:end] + tail)
    lo, hi = start - len(head), end + len(tail)
    saved_head, saved_tail = bytes(view[lo:start]), bytes(view[end:hi])
    view[lo:start], view[end:hi] = head, tail
    try:
        return decoder.decode(view[lo:hi])
    finally:
        view[lo:start], view[end:hi] = saved_head, saved_tail


_DATA = b""  # the trace, inherited by forked workers instead of being sent to them


def _decode_span(span):
    from tracer.parse.chrome_events import DOCUMENT, EVENTS
    trailer = {}
    if span[1] is None:
        doc = _decode_span_events(_DATA, span, DOCUMENT)
        events = doc.traceEvents
        trailer = _trailer(doc)
        del doc
    else:
        events = _decode_span_events(_DATA, span, EVENTS)
    cols = _new_columns()
    no_ph = _collect_typed(events, cols)
    release_pages(_DATA, span[0], len(_DATA) if span[1] is None else span[1])   # the span is in `cols` now
    return len(events), cols, no_ph, trailer


_TRAILER_KEYS = ("deviceProperties", "distributedInfo", "schemaVersion")


def _trailer(doc) -> dict:
    """Document keys written after traceEvents (some writers put deviceProperties last): the same trace must
    describe the same device whether it is decoded whole or in pieces."""
    out = {}
    for key in _TRAILER_KEYS:
        raw = bytes(getattr(doc, key))
        if raw:
            out[key] = orjson.loads(raw)
    return out


def _decode_spans(data, spans: list):
    """Decode the spans in order, on every core where the platform can fork (workers read the trace from the
    parent's memory), else one after another: also in a process that multiprocessing started (a rank of
    `tracer analyze DIR`, whose pool already runs a trace per core)."""
    global _DATA
    import multiprocessing

    from tracer.io.forked import cores_free, wait_background

    wait_background()   # no fork while a background thread may hold a lock
    _DATA = data
    workers = min(len(spans), os.cpu_count() or 1, 8) if multiprocessing.parent_process() is None else 1
    try:
        if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                yield from pool.imap(_decode_span, spans)
            cores_free()   # what is left of the parse runs on one core
        else:
            yield from map(_decode_span, spans)
    finally:
        _DATA = b""


def _header(data) -> dict:
    """The document's keys before traceEvents (device properties, versions) without decoding the events."""
    key = data.find(b'"traceEvents"')
    try:
        return orjson.loads(data[:key] + b'"traceEvents":[]}')
    except orjson.JSONDecodeError:
        return {}


def chrome_trace_frames(data, source: str) -> dict:
    """Decode a Chrome trace (bytes, or the writable buffer of tracer.io.inputs.read_buffer, decoded in place)
    and return {"kernels", "memcpy", "memset", "runtime", "ops", "annotations", "gpu_annotations"} DataFrames of
    raw columns plus "meta" (device properties, distributed info)."""
    return chrome_frames(decode_chrome(data, source))


def decode_chrome(data, source: str) -> tuple:
    """The events of a Chrome trace as compact columns (Arrow arrays where the types are Kineto's), for
    chrome_frames: in two steps so that the caller can free the trace's text between them."""
    with _collector_off():
        try:
            return _decode(data, source)
        except NotJSON as e:   # PyTorch's unescaped quotes in names, or a broken file
            return decoded_with_name_quotes_escaped(_decode, data, source, e)


def chrome_frames(decoded: tuple) -> dict:
    """The frames and meta of decode_chrome's result."""
    doc, cols, n_events, typed, no_ph = decoded
    with _collector_off():
        frames = _frames_from_arrow(cols) if typed else {k: pd.DataFrame(v) for k, v in cols.items()}
    meta = {"source_format": "chrome", "device_properties": doc.get("deviceProperties", []),
            "distributed": doc.get("distributedInfo"), "trace_metadata": _small(doc.get("metadata")),
            "schema_version": doc.get("schemaVersion"), "events": n_events,
            "notices": [f"{n} {kind} events without ph 'X' (complete event) dropped: their start and duration "
                        "are not known" for kind, n in no_ph.items() if n] + doc.get(NOTICES, [])}
    return {"kernels": frames["kernel"], "memcpy": frames["memcpy"], "memset": frames["memset"],
            "runtime": frames["runtime"], "ops": frames["op"], "annotations": frames["annotation"],
            "gpu_annotations": frames["gpu_annotation"], "frames": frames["frame"], "meta": meta}


@contextlib.contextmanager
def _collector_off():
    """Millions of fresh containers, no cycles among them: the cyclic collector would only rescan them."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def _new_columns() -> dict:
    return {kind: {f: [] for f in names} for kind, names in _FIELDS.items()}


def _decode(data, source: str):
    """Typed decoding (msgspec) first, piece by piece for large files; the generic dict path where a trace's
    field types differ from Kineto's (old or foreign writers)."""
    import msgspec

    from tracer.parse.chrome_events import DOCUMENT, EVENTS

    spans = _event_spans(data)
    try:
        cols, n, no_ph = _new_columns(), 0, {}
        if spans is None:
            doc = orjson.loads(memoryview(data))
            if isinstance(doc, list):
                events = EVENTS.decode(data)
                doc = {}
            elif isinstance(doc, dict) and isinstance(doc.get("traceEvents"), list):
                events = DOCUMENT.decode(data).traceEvents
            else:
                raise TracerError(f"{source}: JSON but not a Chrome trace (no traceEvents list)")
            n += len(events)
            no_ph = _collect_typed(events, cols)
            del events
        else:
            doc = _header(data)
            for n_span, span_cols, span_no_ph, trailer in _decode_spans(data, spans):
                n += n_span
                doc.update(trailer)
                for kind, k in span_no_ph.items():
                    no_ph[kind] = no_ph.get(kind, 0) + k
                for kind, fields in span_cols.items():
                    for f, arrays in fields.items():
                        cols[kind][f].extend(arrays)
        return doc, cols, n, True, no_ph
    except (msgspec.ValidationError, msgspec.DecodeError):
        pass
    except orjson.JSONDecodeError as e:
        raise NotJSON(str(e)) from None
    cols = _new_columns()
    try:
        doc, events = _whole(data, source)
    except orjson.JSONDecodeError as e:
        raise NotJSON(str(e)) from None
    no_ph = _collect(events, cols)
    return doc, cols, len(events), False, no_ph


_ATTR = {"External id": "external_id", "registers per thread": "registers", "shared memory": "shared",
         "Input Dims": "input_dims", "Input type": "input_type"}
_FLOAT = {"ts", "dur", "bytes", "flops"}
_DIMS = {"grid", "block"}
_REPEATED_TEXT = {"name", "Input Dims", "Input type"} | _DIMS   # dictionary-encoded in the worker


def _collect_typed(events: list, cols: dict) -> dict:
    """Group one piece's events by category and append them to `cols` as Arrow arrays: compact columns, so
    only this piece's Python objects are alive at any time. Returns the count of dropped events per kind."""
    import pyarrow as pa

    from tracer.parse.chrome_events import Complete

    groups: dict[str, list] = {k: [] for k in cols}
    no_ph: dict[str, int] = {}
    category = _CATEGORY
    for e in events:
        if e.__class__ is Complete:
            kind = category.get(e.cat)
            if kind is not None and (kind != "frame" or _FRAME_KEEP in bytes(e.name)):
                groups[kind].append(e)
        elif e.cat in category and category[e.cat] != "frame":   # Kineto writes these as complete events only
            no_ph[category[e.cat]] = no_ph.get(category[e.cat], 0) + 1
    for kind, evs in groups.items():
        if not evs:
            continue
        args = list(map(operator.attrgetter("args"), evs))
        for f in cols[kind]:   # a field at a time (map in C) beats a tuple per event transposed by zip
            values = list(map(operator.attrgetter(f), evs)) if f in _TOP else \
                list(map(operator.attrgetter(_ATTR.get(f, f)), args))
            cols[kind][f].append(_arrow(f, values, pa))
    return no_ph


def _arrow(field: str, values, pa):
    if field in _FLOAT:
        try:
            return pa.array(values, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowTypeError):   # numbers written as text (ROCm's "bytes": "1")
            return pa.array(pd.to_numeric(pd.Series(values, dtype=object), errors="coerce"), pa.float64())
    # Text that repeats (names, shapes, type lists, launch dims) is dictionary-encoded here, in the worker: a few
    # hundred distinct values travel back instead of millions of strings, shapes are compacted once per
    # distinct value, and the tables keep them as categoricals (cheap to sort, merge and take).
    if field in _REPEATED_TEXT:
        encoded = _raw_json_array(values, pa).dictionary_encode()
        return pa.DictionaryArray.from_arrays(encoded.indices, _distinct_text(encoded.dictionary, field, pa))
    try:
        return pa.array(values, pa.int64())
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):  # ids written as text by some tools
        return pa.array([None if v is None else str(v) for v in values], pa.string())


def _raw_json_array(raws, pa):
    """msgspec.Raw values as one Arrow string array built from a joined buffer and offsets, without a bytes
    object per value (that was a third of the per-event cost). A missing field is an empty string."""
    import numpy as np

    n = len(raws)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(np.fromiter(map(len, raws), dtype=np.int64, count=n), out=offsets[1:])
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(b"".join(raws)))


def _distinct_text(raw, field: str, pa):
    """The text of each distinct raw JSON value. Names are JSON strings, decoded (escapes and all). Shapes and
    type lists stay JSON text in one canonical compact form, whoever wrote the trace (Kineto writes `[1, 2]`,
    orjson `[1,2]`): shapes hold numbers only, so all blanks go; type lists are strings, so only the blanks
    between them go. Launch dims `[2048, 1, 1]` become `2048,1,1`."""
    import pyarrow.compute as pc

    if field == "name":
        return pa.array([_json_text(v) for v in raw.to_pylist()], pa.string())
    if field == "Input type":
        return pc.replace_substring_regex(raw, r'"\s*,\s*"', '","')
    compact = pc.replace_substring_regex(raw, r"\s+", "")
    return pc.replace_substring_regex(compact, r"^\[|\]$", "") if field in _DIMS else compact


def _json_text(raw: str) -> str:
    if not raw:
        return ""
    value = orjson.loads(raw)
    return value if isinstance(value, str) else "" if value is None else str(value)


def _frames_from_arrow(cols: dict) -> dict:
    import pyarrow as pa

    frames = {}
    for kind in list(cols):
        fields = cols.pop(kind)   # each kind's Arrow columns freed once its frame is built
        data = {}
        for f, chunks in fields.items():
            if not chunks:
                continue
            if all(pa.types.is_dictionary(c.type) for c in chunks):
                data[f] = pa.chunked_array(chunks).unify_dictionaries()   # -> a pandas Categorical
                continue
            types = {c.type for c in chunks}
            if len(types) > 1:
                chunks = [c.cast(pa.string()) for c in chunks]
            data[f] = pa.chunked_array(chunks)
        frames[kind] = pa.table(data).to_pandas() if data else pd.DataFrame()
    return frames


def _whole(data, source: str):
    doc = orjson.loads(memoryview(data))
    if isinstance(doc, list):  # the JSON Array Format of the Trace Event spec
        return {}, doc
    if isinstance(doc, dict) and isinstance(doc.get("traceEvents"), list):
        return doc, doc["traceEvents"]
    raise TracerError(f"{source}: JSON but not a Chrome trace (no traceEvents list)")


def _collect(events: list, cols: dict) -> dict:
    """Append the fields of interest of each event to its category's column lists (one pass)."""
    category = _CATEGORY
    appenders = {kind: [(f, c.append, f in _TOP) for f, c in cols[kind].items()] for kind in cols}
    no_ph: dict[str, int] = {}
    for e in events:
        if e.__class__ is not dict:
            continue
        kind = category.get(e.get("cat")) if isinstance(e.get("cat"), str) else None
        if kind is None:
            continue
        if kind == "frame" and (e.get("ph") != "X" or _FRAME_KEEP.decode() not in str(e.get("name"))):
            continue
        if e.get("ph") != "X":
            no_ph[kind] = no_ph.get(kind, 0) + 1
            continue
        args = e.get("args") if isinstance(e.get("args"), dict) else {}
        for f, append, top in appenders[kind]:
            append(e.get(f) if top else args.get(f))
    return no_ph


def _small(value):
    """Keep trace metadata that is small and safe to echo (no environment dumps, which may hold secrets)."""
    return None if not isinstance(value, dict) else {
        k: v for k, v in value.items() if isinstance(v, (str, int, float)) and len(str(v)) < 200
        and "token" not in k.lower() and "env" not in k.lower()}
