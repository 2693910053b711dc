"""The metadata sidecar `<trace stem>.meta.json` written beside every recording."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import orjson

TRACE_SUFFIXES = (".pt.trace.json.gz", ".json.gz", ".json", ".nsys-rep", ".sqlite.gz", ".sqlite", ".ncu.csv.gz",
                  ".ncu.csv", ".csv")


def trace_stem(trace_path: str | Path) -> Path:
    p = Path(trace_path)
    for suffix in TRACE_SUFFIXES:
        if p.name.endswith(suffix):
            return p.with_name(p.name[: -len(suffix)])
    return p.with_suffix("")


def sidecar_path(trace_path: str | Path) -> Path:
    return trace_stem(trace_path).with_name(trace_stem(trace_path).name + ".meta.json")


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write to a temporary name and rename, so a crash never leaves a half-written file behind."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_sidecar(trace_path: str | Path, meta: dict) -> Path:
    meta = {"command_line": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]), **meta}
    path = sidecar_path(trace_path)
    write_atomic(path, orjson.dumps(meta, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY
                                    | orjson.OPT_NON_STR_KEYS, default=str))
    return path


def read_sidecar(trace_path: str | Path) -> dict | None:
    path = sidecar_path(trace_path)
    if not path.exists():
        return None
    try:
        return orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError:
        return None
