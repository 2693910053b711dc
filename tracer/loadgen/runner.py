"""The `tracer load` command's body: check options, run one load or a sweep of rates, write and print results."""
from __future__ import annotations

import asyncio
import math
import sys
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd

from tracer.errors import TracerError
from tracer.loadgen.client import LoadPlan, run_load
from tracer.loadgen.metrics import run_summary
from tracer.loadgen.results import write_run, write_table

SHOWN = ("offered_rate_per_s", "achieved_rate_per_s", "completed", "errors", "timeouts", "request_throughput_per_s", "output_tokens_per_s",
         "goodput_requests_per_s", "ttft_ms_p50", "ttft_ms_p99", "tpot_ms_p50", "tpot_ms_p99", "itl_ms_p99",
         "e2e_ms_p99", "send_lag_ms_p99")


def parse_rates(text: str) -> list[float]:
    try:
        rates = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise TracerError(f"--rates {text!r}: give numbers, e.g. 1,2,4,8") from None
    if not rates or any(not r > 0 for r in rates):
        raise TracerError(f"--rates {text!r}: every rate must be above 0")
    return rates


def check_server(url: str) -> None:
    import urllib.error
    import urllib.request
    base = url.rstrip("/").removesuffix("/v1/completions")
    try:
        urllib.request.urlopen(base + "/v1/models", timeout=10).close()
    except urllib.error.HTTPError:
        return  # it answers HTTP: good enough
    except (OSError, ValueError) as e:
        raise TracerError(f"no server answers at {url}: {getattr(e, 'reason', e)}") from None


def one_run(plan: LoadPlan, out: Path, slo_ttft_ms, slo_tpot_ms, label: str) -> dict:
    from tracer.progress import progress
    what = f"rate {plan.rate}/s" if plan.rate else f"concurrency {plan.concurrency}"
    with progress(plan.requests, "req", f"{label} {what}") as bar:
        rows, duration = asyncio.run(run_load(plan, bar))
    summary = run_summary(pd.DataFrame(rows), duration, slo_ttft_ms, slo_tpot_ms)
    offered = plan.rate if plan.rate else math.nan
    summary = {"label": label, "offered_rate_per_s": offered, "concurrency": plan.concurrency, **summary}
    write_run(out, rows, summary, asdict(plan))
    return summary


def warm_up(plan: LoadPlan, requests: int) -> None:
    """Requests of the same shapes, closed loop, whose results are dropped: what a server does the first time it
    meets a shape (kernel loading, cuDNN plans, allocator growth) stays out of the measured runs. The seed is
    another, so the measured prompts are new to any prefix cache."""
    rows, _ = asyncio.run(run_load(replace(plan, requests=requests, rate=None, concurrency=min(requests, 8),
                                           seed=plan.seed + 1_000_003)))
    failed = [r for r in rows if r["status"] != "ok"]
    print(f"tracer load: warm-up, {requests} requests ({len(failed)} failed), not counted", file=sys.stderr)


def requests_at(rate: float, requests: int, min_duration_s: float | None) -> int:
    """Requests sent at one open-loop rate: a fixed count drains as one burst at a high rate, before any queue
    builds; --min-duration-s holds every rate for as long (vLLM's `bench serve` sends a fixed count only)."""
    if not min_duration_s or math.isinf(rate):
        return requests
    return max(requests, math.ceil(rate * min_duration_s))


def load_command(**kw) -> None:
    if not kw["url"]:
        raise TracerError("--url is required (e.g. http://127.0.0.1:8000)")
    modes = [k for k in ("rate", "rates", "concurrency") if kw[k] is not None]
    if len(modes) != 1:
        raise TracerError("give exactly one of --rate, --rates or --concurrency")
    if kw.get("warmup_requests", 0) < 0:
        raise TracerError("--warmup-requests must be 0 or more")
    for key in ("requests", "prompt", "output"):
        if kw[key] < 1:
            raise TracerError(f"--{key} must be at least 1")
    if kw["concurrency"] is not None and kw["concurrency"] < 1:
        raise TracerError("--concurrency must be at least 1")
    if kw["rate"] is not None and not kw["rate"] > 0:
        raise TracerError("--rate must be above 0")
    min_duration_s = kw.get("min_duration_s")
    if min_duration_s is not None and (kw["concurrency"] is not None or not min_duration_s > 0):
        raise TracerError("--min-duration-s takes a number above 0, with --rate or --rates")
    missing = [p for p in kw["plot_with"] if not (Path(p) / "sweep.parquet").exists()]
    if missing:
        raise TracerError(f"--plot {missing[0]}: no sweep.parquet there (run tracer load --rates first)")
    rates = parse_rates(kw["rates"]) if kw["rates"] else None
    check_server(kw["url"])
    out = Path(kw["out"])
    label = kw["label"] or out.name
    plan = LoadPlan(url=kw["url"], requests=kw["requests"], prompt_tokens=kw["prompt"], output_tokens=kw["output"],
                    seed=kw["seed"], rate=kw["rate"], concurrency=kw["concurrency"], model=kw["model"],
                    vocab_size=kw["vocab_size"], timeout_s=kw["timeout_s"])
    if kw.get("warmup_requests"):
        warm_up(plan, kw["warmup_requests"])
    try:
        if rates is None:
            if plan.rate is not None:
                plan = replace(plan, requests=requests_at(plan.rate, plan.requests, min_duration_s))
            summaries = [one_run(plan, out, kw["slo_ttft_ms"], kw["slo_tpot_ms"], label)]
        else:
            summaries = []
            for rate in rates:
                summaries.append(one_run(replace(plan, rate=rate, requests=requests_at(rate, plan.requests,
                                                                                        min_duration_s)),
                                         out / f"rate_{rate:g}", kw["slo_ttft_ms"], kw["slo_tpot_ms"], label))
    except KeyboardInterrupt:
        print(f"tracer: interrupted; finished runs kept in {out}", file=sys.stderr)
        sys.exit(130)
    table = pd.DataFrame(summaries)
    print(table[[c for c in SHOWN if c in table]].round(2).to_string(index=False))
    if rates is not None:
        paths = write_table(out, "sweep", table)
        from analysis.reports.load_plots import plot_load
        png = plot_load([out, *kw["plot_with"]], out / "load.png")
        from analysis.reports.html.sweep_pages import load_html
        from tracer.io.atomic import write_atomic
        page = write_atomic(out / "report.html", load_html([out, *kw["plot_with"]]).encode())
        print(f"wrote {' '.join(map(str, paths))} {png} {page}", file=sys.stderr)
    else:
        print(f"wrote {out}/requests.parquet {out}/requests.csv {out}/summary.json", file=sys.stderr)
