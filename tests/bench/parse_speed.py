"""Parse throughput and peak memory: tracer against Holistic Trace Analysis's parser, same trace, same run.

    python tests/bench/parse_speed.py TRACE [--skip-hta]

Each parser runs in its own child process (so each peak RSS is its own) on the same file, from a cold start
of the parse (imports excluded). tracer decodes large traces on every core through forked workers; their
peak RSS is printed beside the parent's. Throughput is the uncompressed JSON size over the parse time. HTA is taken
as it ships (holistictraceanalysis 0.5.0, its default JSON backend); install it with
`pip install --no-deps holistictraceanalysis==0.5.0` (its parser needs only pandas and numpy).
"""
from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
from pathlib import Path

CHILD = {
    "tracer (raw frames)": """
from tracer.parse.chrome import chrome_trace_frames
from tracer.parse.load import read_bytes
t0 = time.perf_counter()
frames = chrome_trace_frames(read_bytes(Path(PATH)), PATH)
elapsed = time.perf_counter() - t0
rows = sum(len(v) for k, v in frames.items() if k != "meta")
""",
    "tracer (full tables)": """
from tracer.parse import load_tables
t0 = time.perf_counter()
tables = load_tables(PATH, use_cache=False)
elapsed = time.perf_counter() - t0
rows = len(tables["kernels"])
""",
    "HTA parse_trace_dataframe": """
from hta.common.trace_parser import parse_trace_dataframe
from hta.configs.parser_config import ParserConfig
t0 = time.perf_counter()
meta, df, symbols = parse_trace_dataframe(PATH, ParserConfig())
elapsed = time.perf_counter() - t0
rows = len(df)
""",
}
PRELUDE = "import json, resource, sys, time\nfrom pathlib import Path\nPATH = sys.argv[1]\n"
EPILOGUE = ("\nprint(json.dumps({'seconds': elapsed, 'rows': rows, "
            "'peak_rss_bytes': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "
            "'worker_peak_rss_bytes': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}))\n")


def uncompressed_size(path: Path) -> int:
    if path.read_bytes()[:2] == b"\x1f\x8b":
        with gzip.open(path, "rb") as f:
            return sum(len(chunk) for chunk in iter(lambda: f.read(1 << 24), b""))
    return path.stat().st_size


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace", type=Path)
    ap.add_argument("--skip-hta", action="store_true")
    args = ap.parse_args()
    size = uncompressed_size(args.trace)
    print(f"trace: {args.trace} ({size / 1e6:.1f} MB uncompressed)")
    results = {}
    for name, body in CHILD.items():
        if args.skip_hta and name.startswith("HTA"):
            continue
        proc = subprocess.run([sys.executable, "-c", PRELUDE + body + EPILOGUE, str(args.trace)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            print(f"{name}: failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else '?'}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        results[name] = r
        print(f"{name:28s} {r['seconds']:8.2f} s  {size / 1e6 / r['seconds']:8.1f} MB/s  "
              f"peak RSS {r['peak_rss_bytes'] / 1e9:6.2f} GB ({r['peak_rss_bytes'] / size:4.2f}x the JSON)  "
              f"rows {r['rows']}" + (f"; largest decode worker {r['worker_peak_rss_bytes'] / 1e9:.2f} GB (pages of "
                                     "the trace it shares with the parent included)"
                                     if r.get("worker_peak_rss_bytes") else ""))
    hta = results.get("HTA parse_trace_dataframe")
    if hta:
        for name, r in results.items():
            if name.startswith("tracer"):
                print(f"{name}: {hta['seconds'] / r['seconds']:.1f}x HTA's throughput")


if __name__ == "__main__":
    main()
