"""Where tracer keeps what it can rebuild (parsed tables, nsys exports of .nsys-rep reports): the user cache
folder, `$TRACER_CACHE_DIR`, else `$XDG_CACHE_HOME/tracer`, else `~/.cache/tracer`; never beside an input.
Entries are keyed on the input's content (xxh3-128 of every byte, about 0.7 GB/s here; blake2b when xxhash is
missing), so a same-size rewrite with its mtime preserved (`cp -p`) is never served stale tables."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from tracer.io.atomic import TMP_PREFIX, clean_leftovers

MAX_ENTRIES = 64   # per kind, oldest used first out


def cache_root() -> Path:
    env = os.environ.get("TRACER_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "tracer"


def cache_folder(kind: str) -> Path | None:
    """cache_root()/kind, created; None when it cannot be (read-only home): then nothing is cached."""
    d = cache_root() / kind
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return d


def content_key(path: str | Path) -> str:
    """A hash of the file's bytes and size."""
    try:
        import xxhash
        h = xxhash.xxh3_128()
    except ImportError:
        import hashlib
        h = hashlib.blake2b(digest_size=16)
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(8 * 2**20):
            h.update(chunk)
            size += len(chunk)
    return f"{h.hexdigest()}-{size}"


def touch(entry: Path) -> None:
    try:
        os.utime(entry)
    except OSError:
        pass


def prune(folder: Path, keep: int = MAX_ENTRIES) -> None:
    """Drop leftovers of killed runs, and the least recently used entries beyond `keep`."""
    clean_leftovers(folder)
    try:
        entries = [e for e in os.scandir(folder) if not e.name.startswith(TMP_PREFIX)]
        entries.sort(key=lambda e: e.stat().st_mtime_ns, reverse=True)
    except OSError:
        return
    for e in entries[keep:]:
        if e.is_dir(follow_symlinks=False):
            shutil.rmtree(e.path, ignore_errors=True)
        else:
            try:
                os.unlink(e.path)
            except OSError:
                pass
