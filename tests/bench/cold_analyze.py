"""A small trace analysed from a cold start against importing what any analysis needs: `tracer analyze` of a
committed fixture with an empty cache, each run a fresh interpreter, over `python -c "import pandas, pyarrow,
matplotlib.pyplot"`, runs interleaved. Target: at most 2x.

Both commands run with their bytecode compiled, as after `pip install` (an untimed first run of each writes it
under a temporary PYTHONPYCACHEPREFIX; where PYTHONDONTWRITEBYTECODE is set and the project has no __pycache__,
every run would otherwise compile tracer's own modules again: 0.12 s of the parent's start). `--source` measures
that case instead.

    python tests/bench/cold_analyze.py [TRACE] [--runs 5]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "data" / "h200_vllm_gpt2_decode_b16_graphs.json.gz"


def _seconds(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace", nargs="?", type=Path, default=FIXTURE)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--source", action="store_true", help="leave the bytecode setting as it is (no warm-up run)")
    args = ap.parse_args()
    base, cold = [], []
    with tempfile.TemporaryDirectory(prefix="tracer-cold-") as tmp:
        env = dict(os.environ, PYTHONPATH=str(ROOT), TRACER_CACHE_DIR=str(Path(tmp) / "cache"))
        imports = [sys.executable, "-c", "import pandas, pyarrow, matplotlib.pyplot"]
        analyze = [sys.executable, "-m", "tracer.cli", "analyze", str(args.trace), "--out"]
        if not args.source:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
            _seconds(imports, env)
            _seconds(analyze + [str(Path(tmp) / "warm-up")], env)
        for i in range(args.runs):
            base.append(_seconds(imports, env))
            shutil.rmtree(Path(tmp) / "cache", ignore_errors=True)
            cold.append(_seconds(analyze + [str(Path(tmp) / f"out{i}")], env))
    for name, t in (("import pandas, pyarrow, matplotlib.pyplot", base), (f"tracer analyze {args.trace.name}", cold)):
        print(f"{name:60s} median {statistics.median(t):5.2f} s (min {min(t):.2f}, max {max(t):.2f})")
    print(f"cold analyze / imports: {statistics.median(cold) / statistics.median(base):.2f}x (target <= 2x)")


if __name__ == "__main__":
    main()
