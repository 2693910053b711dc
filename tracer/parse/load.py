"""Open any supported trace file, detect its format from its content, and return the schema's tables.

Formats: Chrome/Kineto JSON (plain or gzip), Nsight Systems SQLite exports (plain or gzip), .nsys-rep (exported
with nsys when it is on PATH, into the user cache). An Arrow cache in the user cache folder, keyed on the
file's content, makes a second load fast. Invalid events are dropped with a notice (validate.py).
"""
from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

from tracer.errors import TracerError
# read_bytes: imported from here by check and ncu
from tracer.io.inputs import check_regular_file, read_buffer, read_bytes  # noqa: F401

SQLITE_MAGIC = b"SQLite format 3\x00"


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
    check_regular_file(path)
    entry = cache.cache_dir(path) if use_cache else None
    if entry is not None:
        from tracer.io.forked import wait_background
        wait_background()   # a cache entry still being written by this process
        cached = cache.read(path, entry)
        if cached is not None:
            cached["meta"]["source_path"] = str(path)
            return cached
    tables = _parse(path)
    if entry is not None:
        cache.write(path, tables, entry)
    return tables


def _build(raw: dict, path: Path) -> dict:
    from tracer.parse.attribute import build_tables
    from tracer.parse.validate import drop_invalid

    notices = raw["meta"].pop("notices", []) + drop_invalid(raw)
    try:
        tables = build_tables(raw)
    except (KeyError, TypeError) as e:   # a frame without a column every trace of its format has
        raise TracerError(f"{path}: events lack a field tracer needs ({type(e).__name__}: {e})") from None
    tables["meta"]["source_path"] = str(path)
    tables["meta"]["notices"] = notices
    return tables


def _parse(path: Path) -> dict:
    if path.name.endswith(".nsys-rep"):
        return _parse_nsys_rep(path)
    data = read_buffer(path)
    fmt = detect_format(bytes(data[:64]))
    if fmt == "chrome":
        from tracer.parse.chrome import chrome_frames, decode_chrome
        decoded = decode_chrome(data, str(path))
        del data  # the raw text is no longer needed: free it before the frames and tables are built
        raw = chrome_frames(decoded)
        del decoded
    elif fmt == "nsys-sqlite":
        raw = _nsys_frames_from_bytes(data, path)
        del data
    else:
        raise TracerError(f"{path}: not a trace tracer can read (expected Chrome/Kineto JSON, an nsys SQLite "
                          "export or an .nsys-rep)")
    return _build(raw, path)


def _nsys_frames_from_bytes(data, path: Path) -> dict:
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
    """Exported once per report content into the user cache (a temporary name renamed when nsys is done, so a
    failed export is never reused), or the export that `tracer record` left beside it when that is newer."""
    from tracer.io.cache import cache_folder, known_content_key
    from tracer.parse.nsys import nsys_frames
    from tracer.tools import export_sqlite, find_tool

    beside = path.with_suffix(".sqlite")
    if beside.is_file() and beside.stat().st_mtime >= path.stat().st_mtime:
        sqlite = beside
    else:
        folder = cache_folder("nsys") or Path(tempfile.gettempdir())
        sqlite = folder / f"{known_content_key(path)}.sqlite"
        if not sqlite.is_file():
            export_sqlite(find_tool("nsys"), path, sqlite)
    return _build(nsys_frames(sqlite, label=str(path)), path)
