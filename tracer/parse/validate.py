"""Drop events whose times cannot be true before any table sums them: a missing or non-numeric start or
duration, a negative one (nsys end before start), or an absurd one (over a day, or a timestamp beyond any
clock). Each kind of drop is counted and told as a notice; nothing is silently summed or silently lost."""
from __future__ import annotations

import numpy as np
import pandas as pd

MAX_DUR_US = 86_400e6        # one day: no kernel, op or phase of a profiled run lasts longer
MAX_ABS_TS_US = 1e17         # Unix time in microseconds is ~1.8e15; beyond 1e17 is no clock's value
_WHAT = {"kernels": "kernel", "memcpy": "memcpy", "memset": "memset", "runtime": "CUDA runtime call",
         "ops": "CPU op", "annotations": "range", "gpu_annotations": "GPU range"}


def drop_invalid(raw: dict) -> list[str]:
    """Remove invalid rows from the raw frames in place; return one notice per frame that lost any."""
    notices = []
    for key, what in _WHAT.items():
        df = raw.get(key)
        if df is None or df.empty or "ts" not in df or "dur" not in df:
            if df is not None and not df.empty:
                notices.append(f"{len(df)} {what} events without a start time or duration dropped")
                raw[key] = df.iloc[0:0]
            continue
        ts = pd.to_numeric(df["ts"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        dur = pd.to_numeric(df["dur"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        missing = ~(np.isfinite(ts) & np.isfinite(dur))
        with np.errstate(invalid="ignore"):
            negative = ~missing & (dur < 0)
            absurd = ~missing & ~negative & ((dur > MAX_DUR_US) | (np.abs(ts) > MAX_ABS_TS_US))
        bad = missing | negative | absurd
        if not bad.any():
            continue
        parts = [f"{int(n)} {label}" for n, label in ((missing.sum(), "without a numeric start or duration"),
                                                       (negative.sum(), "with a negative duration (end before start)"),
                                                       (absurd.sum(), "with an impossible time (over a day, or "
                                                                      "beyond any clock)")) if n]
        notices.append(f"{int(bad.sum())} of {len(df)} {what} events dropped as invalid: {'; '.join(parts)}")
        raw[key] = df.loc[~bad].reset_index(drop=True)
    return notices
