"""Parse throughput and peak memory: tracer against Holistic Trace Analysis's parser, same trace, same run.

    python tests/bench/parse_speed.py TRACE [--skip-hta] [--runs N] [--hta-runs N]

Each parser runs in its own child process (so each peak RSS is its own) on the same file, from a cold start
of the parse (imports excluded: each child imports its parser's modules before the clock starts; `tracer
analyze`'s child those of its whole pipeline but matplotlib, which its drawing child imports). tracer
decodes large traces on every core through forked workers, so besides the parent's peak RSS the script prints
the peak summed PSS of the process and its workers (shared pages counted once), sampled every 20 ms. Throughput is the uncompressed JSON size over the parse time (the median time with
--runs: rounds in turn, since this machine's speed drifts; `tracer analyze` over the full tables is then each
round's ratio, their median). HTA is taken
as it ships (holistictraceanalysis 0.5.0, its default JSON backend); install it with
`pip install --no-deps holistictraceanalysis==0.5.0` (its parser needs only pandas and numpy).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = {
    "tracer (raw frames)": """
import tracer.parse.chrome_events, pyarrow, pandas   # what the parse imports, like HTA's child: outside the time
from tracer.parse.chrome import chrome_frames, decode_chrome
from tracer.parse.load import read_buffer
t0 = time.perf_counter()
data = read_buffer(Path(PATH))
decoded = decode_chrome(data, PATH)
del data   # as tracer.parse.load does: the text freed before the frames are built
frames = chrome_frames(decoded)
elapsed = time.perf_counter() - t0
rows = sum(len(v) for k, v in frames.items() if k != "meta")
""",
    "tracer (full tables)": """
import tracer.parse.attribute, tracer.parse.chrome, tracer.parse.chrome_events, pyarrow, pandas
from tracer.parse import load_tables
t0 = time.perf_counter()
tables = load_tables(PATH, use_cache=False)
elapsed = time.perf_counter() - t0
rows = len(tables["kernels"])
""",
    "tracer analyze, all outputs": """
import shutil, tempfile
# what the pipeline imports as it goes (compiled on every import where PYTHONDONTWRITEBYTECODE is set: 0.13 s of
# this machine's), outside the time as the other children's parsers; matplotlib is left to the drawing child
import analysis.reports.deployment, analysis.reports.drawing_child, analysis.reports.html.analysis_page
import analysis.reports.output_files, analysis.reports.report, analysis.reports.tables, multiprocessing.pool
import pyarrow.parquet, tracer.api, tracer.parse.attribute, tracer.parse.cache, tracer.parse.chrome
import tracer.parse.chrome_events, tracer.parse.load
from tracer.commands import analyze_path
from tracer.parse import load_tables
from tracer.parse.cache import cache_dir
shutil.rmtree(cache_dir(Path(PATH)), ignore_errors=True)   # the whole pipeline from the JSON, cache written
out = tempfile.mkdtemp()
t0 = time.perf_counter()
analyze_path(PATH, out, False)
elapsed = time.perf_counter() - t0
rows = len(load_tables(PATH)["kernels"])
shutil.rmtree(cache_dir(Path(PATH)), ignore_errors=True)
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
# Each parser runs twice: once timed, once with a sampler thread (reading smaps costs CPU, so it stays out of
# the timed run) that sums the proportional set size (PSS: a page shared by k processes
# counts 1/k in each) of the process and its children every 20 ms: the memory the parse really occupies, with the
# trace pages that forked workers share with the parent counted once.
PRELUDE = """import json, os, resource, sys, threading, time
from pathlib import Path
PATH = sys.argv[1]
def _pss(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            return sum(int(l.split()[1]) * 1024 for l in f if l.startswith("Pss:"))
    except OSError:
        return 0
def _children(pid):
    out = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return out + [g for c in out for g in _children(c)]
PEAK_PSS = [0]
def _sample():
    me = os.getpid()
    while True:
        PEAK_PSS[0] = max(PEAK_PSS[0], _pss(me) + sum(_pss(c) for c in _children(me)))
        time.sleep(0.05)
if os.environ.get("SAMPLE_PSS"):
    threading.Thread(target=_sample, daemon=True).start()
"""
EPILOGUE = ("\nprint(json.dumps({'seconds': elapsed, 'rows': rows, "
            "'peak_rss_bytes': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "
            "'peak_pss_tree_bytes': PEAK_PSS[0], "
            "'worker_peak_rss_bytes': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}))\n")


