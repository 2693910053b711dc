"""Shared test helpers: paths of committed fixtures and external traces, and a CLI runner that checks the
one-line error contract."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
SHARED = Path(os.environ.get("TRACER_SHARED", ROOT.parent / "shared"))
EXTERNAL = SHARED / "traces-external"


def run_cli(*args, timeout=900, env=None):
    """Run `python -m tracer.cli ARGS` as a user would; return the CompletedProcess."""
    e = dict(os.environ, **(env or {}))
    e.pop("TRACER_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "tracer.cli", *map(str, args)], cwd=ROOT, env=e,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)


def assert_one_line_error(proc):
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith("tracer: error")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.fixture(scope="session", autouse=True)
def user_cache(tmp_path_factory):
    """The suite's own user cache folder (shared by its in-process and subprocess runs), not the tester's."""
    d = tmp_path_factory.mktemp("tracer-cache")
    old = os.environ.get("TRACER_CACHE_DIR")
    os.environ["TRACER_CACHE_DIR"] = str(d)
    yield d
    if old is None:
        os.environ.pop("TRACER_CACHE_DIR", None)
    else:
        os.environ["TRACER_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def shared_dir():
    if not EXTERNAL.is_dir():
        pytest.skip(f"shared traces not found at {SHARED}")
    return SHARED
