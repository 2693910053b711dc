"""How numbers are written in tables, headlines and verdicts: one formatter, so a number in a sentence is the
same text as the table cell it comes from. Three significant figures, thousands separators, integers for counts,
`-` for absent values."""
from __future__ import annotations

import math


def absent(v) -> bool:
    try:
        return v is None or (isinstance(v, float) and not math.isfinite(v)) or v != v
    except (TypeError, ValueError):
        return True


def sig3(v) -> str:
    """13.7518 -> 13.8, 0.36931 -> 0.369, 1153.3 -> 1,150, None/NaN -> -."""
    if absent(v):
        return "-"
    v = float(v)
    if v == 0:
        return "0"
    digits = 2 - math.floor(math.log10(abs(v)))
    r = round(v, digits)
    if r != 0:
        digits = 2 - math.floor(math.log10(abs(r)))   # 9.996 rounds to 10.0: three figures of the new magnitude
        r = round(v, digits)
    return f"{int(round(r)):,}" if digits <= 0 else f"{r:,.{digits}f}"


def count(v) -> str:
    return "-" if absent(v) else f"{int(round(float(v))):,}"


def ms(us) -> str:
    return "-" if absent(us) else sig3(float(us) / 1e3)


def gib(b) -> str:
    return "-" if absent(b) else sig3(float(b) / 2**30)
