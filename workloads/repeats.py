"""Repeated timed runs as one figure: the median of each timing over the runs, with its spread (the interquartile
range as a percentage of the median), so a figure says how far a second run would move it."""
from __future__ import annotations

import numpy as np

# the timing figures that are medians over repeated runs (sidecar `figures.unprofiled`, `figures.profiled`)
TIMING_KEYS = ("ttft_ms", "decode_ms_per_token_mean", "decode_ms_per_token_p50", "decode_ms_per_token_p99",
               "total_s", "output_tokens_per_s")


def median_and_spread(values) -> tuple[float | None, float | None]:
    """(median, IQR as % of the median) of the values that are numbers; (None, None) when there are none."""
    a = np.asarray([v for v in values if v is not None], dtype=float)
    a = a[np.isfinite(a)]
    if not a.size:
        return None, None
    med = float(np.median(a))
    q1, q3 = np.percentile(a, [25, 75])
    return med, (float(100 * (q3 - q1) / abs(med)) if med else 0.0)


def repeated_figures(runs: list[dict], keys=TIMING_KEYS) -> dict:
    """One figure per key over the runs' figure dicts: `key` (median), `key_spread_pct`, `runs` (how many) and
    `per_run` (each run's value, in order), e.g. {"decode_ms_per_token_mean": 4.13,
    "decode_ms_per_token_mean_spread_pct": 3.1, "runs": 5, "per_run": {...}}."""
    out: dict = {"runs": len(runs)}
    per_run = {}
    for key in keys:
        values = [r.get(key) for r in runs]
        out[key], out[f"{key}_spread_pct"] = median_and_spread(values)
        per_run[key] = values
    out["per_run"] = per_run
    return out
