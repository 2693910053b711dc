"""Open any supported trace file, detect its format from its content, and return the schema's tables.

Formats: Chrome/Kineto JSON (plain or gzip), Nsight Systems SQLite exports (plain or gzip), .nsys-rep (exported
with nsys when it is on PATH). A Parquet cache beside the trace makes a second load instant.
"""
from __future__ import annotations

import gzip
import sqlite3
import tempfile
import zlib
from pathlib import Path

from tracer.errors import TracerError

SQLITE_MAGIC = b"SQLite format 3\x00"
GZIP_MAGIC = b"\x1f\x8b"


def read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when gzip; one-line errors for empty, unreadable or truncated files."""
    if not path.exists():
        raise TracerError(f"{path}: no such file")
    if path.is_dir():
        raise TracerError(f"{path}: is a folder, expected a trace file")
    data = path.read_bytes()
    if not data:
        raise TracerError(f"{path}: empty file")
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as e:
            raise TracerError(f"{path}: truncated or corrupt gzip ({e}); record or copy the trace again") from None
        if not data:
            raise TracerError(f"{path}: empty after gunzip")
    return data


def detect_format(head: bytes) -> str:
    if head.startswith(SQLITE_MAGIC):
        return "nsys-sqlite"
    stripped = head.lstrip()
    if stripped[:1] in (b"{", b"["):
        return "chrome"
    if head.startswith(b"\x00\x00") or b"QdstrmImporter" in head[:4096] or head[:4] == b"NSYS":
        return "nsys-rep"
    return "unknown"


def load_tables(path: str | Path, use_cache: bool = True) -> dict:
    """The tables {"kernels", "memops", "ops", "ranges", "meta"} of the trace at `path`."""
    from tracer.parse import cache

    path = Path(path)
    if use_cache:
        cached = cache.read(path)
        if cached is not None:
            return cached
    tables = _parse(path)
    if use_cache:
        cache.write(path, tables)
    return tables


def _parse(path: Path) -> dict:
    from tracer.parse.attribute import build_tables

    if path.name.endswith(".nsys-rep"):
        return _parse_nsys_rep(path)
    data = read_bytes(path)
    fmt = detect_format(data[:64])
    if fmt == "chrome":
        from tracer.parse.chrome import chrome_trace_frames
        raw = chrome_trace_frames(data, str(path))
        del data  # the raw text is no longer needed: free it before the tables are built
    elif fmt == "nsys-sqlite":
        raw = _nsys_frames_from_bytes(data, path)
        del data
    else:
        raise TracerError(f"{path}: not a trace tracer can read (expected Chrome/Kineto JSON, an nsys SQLite "
                          "export or an .nsys-rep)")
    tables = build_tables(raw)
    tables["meta"]["source_path"] = str(path)
    return tables


def _nsys_frames_from_bytes(data: bytes, path: Path) -> dict:
    from tracer.parse.nsys import nsys_frames

    if path.suffix == ".sqlite" and not path.name.endswith(".gz"):
        return nsys_frames(path)
    with tempfile.NamedTemporaryFile(suffix=".sqlite") as tmp:  # sqlite3 opens files, not bytes
        tmp.write(data)
        tmp.flush()
        try:
            return nsys_frames(Path(tmp.name), label=str(path))
        except sqlite3.DatabaseError as e:
            raise TracerError(f"{path}: damaged SQLite export ({e})") from None


def _parse_nsys_rep(path: Path) -> dict:
    from tracer.parse.attribute import build_tables
    from tracer.record.nsys import export_sqlite
    from tracer.record.tools import find_tool

    nsys = find_tool("nsys")
    sqlite = path.with_suffix(".sqlite")
    if not sqlite.exists() or sqlite.stat().st_mtime < path.stat().st_mtime:
        export_sqlite(nsys, path, sqlite)
    from tracer.parse.nsys import nsys_frames
    tables = build_tables(nsys_frames(sqlite))
    tables["meta"]["source_path"] = str(path)
    return tables
