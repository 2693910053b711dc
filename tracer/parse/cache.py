"""Parquet cache beside a trace (`<trace>.tracer-cache/`), rebuilt when the trace's size or mtime changes."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import orjson
import pandas as pd

from tracer import schema

CACHE_VERSION = 5  # bump when the table layout changes


def _parser_fingerprint() -> str:
    """A hash of the parser's own source, so a cache written by other parsing code is never read back."""
    import hashlib
    h = hashlib.sha1()
    for f in sorted(Path(__file__).parent.glob("*.py")) + [Path(__file__).parents[1] / "schema.py"]:
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


_FINGERPRINT = _parser_fingerprint()


def cache_dir(path: Path) -> Path:
    return path.with_name(path.name + ".tracer-cache")


def _stamp(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "version": CACHE_VERSION, "parser": _FINGERPRINT}


def read(path: Path) -> dict | None:
    d = cache_dir(path)
    try:
        if orjson.loads((d / "stamp.json").read_bytes()) != _stamp(path):
            return None
        tables = {name: pd.read_parquet(d / f"{name}.parquet") for name in schema.TABLES}
        tables["meta"] = orjson.loads((d / "meta.json").read_bytes())
        return tables
    except (OSError, ValueError):
        return None


def write(path: Path, tables: dict) -> None:
    """Write into a fresh folder and rename it into place; a cache that cannot be written is skipped."""
    d = cache_dir(path)
    tmp = d.with_name(d.name + f".tmp{os.getpid()}")
    try:
        tmp.mkdir(parents=True, exist_ok=True)
        for name in schema.TABLES:
            tables[name].to_parquet(tmp / f"{name}.parquet", index=False)
        (tmp / "meta.json").write_bytes(orjson.dumps(tables["meta"], default=str))
        (tmp / "stamp.json").write_bytes(orjson.dumps(_stamp(path)))
        if d.exists():
            shutil.rmtree(d)
        tmp.rename(d)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
