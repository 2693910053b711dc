"""A large Chrome trace for the parse benchmarks: a real trace's events repeated back to back until the file
reaches a size, each copy shifted past the previous one in time and in its ids (correlation, External id,
flow ids), so kernels still join their launches and ops one to one.

    python tests/bench/repeat_trace.py SRC DEST --mb 600

DEST is plain JSON (`.json`) or gzip (`.json.gz`). Metadata events (`ph: M`) are kept once.
"""
from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import orjson

ID_ARGS = ("correlation", "External id", "Record function id", "Ev Idx")
GAP_US = 1000.0


def _read(path: Path) -> dict:
    raw = path.read_bytes()
    return orjson.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)


def _shifted(events: list, copy: int, dt: float, did: int) -> list:
    out = []
    for e in events:
        if e.get("ph") == "M":
            if copy == 0:
                out.append(e)
            continue
        e = dict(e)
        if "ts" in e:
            e["ts"] = e["ts"] + copy * dt
        if "id" in e and isinstance(e["id"], int):
            e["id"] += copy * did
        args = e.get("args")
        if args and any(k in args for k in ID_ARGS):
            e["args"] = {k: (v + copy * did if k in ID_ARGS and isinstance(v, int) and v >= 0 else v)
                         for k, v in args.items()}
        out.append(e)
    return out


def repeat_trace(src: Path, dest: Path, megabytes: float) -> int:
    """Write DEST, about `megabytes` MB of uncompressed JSON; return the number of copies."""
    trace = _read(src)
    events = trace.pop("traceEvents")
    timed = [e for e in events if isinstance(e.get("ts"), (int, float)) and e.get("ph") != "M"]
    span = max(e["ts"] + float(e.get("dur", 0) or 0) for e in timed) - min(e["ts"] for e in timed)
    ids = [e.get("id") for e in events if isinstance(e.get("id"), int)]
    ids += [v for e in events for k, v in (e.get("args") or {}).items() if k in ID_ARGS and isinstance(v, int)]
    dt, did = span + GAP_US, max(ids, default=0) + 1
    one = len(orjson.dumps(events))
    copies = max(1, round(megabytes * 1e6 / one))
    head = orjson.dumps(trace)[:-1] + (b',"traceEvents":[' if trace else b'{"traceEvents":[')
    opener = gzip.open if dest.name.endswith(".gz") else open
    with opener(dest, "wb") as f:
        f.write(head)
        for copy in range(copies):
            body = orjson.dumps(_shifted(events, copy, dt, did))[1:-1]
            if copy and body:
                f.write(b",")
            f.write(body)
        f.write(b"]}")
    return copies


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("dest", type=Path)
    ap.add_argument("--mb", type=float, default=600)
    args = ap.parse_args()
    copies = repeat_trace(args.src, args.dest, args.mb)
    print(f"wrote {args.dest}: {copies} copies of {args.src.name}, {args.dest.stat().st_size / 1e6:.1f} MB on disk")


if __name__ == "__main__":
    main()
