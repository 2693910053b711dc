"""Progress lines of a recording on stderr, shared by the in-process run and the nsys/ncu drivers (its own module
so that run.py, which starts those drivers, and the drivers do not import each other)."""
from __future__ import annotations

import sys


def progress(message: str) -> None:
    print(f"tracer: {message}", file=sys.stderr, flush=True)
