"""Bounded reads of input files: regular files only (a FIFO or /dev/zero would block or never end), gunzipped
when gzip, and at most TRACER_MAX_BYTES (default 8 GiB) once decompressed, so a small gzip bomb cannot fill
memory. Every refusal is a one-line TracerError naming the file."""
from __future__ import annotations

import mmap
import os
import re
import stat
import zlib
from pathlib import Path

from tracer.errors import TracerError

try:   # Intel's igzip: gunzips traces at twice zlib's speed (623 MB out: 0.55 s against 1.23 s); zlib without it
    from isal import isal_zlib as _inflate
except ImportError:
    _inflate = zlib

GZIP_MAGIC = b"\x1f\x8b"
MAX_BYTES_ENV = "TRACER_MAX_BYTES"
DEFAULT_MAX_BYTES = 8 * 2**30
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_READ = 16 * 2**20


def max_bytes() -> int:
    """The cap on a trace's decompressed size: TRACER_MAX_BYTES as bytes or with a K/M/G/T suffix."""
    text = os.environ.get(MAX_BYTES_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_BYTES
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?", text, re.IGNORECASE)
    if not m or float(m.group(1)) <= 0:
        raise TracerError(f"{MAX_BYTES_ENV}={text!r}: expected a size such as 500M, 16G or 1073741824")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def check_regular_file(path: str | Path) -> os.stat_result:
    """stat() of a readable regular file, else a one-line error (missing, a folder, a FIFO, a device)."""
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise TracerError(f"{path}: no such file") from None
    except OSError as e:
        raise TracerError(f"{path}: cannot read ({e.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise TracerError(f"{path}: is a folder, expected a trace file")
    if not stat.S_ISREG(st.st_mode):
        kind = ("a FIFO" if stat.S_ISFIFO(st.st_mode) else "a character device" if stat.S_ISCHR(st.st_mode)
                else "a block device" if stat.S_ISBLK(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode)
                else "not a regular file")
        raise TracerError(f"{path}: is {kind}; tracer reads regular trace files only")
    return st


def _too_big(path: Path, cap: int, what: str) -> TracerError:
    return TracerError(f"{path}: {what} more than {_fmt(cap)} ({MAX_BYTES_ENV}); set {MAX_BYTES_ENV} higher "
                       "(e.g. 32G) to read it")


def _fmt(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def read_bytes(path: str | Path) -> bytes:
    """The file's bytes, gunzipped when gzip; one-line errors for special, empty, unreadable, truncated or
    oversized files."""
    return _read(Path(path), writable=False)


def read_buffer(path: str | Path) -> mmap.mmap | bytearray:
    """The file's bytes (gunzipped when gzip) in a buffer its reader may write into: a private copy-on-write
    mapping of an uncompressed file (no copy up front: each page is read on first touch, by whichever process
    touches it, and a write changes this process's page only), a bytearray for gzip. The same one-line errors
    as read_bytes."""
    return _read(Path(path), writable=True)


def _read(path: Path, writable: bool):
    """read_bytes (bytes) or read_buffer (writable): the same checks, gunzip and errors."""
    st = check_regular_file(path)
    cap = max_bytes()
    try:
        # Unbuffered: a buffered reader's read() after seek(0) joins its buffered head to the rest, a second
        # copy of the whole trace (twice the file's size at the peak); the raw file reads it once, in place.
        with open(path, "rb", buffering=0) as f:
            head = f.read(2)
            if head == GZIP_MAGIC:
                data = _gunzip(f, head, path, cap, into=bytearray() if writable else None)
            elif st.st_size > cap:
                raise _too_big(path, cap, "is")
            elif writable and head:
                data = _mapped(f)
            else:
                f.seek(0)
                data = f.readall()
    except OSError as e:
        raise TracerError(f"{path}: cannot read ({e.strerror or e})") from None
    if not len(data):
        raise TracerError(f"{path}: empty file" if head != GZIP_MAGIC else f"{path}: empty after gunzip")
    return data


def _mapped(f) -> mmap.mmap | bytearray:
    try:
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    except (OSError, ValueError):   # a file system that cannot map files
        f.seek(0)
        return bytearray(f.readall())


def release_pages(data, start: int, end: int) -> None:
    """Unmap from this process the whole pages of data[start:end] of read_buffer's file mapping, once they are
    read: a worker that decoded a span no longer holds it, so a large trace's pages are not all counted in memory
    at the end of its decode (they stay in the page cache; a later read maps them again from the file). Only for
    a range this process has not written into (a write there would be dropped). Nothing for a bytearray."""
    if isinstance(data, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        first, last = -(-start // mmap.PAGESIZE) * mmap.PAGESIZE, end // mmap.PAGESIZE * mmap.PAGESIZE
        if last > first:
            data.madvise(mmap.MADV_DONTNEED, first, last - first)


def _gunzip(f, head: bytes, path: Path, cap: int, into: bytearray | None = None) -> bytes | bytearray:
    """Streamed gunzip (every member of a multi-member file) that stops as soon as the output passes `cap`; into
    `into` when given, grown in place piece by piece (a large bytearray grows by remapping its pages, not by
    copying them: the peak is the output and one piece, not twice the output as with a join)."""
    pieces, total = [], 0
    d = _inflate.decompressobj(31)
    buf = head + f.read(_READ)
    try:
        while True:
            if not buf:
                buf = f.read(_READ)
                if not buf:
                    break
            out = d.decompress(buf, min(cap + 1 - total, _READ))
            if into is None:
                pieces.append(out)
            else:
                into += out
            total += len(out)
            if total > cap:
                raise _too_big(path, cap, "decompresses to")
            if d.unconsumed_tail:
                buf = d.unconsumed_tail
                continue
            if d.eof:
                rest = d.unused_data
                if not rest.strip(b"\x00"):
                    rest = f.read(_READ)
                    if not rest.strip(b"\x00"):   # the end, or zero padding after the last member
                        return b"".join(pieces) if into is None else into
                d, buf = _inflate.decompressobj(31), rest
                continue
            buf = b""
    except (zlib.error, _inflate.error) as e:
        raise TracerError(f"{path}: truncated or corrupt gzip ({e}); record or copy the trace again") from None
    raise TracerError(f"{path}: truncated or corrupt gzip (the file ends inside compressed data); record or copy the trace "
                      "again")