def uncompressed_size(path: Path) -> int:
    if path.read_bytes()[:2] == b"\x1f\x8b":
        with gzip.open(path, "rb") as f:
            return sum(len(chunk) for chunk in iter(lambda: f.read(1 << 24), b""))
    return path.stat().st_size


def _child(body: str, trace: Path, sample_pss: bool = False) -> dict:
    # every parser under the `tracer` command's NumPy setting (tracer/cli/__init__.py), HTA's included
    env = dict(os.environ, SAMPLE_PSS="1" if sample_pss else "", NUMPY_MADVISE_HUGEPAGE="0")
    proc = subprocess.run([sys.executable, "-c", PRELUDE + body + EPILOGUE, str(trace)], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "?")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace", type=Path)
    ap.add_argument("--skip-hta", action="store_true")
    ap.add_argument("--skip-pss", action="store_true", help="time each parser once, without the PSS-sampled run")
    ap.add_argument("--runs", type=int, default=1, help="rounds of tracer's children (each round runs each once, "
                    "in turn): medians, their spread, and the median of each round's analyze / tables")
    ap.add_argument("--hta-runs", type=int, default=1, help="rounds that also run HTA (a minute each at 600 MB)")
    args = ap.parse_args()
    size = uncompressed_size(args.trace)
    print(f"trace: {args.trace} ({size / 1e6:.1f} MB uncompressed)")
    names = [n for n in CHILD if not (args.skip_hta and n.startswith("HTA"))]
    results, seconds, failed = {}, {n: [] for n in names}, set()
    for round_ in range(max(args.runs, 0 if args.skip_hta else args.hta_runs)):
        for name in names:
            if name in failed or round_ >= (args.hta_runs if name.startswith("HTA") else args.runs):
                continue
            try:
                results[name] = _child(CHILD[name], args.trace)
            except RuntimeError as e:
                print(f"{name}: failed: {e}")
                failed.add(name)
                continue
            seconds[name].append(results[name]["seconds"])
    for name, r in results.items():
        if name in failed:
            continue
        if not args.skip_pss:
            r["peak_pss_tree_bytes"] = _child(CHILD[name], args.trace, sample_pss=True)["peak_pss_tree_bytes"]
        t = seconds[name]
        r["seconds"] = statistics.median(t)
        pss = r["peak_pss_tree_bytes"]
        print(f"{name:28s} {r['seconds']:8.2f} s" + (f" (median of {len(t)}: {min(t):.2f}-{max(t):.2f})"
                                                      if len(t) > 1 else "")
              + f"  {size / 1e6 / r['seconds']:8.1f} MB/s  "
              f"peak RSS {r['peak_rss_bytes'] / 1e9:5.2f} GB ({r['peak_rss_bytes'] / size:4.2f}x the JSON); "
              + (f"peak PSS of process + workers {pss / 1e9:5.2f} GB ({pss / size:4.2f}x)" if pss else "PSS not sampled")
              + f"  rows {r['rows']}"
              + (f"; largest worker RSS {r['worker_peak_rss_bytes'] / 1e9:.2f} GB" if r.get("worker_peak_rss_bytes")
                 else ""))
    hta = results.get("HTA parse_trace_dataframe") if "HTA parse_trace_dataframe" not in failed else None
    if hta:
        for name, r in results.items():
            if name.startswith("tracer") and name not in failed:
                print(f"{name}: {hta['seconds'] / r['seconds']:.1f}x HTA's throughput")
    tables, whole = seconds.get("tracer (full tables)"), seconds.get("tracer analyze, all outputs")
    if tables and whole and len(tables) == len(whole):
        ratios = [w / t for w, t in zip(whole, tables)]   # each round's: the machine's speed drifts between rounds
        print(f"tracer analyze / full tables: {statistics.median(ratios):.2f}x"
              + (f" (median of {len(ratios)} rounds: {min(ratios):.2f}-{max(ratios):.2f})" if len(ratios) > 1 else ""))


if __name__ == "__main__":
    main()
