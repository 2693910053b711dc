"""Finding external profilers (nsys, ncu) and running them with one-line errors; the nsys SQLite export, used by
recording (beside the report) and by parsing (a .nsys-rep given to analyze, exported into the cache)."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tracer.errors import TracerError
from tracer.io.atomic import temp_name

INSTALL = {
    "nsys": "install Nsight Systems (https://developer.nvidia.com/nsight-systems), or point TRACER_NSYS or "
            "--tool-path at the nsys executable",
    "ncu": "install Nsight Compute (https://developer.nvidia.com/nsight-compute), or point TRACER_NCU or "
           "--tool-path at the ncu executable",
}


def find_tool(name: str, explicit: str | None = None) -> str:
    """PATH first, then the TRACER_<NAME> environment variable, then an explicit path."""
    for candidate in (explicit, os.environ.get(f"TRACER_{name.upper()}"), shutil.which(name)):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise TracerError(f"{name} not found: {INSTALL[name]}")


def run_tool(cmd: list[str], what: str, timeout_s: float | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout_s)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stdout.strip().splitlines() if ln.strip()]
        errors = [ln for ln in lines if "error" in ln.lower() or ln.startswith("tracer: error")]
        raise TracerError(f"{what} failed (exit {proc.returncode}): {(errors or lines or ['no output'])[-1].strip()}")
    return proc


def export_sqlite(nsys: str, rep: Path, sqlite: Path) -> Path:
    """`nsys export --type sqlite` to a temporary name, renamed to `sqlite` only once nsys succeeded: a failed or
    killed export never leaves a partial file that a later run would take for a complete one."""
    sqlite = Path(sqlite)
    tmp = temp_name(sqlite.parent, sqlite.name)
    try:
        run_tool([nsys, "export", "--type", "sqlite", "--force-overwrite", "true", "-o", str(tmp), str(rep)],
                 f"nsys export of {Path(rep).name}")
        os.replace(tmp, sqlite)
    finally:
        tmp.unlink(missing_ok=True)
    return sqlite
