"""Regression gates for `tracer compare --fail-if`: conditions over named metrics of each run against the first.

`METRIC>+5%` / `METRIC<-10%`: the run's relative change against the baseline (first run) beyond the bound;
`METRIC>3` / `METRIC<=0.5`: the run's own value. Operators > >= < <=. Metrics are the keys of
analysis.reports.compare.run_row (aliases: decode_ms_per_token, tokens_per_s, ttft)."""
from __future__ import annotations

import operator
import re

from analysis.numbers import count, sig3


def _fmt(v) -> str:
    return count(v) if isinstance(v, int) else sig3(v)
from tracer.errors import TracerError

_COND = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_/]*)\s*(>=|<=|>|<)\s*([+-]?\d+(?:\.\d+)?)\s*(%?)\s*$")
_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


def parse_condition(text: str) -> tuple[str, str, float, bool]:
    """(metric, operator, bound, relative) or a one-line error."""
    m = _COND.match(text or "")
    if not m:
        raise TracerError(f"--fail-if {text!r}: expected METRIC OP VALUE, e.g. 'decode_ms_per_token>+5%' or "
                          "'unmodeled_pct>3' (OP one of > >= < <=)")
    return m.group(1), m.group(2), float(m.group(3)), m.group(4) == "%"


def check(conditions: list[str], rows: list[dict]) -> list[str]:
    """One line per broken condition and run (empty: all hold). Unknown metrics are a one-line error."""
    from analysis.reports.compare import ALIASES

    parsed = [(c, *parse_condition(c)) for c in conditions]
    known = set().union(*(r.keys() for r in rows)) - {"run"}
    broken = []
    for text, metric, op, bound, relative in parsed:
        key = ALIASES.get(metric, metric)
        if key not in known:
            raise TracerError(f"--fail-if {text!r}: no metric {metric!r} (known: {', '.join(sorted(known)[:12])}, ...)")
        base = rows[0]
        for row in rows[1:] if len(rows) > 1 else rows:
            value = row.get(key)
            if relative:
                ref = base.get(key)
                if value is None or not ref:
                    broken.append(f"{text}: {row['run']}: cannot be checked ({key} absent or 0 in a run)")
                    continue
                change = 100 * (value - ref) / abs(ref)
                if _OPS[op](change, bound):
                    broken.append(f"{text}: {row['run']} {key} {_fmt(value)} against {base['run']} {_fmt(ref)} "
                                  f"({'+' if change >= 0 else ''}{sig3(change)}%)")
            else:
                if value is None:
                    broken.append(f"{text}: {row['run']}: cannot be checked ({key} absent)")
                elif _OPS[op](value, bound):
                    broken.append(f"{text}: {row['run']} {key} {_fmt(value)}")
    return broken
