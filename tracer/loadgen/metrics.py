"""Per-request and per-run serving metrics, with the definitions of vLLM's `vllm bench serve` so numbers compare.

- TTFT: request sent -> first streamed token.  E2E: request sent -> last byte.
- TPOT: (e2e - ttft) / (output_tokens - 1), per request (undefined for one output token).
- ITL: gaps between successive streamed chunks (a chunk may carry several tokens).
- Goodput: completed requests per second that meet every SLO given (TTFT and/or TPOT).
- Send lag: how late the client sent each request against its Poisson schedule; with the achieved rate it shows
  when the client, not the server, limits a run.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

PERCENTILES = (50, 90, 99)


def request_row(index: int, sent_s: float, prompt_tokens: int, chunk_s: list[float], output_tokens: int,
                end_s: float, status: str, error: str = "") -> dict:
    """One request's row; times are seconds on the client's monotonic clock, results in ms."""
    ok = status == "ok"
    ttft_ms = (chunk_s[0] - sent_s) * 1e3 if ok and chunk_s else math.nan
    e2e_ms = (end_s - sent_s) * 1e3 if ok else math.nan
    tpot_ms = (e2e_ms - ttft_ms) / (output_tokens - 1) if ok and output_tokens > 1 else math.nan
    itl_ms = list(np.diff(chunk_s) * 1e3) if ok else []
    return {"request": index, "sent_s": sent_s, "status": status, "error": error, "prompt_tokens": prompt_tokens,
            "output_tokens": output_tokens if ok else 0, "ttft_ms": ttft_ms, "tpot_ms": tpot_ms,
            "e2e_ms": e2e_ms, "itl_ms": itl_ms}


def achieved_rate_per_s(sent_s: pd.Series) -> float:
    """Arrivals per second the client really made: gaps between the first and last send (nan under two requests)."""
    span = sent_s.max() - sent_s.min() if len(sent_s) > 1 else 0.0
    return (len(sent_s) - 1) / span if span > 0 else math.nan


def run_summary(requests: pd.DataFrame, duration_s: float, slo_ttft_ms: float | None = None,
                slo_tpot_ms: float | None = None) -> dict:
    ok = requests[requests.status == "ok"]
    good = ok
    if slo_ttft_ms is not None:
        good = good[good.ttft_ms <= slo_ttft_ms]
    if slo_tpot_ms is not None:  # a one-token request has no TPOT and passes this SLO
        good = good[~(good.tpot_ms > slo_tpot_ms)]
    itl = np.concatenate([np.asarray(x, dtype=float) for x in ok.itl_ms]) if len(ok) else np.array([])
    out = {"sent": len(requests), "completed": len(ok), "errors": int((requests.status == "error").sum()),
           "timeouts": int((requests.status == "timeout").sum()), "duration_s": duration_s,
           "request_throughput_per_s": len(ok) / duration_s if duration_s > 0 else math.nan,
           "output_tokens": int(ok.output_tokens.sum()), "prompt_tokens": int(ok.prompt_tokens.sum()),
           "output_tokens_per_s": ok.output_tokens.sum() / duration_s if duration_s > 0 else math.nan,
           "slo_ttft_ms": slo_ttft_ms, "slo_tpot_ms": slo_tpot_ms,
           "goodput_requests_per_s": len(good) / duration_s if duration_s > 0 else math.nan,
           "achieved_rate_per_s": achieved_rate_per_s(requests.sent_s)}
    lag = requests.send_lag_ms if "send_lag_ms" in requests else []
    for name, values in (("ttft_ms", ok.ttft_ms), ("tpot_ms", ok.tpot_ms), ("e2e_ms", ok.e2e_ms), ("itl_ms", itl),
                         ("send_lag_ms", lag)):
        values = np.asarray(values, dtype=float)
        values = values[~np.isnan(values)]
        out[f"{name}_mean"] = float(values.mean()) if len(values) else math.nan
        for p in PERCENTILES:
            out[f"{name}_p{p}"] = float(np.percentile(values, p)) if len(values) else math.nan
    return out
