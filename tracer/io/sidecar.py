"""The metadata sidecar `<trace stem>.meta.json` written beside every recording, and how a trace path maps to it."""
from __future__ import annotations

import sys
from pathlib import Path

import orjson

from tracer.io.atomic import write_atomic

TRACE_SUFFIXES = (".pt.trace.json.gz", ".json.gz", ".json", ".nsys-rep", ".sqlite.gz", ".sqlite", ".ncu.csv.gz",
                  ".ncu.csv", ".csv")
SIDECAR_KEY = "tracer_sidecar_version"   # present in every sidecar tracer writes: marks the files as ours


def trace_stem(trace_path: str | Path) -> Path:
    p = Path(trace_path)
    for suffix in TRACE_SUFFIXES:
        if p.name.endswith(suffix):
            return p.with_name(p.name[: -len(suffix)])
    return p.with_suffix("")


def sidecar_path(trace_path: str | Path) -> Path:
    return trace_stem(trace_path).with_name(trace_stem(trace_path).name + ".meta.json")


def write_sidecar(trace_path: str | Path, meta: dict) -> Path:
    meta = {"command_line": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]), **meta}
    path = sidecar_path(trace_path)
    write_atomic(path, orjson.dumps(meta, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY
                                    | orjson.OPT_NON_STR_KEYS, default=str))
    return path


def read_sidecar(trace_path: str | Path) -> dict | None:
    """The sidecar as a dict; None when there is none or it is not a JSON object (a damaged sidecar is ignored,
    the trace alone still analyses)."""
    path = sidecar_path(trace_path)
    try:
        if not path.is_file():
            return None
        meta = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return meta if isinstance(meta, dict) else None


def is_our_recording(trace_path: str | Path) -> bool:
    """Whether the trace at this path was written by `tracer record` (its sidecar says so)."""
    return SIDECAR_KEY in (read_sidecar(trace_path) or {})
