"""Progress of long commands (load runs, sweep points): a tqdm bar on a terminal; on a pipe or in a log, where a
bar's carriage-return redraws pile up as hundreds of lines, plain lines instead: one per finished stage."""
from __future__ import annotations

import sys
import time


class LineProgress:
    """tqdm's update / set_postfix_str / close, written as lines: with `each`, one line per update (each one
    finishes a stage, e.g. a sweep point), else one line when the stage closes (e.g. a load run)."""

    def __init__(self, total: int, unit: str, desc: str, file, each: bool):
        self.total, self.unit, self.desc, self.file, self.each = total, unit, desc, file, each
        self.n, self.postfix, self.closed, self.start = 0, "", False, time.monotonic()

    def _line(self) -> str:
        head = f"{self.desc}: " if self.desc else ""
        tail = f" ({self.postfix})" if self.postfix else ""
        return f"{head}{self.n}/{self.total} {self.unit} in {time.monotonic() - self.start:.1f} s{tail}"

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.each and n:
            print(self._line(), file=self.file, flush=True)

    def set_postfix_str(self, s: str) -> None:
        self.postfix = s

    def close(self) -> None:
        if not self.closed and not self.each:
            print(self._line(), file=self.file, flush=True)
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def progress(total: int, unit: str, desc: str = "", file=None, each: bool = False):
    """A tqdm bar when `file` (stderr) is a terminal, else a LineProgress."""
    file = file if file is not None else sys.stderr
    isatty = getattr(file, "isatty", None)
    if isatty is not None and isatty():
        from tqdm import tqdm
        return tqdm(total=total, unit=unit, desc=desc or None, file=file, disable=None)
    return LineProgress(total, unit, desc, file, each)
