"""Atomic writes: each file is written under a unique temporary name in its own folder and renamed into place,
so a crash or a concurrent writer never leaves a half-written file under the final name. Temporary names carry
the writer's pid, so leftovers of a killed run are recognised and removed by the next one."""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

TMP_PREFIX = ".tracer-tmp-"
_LEFTOVER = re.compile(r"^\.tracer-(?:tmp|old)-(\d+)-")


def temp_name(folder: Path, name: str = "") -> Path:
    """A fresh, unique path in `folder` (nothing created) marked with this process's pid."""
    fd, p = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{os.getpid()}-", suffix=f"-{name}", dir=folder)
    os.close(fd)
    os.unlink(p)
    return Path(p)


def write_atomic(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` through a unique temporary file and a rename."""
    return write_with(path, lambda tmp: tmp.write_bytes(data))


def write_with(path: str | Path, writer) -> Path:
    """Call `writer(tmp_path)` (e.g. DataFrame.to_parquet) on a unique temporary path, then rename it to `path`."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{os.getpid()}-", suffix=f"-{path.name}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        writer(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_leftovers(folder: str | Path) -> int:
    """Remove temporary files and folders of tracer runs that no longer live (kill -9, power loss); return how
    many. Another live run's temporaries are left alone."""
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for e in entries:
        m = _LEFTOVER.match(e.name)
        if not m or _alive(int(m.group(1))):
            continue
        try:
            if e.is_dir(follow_symlinks=False):
                shutil.rmtree(e.path, ignore_errors=True)
            else:
                os.unlink(e.path)
            removed += 1
        except OSError:
            pass
    return removed
