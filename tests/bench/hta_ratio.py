"""CI's parse-speed check: tracer's full tables against Holistic Trace Analysis's parser on one generated trace
of about 100 MB, in the same run, each timed in its own fresh child (imports excluded), runs interleaved.

    python tests/bench/hta_ratio.py            # exit 1 if tracer's ratio is over 20% below the recorded one
    python tests/bench/hta_ratio.py --record   # write the measured ratio to hta_ratio.json

The ratio is HTA's median seconds over tracer's: a throughput ratio, so it holds on slower and faster machines
alike, as far as both parsers slow down alike. Without HTA (`pip install --no-deps
holistictraceanalysis==0.5.0`) the check fails: it never passes without having measured.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from parse_speed import CHILD, _child, uncompressed_size  # noqa: E402
from repeat_trace import repeat_trace  # noqa: E402

RECORDED = HERE / "hta_ratio.json"
SOURCE = HERE.parents[0] / "data" / "h100_hf_gpt2_decode_b16.json.gz"
MEGABYTES = 100
TOLERANCE = 0.20
RUNS = 3
TRACER, HTA = "tracer (full tables)", "HTA parse_trace_dataframe"


def measure(trace: Path, runs: int) -> dict:
    times: dict[str, list[float]] = {TRACER: [], HTA: []}
    rows = {}
    for _ in range(runs):
        for name in times:
            r = _child(CHILD[name], trace)
            times[name].append(r["seconds"])
            rows[name] = r["rows"]
    return {"times": times, "rows": rows}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--record", action="store_true", help=f"write the ratio to {RECORDED.name}")
    ap.add_argument("--runs", type=int, default=RUNS)
    args = ap.parse_args()
    if importlib.util.find_spec("hta") is None:
        print("hta_ratio: FAIL: Holistic Trace Analysis is not installed "
              "(pip install --no-deps holistictraceanalysis==0.5.0); the check cannot run", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="tracer-hta-ratio-") as tmp:
        trace = Path(tmp) / "repeated.json"
        copies = repeat_trace(SOURCE, trace, MEGABYTES)
        size = uncompressed_size(trace)
        m = measure(trace, args.runs)
    med = {name: statistics.median(t) for name, t in m["times"].items()}
    ratio = med[HTA] / med[TRACER]
    for name, t in m["times"].items():
        print(f"{name:28s} median {med[name]:6.2f} s (runs {', '.join(f'{x:.2f}' for x in t)})  "
              f"{size / 1e6 / med[name]:7.1f} MB/s  rows {m['rows'][name]}")
    print(f"trace: {copies} copies of {SOURCE.name}, {size / 1e6:.0f} MB; tracer {ratio:.2f}x HTA's throughput")
    if m["rows"][TRACER] == 0 or m["rows"][HTA] == 0:
        print("hta_ratio: FAIL: a parser returned no rows", file=sys.stderr)
        return 1
    if args.record:
        RECORDED.write_text(json.dumps({"ratio": round(ratio, 2), "megabytes": MEGABYTES, "source": SOURCE.name,
                                        "hta": "holistictraceanalysis 0.5.0", "tracer_s": m["times"][TRACER],
                                        "hta_s": m["times"][HTA]}, indent=1) + "\n")
        print(f"recorded {ratio:.2f} in {RECORDED}")
        return 0
    recorded = json.loads(RECORDED.read_text())["ratio"]
    floor = recorded * (1 - TOLERANCE)
    verdict = "ok" if ratio >= floor else "FAIL"
    print(f"hta_ratio: {verdict}: {ratio:.2f}x against {recorded:.2f}x recorded (floor {floor:.2f}x)")
    return 0 if ratio >= floor else 1


if __name__ == "__main__":
    sys.exit(main())
