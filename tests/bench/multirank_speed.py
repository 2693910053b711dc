"""Files per second of `tracer analyze DIR` over a few dozen rank traces, local processes against Ray tasks.

The ranks are the committed HTA traces (tests/data/hta_multirank) copied and relabelled (distributedInfo.rank
and the file name), so every file is a real trace. Caches are removed before each run: parsing is measured.
    python tests/bench/multirank_speed.py [--ranks 32] [--cpus 2]
"""
from __future__ import annotations

import argparse
import gzip
import shutil
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def make_ranks(folder: Path, n: int) -> None:
    sources = sorted((ROOT / "tests" / "data" / "hta_multirank").glob("*.json.gz"))
    docs = [orjson.loads(gzip.decompress(p.read_bytes())) for p in sources]
    for r in range(n):
        doc = docs[r % len(docs)]
        doc["distributedInfo"] = {**doc.get("distributedInfo", {}), "rank": r, "world_size": n}
        (folder / f"rank-{r}.json.gz").write_bytes(gzip.compress(orjson.dumps(doc), compresslevel=1))


def run(folder: Path, out: Path, ray: str | None, cpus: int) -> float:
    from tracer.analyze_ranks import analyze_ranks
    for c in folder.glob("*.tracer-cache"):
        shutil.rmtree(c)
    import contextlib
    import io
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):   # the report it prints is not the point here
        analyze_ranks([str(folder)], str(out), as_json=False, ray_address=ray, workers=cpus)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ranks", type=int, default=32)
    ap.add_argument("--cpus", type=int, default=2)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "ranks"
        folder.mkdir()
        make_ranks(folder, a.ranks)
        mb = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
        local = run(folder, Path(tmp) / "local", None, a.cpus)
        ray = run(folder, Path(tmp) / "ray", "local", a.cpus)  # includes starting and stopping the local Ray
        print(f"{a.ranks} rank traces ({mb:.1f} MB gzipped), {a.cpus} cores:")
        print(f"  local processes: {local:.1f} s, {a.ranks / local:.2f} files/s")
        print(f"  Ray tasks (local instance, start-up included): {ray:.1f} s, {a.ranks / ray:.2f} files/s")


if __name__ == "__main__":
    main()
