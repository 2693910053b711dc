"""Output folders: checked before any work (a folder we can write, no file of the user's in the way), then built
in a temporary folder beside it and renamed into place whole, so a reader, a concurrent run or a kill -9 never
sees a folder mixing two runs. A marker file lists what tracer wrote there: those files are ours to replace;
any other file of the same name is the user's and is kept unless --force."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import orjson

from tracer.errors import TracerError
from tracer.io.atomic import TMP_PREFIX, clean_leftovers, write_atomic

MARKER = ".tracer-outputs.json"
# Folders written before the marker existed are recognised by the file that says what they are; then only
# these names count as ours
_LEGACY = {"summary.json": "summary_version", "comparison.json": None, "sweep.json": "meta"}
ANALYSIS_FILES = ("kernels.parquet", "ops.parquet", "summary.json", "roofline.png", "breakdown.png", "report.md",
                  "report.html")
COMPARE_FILES = ("comparison.json", "roofline.png", "breakdown.png", "report.md", "report.html")
SWEEP_FILES = ("sweep.parquet", "sweep.csv", "sweep.json", "nvml_timeline.parquet", "throughput_latency.png",
               "memory.png", "gpu_utilization.png", "report.html")


def our_files(folder: str | Path) -> set[str]:
    """Names of the files tracer wrote into `folder` (by its marker, or by a summary/sweep of ours)."""
    folder = Path(folder)
    try:
        names = orjson.loads((folder / MARKER).read_bytes())
        if isinstance(names, dict) and isinstance(names.get("files"), list):
            return set(map(str, names["files"])) | {MARKER}
    except (OSError, orjson.JSONDecodeError):
        pass
    for name, key in _LEGACY.items():
        try:
            doc = orjson.loads((folder / name).read_bytes())
        except (OSError, orjson.JSONDecodeError):
            continue
        if isinstance(doc, dict) and (key is None or key in doc):
            return {p.name for p in folder.iterdir() if p.is_file()} & set(ANALYSIS_FILES + COMPARE_FILES
                                                                             + SWEEP_FILES)
    return set()


def _writable(folder: Path) -> bool:
    """Whether we can create files in `folder`, by trying (os.access says yes to root even on read-only mounts)."""
    try:
        fd, p = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{os.getpid()}-probe-", dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.unlink(p)
    return True


def check_out_dir(out: str | Path, names, force: bool = False, flag: str = "--out") -> Path:
    """Fail now, before the work, if `out` cannot hold our outputs: not a folder, not writable, or holding files
    of these names that tracer did not write (unless `force`)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise TracerError(f"{flag} {out}: is a file, expected a folder")
    anchor = out
    while not anchor.exists():
        if anchor.parent == anchor:
            break
        anchor = anchor.parent
    if not anchor.is_dir():
        raise TracerError(f"{flag} {out}: {anchor} is a file, so no folder can be made there")
    if not _writable(anchor):
        raise TracerError(f"{flag} {out}: cannot write into {anchor} (permissions or a read-only file system)")
    if out.is_dir() and not force:
        ours = our_files(out)
        clash = sorted(n for n in names if (out / n).exists() and n not in ours)
        if clash:
            raise TracerError(f"{flag} {out}: would replace {', '.join(clash)}, not written by tracer; choose "
                              "another folder or pass --force")
    return out


def check_out_file(path: str | Path, is_ours, force: bool = False, flag: str = "--out") -> Path:
    """Fail now if `path` cannot be written, or exists and `is_ours(path)` says tracer did not write it."""
    path = Path(path)
    if path.is_dir():
        raise TracerError(f"{flag} {path}: is a folder, expected a file name")
    check_out_dir(path.parent, (), force, flag)
    if path.exists() and not force and not is_ours(path):
        raise TracerError(f"{flag} {path}: exists and was not written by tracer; choose another name or pass "
                          "--force")
    return path


@contextlib.contextmanager
def output_folder(out: str | Path):
    """Yield an empty temporary folder; when the block ends without error, its files become `out`: the whole
    folder renamed into place when `out` is new or holds only our outputs, else file by file (atomic renames)
    beside the user's other files. On error nothing of it is left (once background threads and child jobs, which may
    be writing into it, are done or stopped)."""
    out = Path(out).absolute()
    base = out.parent
    base.mkdir(parents=True, exist_ok=True)
    if not _writable(base):   # a writable output folder in a read-only parent: build inside it instead
        out.mkdir(parents=True, exist_ok=True)
        base = out
    clean_leftovers(base)
    if base is not out and out.is_dir():
        clean_leftovers(out)
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-", suffix=f"-{out.name}", dir=base))
    try:
        try:
            yield tmp
        except BaseException:
            from tracer.io.forked import stop_child_jobs, wait_background
            wait_background()   # the folder is removed whole, never while a thread or child writes into it
            stop_child_jobs()
            raise
        names = sorted(p.name for p in tmp.iterdir())
        write_atomic(tmp / MARKER, orjson.dumps({"files": names}))
        _publish(tmp, out, names)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _publish(tmp: Path, out: Path, names: list[str]) -> None:
    for _ in range(50):  # concurrent runs into one folder: retry until one whole folder is in place
        if tmp.parent == out.parent:
            try:
                os.rename(tmp, out)
                return
            except OSError:
                pass   # `out` exists (or appeared meanwhile) and is not empty
            if out.is_dir() and _only_ours(out):
                old = Path(tempfile.mkdtemp(prefix=f".tracer-old-{os.getpid()}-", dir=out.parent))
                try:
                    os.rename(out, old / out.name)
                except OSError:
                    pass   # another run moved it first
                shutil.rmtree(old, ignore_errors=True)
                continue
        out.mkdir(parents=True, exist_ok=True)
        ours = our_files(out)
        for name in names:
            os.replace(tmp / name, out / name)
        write_atomic(out / MARKER, orjson.dumps({"files": sorted((ours - {MARKER}) | set(names))}))
        return
    raise TracerError(f"{out}: other runs kept replacing this folder; try again")


def _only_ours(folder: Path) -> bool:
    try:
        present = {p.name for p in folder.iterdir() if not p.name.startswith(TMP_PREFIX)}
    except OSError:
        return False
    return present <= our_files(folder)


def check_record_out(out: str | None, n_traces: int, force: bool = False) -> str | None:
    """`tracer record --out`: a folder for several traces (made now), else a trace path whose file and sidecar,
    when they exist, must be tracer's own recording (unless `force`)."""
    from tracer.io.sidecar import is_our_recording, sidecar_path

    if not out:
        return out
    if n_traces > 1 or Path(out).is_dir():
        check_out_dir(out, (), force)
        Path(out).mkdir(parents=True, exist_ok=True)
        return out
    check_out_file(out, is_our_recording, force)
    side = sidecar_path(out)
    if side.exists() and not force and not is_our_recording(out):
        raise TracerError(f"--out {out}: {side} exists and was not written by tracer; choose another name or pass "
                          "--force")
    return out
