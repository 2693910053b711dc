"""`tracer sweep`: latency, throughput, memory and GPU utilisation over batch size, prompt length or request count.

One model (HF) or engine (vLLM) per backend serves every point. Profiler off by default (timing only, warm-ups,
synchronised). Each point's repeats become rows; a point that runs out of memory becomes a row with
status "oom" and the sweep goes on; Ctrl-C keeps what finished.

Request-count mode: all N requests arrive at once. vLLM schedules them by continuous batching; HF runs them as
static batches of `hf_batch`, one after another, so a request's TTFT includes the batches before it.
"""
from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from tracer.errors import TracerError
from tracer.recording.nvml_sampler import NvmlSampler
from workloads.spec import Workload
from workloads.vllm_start import VllmOptions

SWEEP_FILES = ("sweep.parquet", "sweep.csv", "sweep.json", "nvml_timeline.parquet")


@dataclass(frozen=True)
class SweepPlan:
    backends: tuple[str, ...]
    model: str
    batches: tuple[int, ...] = (1,)
    prompts: tuple[int, ...] = (128,)
    outputs: tuple[int, ...] = (64,)
    requests: tuple[int, ...] = ()
    repeats: int = 5               # timed runs per point (medians, spreads); a --trace run comes on top
    layers: int | None = None
    device: str = "auto"
    dtype: str | None = None
    hf_batch: int = 16
    trace_dir: str | None = None   # keep a torch.profiler trace per point (first repeat)
    vllm: VllmOptions | None = None   # the engine's options (eager, quantization, KV dtype, ...); None: defaults

    def points(self) -> list[dict]:
        if self.requests:
            return [{"mode": "requests", "requests": n, "batch": None, "prompt_tokens": p, "output_tokens": o}
                    for n, p, o in itertools.product(self.requests, self.prompts, self.outputs)]
        return [{"mode": "batch", "requests": b, "batch": b, "prompt_tokens": p, "output_tokens": o}
                for b, p, o in itertools.product(self.batches, self.prompts, self.outputs)]


def run_sweep(plan: SweepPlan, out_dir: str | Path, progress=None) -> pd.DataFrame:
    """Run every point for every backend; write the tables into `out_dir` after each point (so an interrupt
    keeps what finished) and return the rows."""
    from tracer.recording.environment import resolve_device
    from tracer.recording.run import default_dtype

    from workloads.models import check_fits_context

    device = resolve_device(plan.device)
    plan = replace(plan, device=device, dtype=plan.dtype or default_dtype(device))
    check_fits_context(plan.model, plan.layers, [(pt["prompt_tokens"], pt["output_tokens"]) for pt in plan.points()])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_older_sweep(out_dir)
    rows: list[dict] = []
    timeline: list[dict] = []
    points = plan.points()
    runs_per_point = plan.repeats + (1 if plan.trace_dir else 0)   # the traced run is not a timed repeat
    total = len(points) * len(plan.backends) * runs_per_point
    bar = progress(total=total) if progress else None
    try:
        for backend in plan.backends:
            runner = _HfRunner(plan) if backend == "hf" else _VllmRunner(plan, points)
            for point in points:
                for rep in range(runs_per_point):
                    row, samples = _run_point(runner, backend, plan, point, rep)
                    rows.append(row)
                    timeline.extend({"backend": backend, **_point_key(point), "repeat": rep, "t_s": t,
                                     "gpu_util_pct": u, "mem_used_bytes": m} for t, u, m in samples)
                    if bar:
                        bar.set_postfix_str(f"{backend} {_point_label(point)} {row['status']}")
                        bar.update(1)
                    if row["status"] == "oom":  # the other repeats of this point would run out too
                        if bar:
                            bar.update(runs_per_point - rep - 1)
                        break
                write_sweep_tables(rows, timeline, out_dir, plan)
            runner.close()
    except KeyboardInterrupt:
        write_sweep_tables(rows, timeline, out_dir, plan)
        raise
    finally:
        if bar:
            bar.close()
    write_sweep_tables(rows, timeline, out_dir, plan)
    return pd.DataFrame(rows)


def _point_key(point: dict) -> dict:
    return {k: point[k] for k in ("mode", "requests", "batch", "prompt_tokens", "output_tokens")}


def _point_label(point: dict) -> str:
    head = f"n{point['requests']}" if point["mode"] == "requests" else f"b{point['batch']}"
    return f"{head}_s{point['prompt_tokens']}_o{point['output_tokens']}"


def _run_point(runner, backend: str, plan: SweepPlan, point: dict, rep: int):
    row = {"backend": backend, "model": plan.model, "device": plan.device, "dtype": plan.dtype,
           **_point_key(point), "repeat": rep, "status": "ok", "error": None}
    traced = rep == plan.repeats   # the run after the timed repeats, under torch.profiler (--trace)
    t0 = time.perf_counter_ns()
    with NvmlSampler() as sampler:
        try:
            row.update(runner.run(point, warmup=1 if rep == 0 else 0, trace=traced))
            if traced:
                row["status"] = "profiled"   # its figures carry the profiler's cost: out of medians and plots
        except Exception as e:  # out of memory at one point is a result, not a crash
            if not _is_oom(e):
                raise
            row.update(status="oom", error=str(e).splitlines()[0][:200])
            runner.recover()
    row.update(sampler.summary())
    samples = [((t - t0) / 1e9, u, m) for t, u, m in sampler.samples]
    return row, samples


def _is_oom(e: Exception) -> bool:
    text = f"{type(e).__name__} {e}".lower()
    return "out of memory" in text or "outofmemory" in text


class _HfRunner:
    def __init__(self, plan: SweepPlan):
        import torch
        from workloads.models import build_model

        self.plan = plan
        self.lm, self.config = build_model(plan.model, plan.layers, getattr(torch, plan.dtype), plan.device)

    def run(self, point: dict, warmup: int, trace: bool) -> dict:
        from workloads.hf import run_hf
        from workloads.prompts import synthetic_prompt_ids

        p, o = point["prompt_tokens"], point["output_tokens"]
        if point["mode"] == "batch":
            wl = Workload("e2e", point["batch"], p, o)
            prof, path = self._profiler(point, trace)
            result = run_hf(self.lm, self.config, wl, self.plan.device, warmup, profiler=prof)
            self._export(prof, path)
            return _figures_row(result.figures())
        # request-count mode: static batches of hf_batch requests, back to back
        n, b = point["requests"], self.plan.hf_batch
        prompts = synthetic_prompt_ids(n, p, self.config.vocab_size)
        if warmup:  # outside the timed region: every request arrives at t=0 and waits only for real work
            run_hf(self.lm, self.config, Workload("e2e", len(prompts[:b]), p, o), self.plan.device, 0,
                   prompts=prompts[:b])
        ttfts, steps, t_start, peak = [], [], time.perf_counter(), 0
        for i in range(0, n, b):
            chunk = prompts[i:i + b]
            offset_ms = (time.perf_counter() - t_start) * 1e3
            r = run_hf(self.lm, self.config, Workload("e2e", len(chunk), p, o), self.plan.device, 0, prompts=chunk)
            ttfts += [offset_ms + r.ttft_ms] * len(chunk)
            steps += r.decode_step_ms
            peak = max(peak, r.peak_allocated_bytes or 0)
        total_s = time.perf_counter() - t_start
        return _request_row(n, p, o, ttfts, steps, total_s, peak_allocated_bytes=peak or None,
                            batches=math.ceil(n / b))

    def _profiler(self, point, trace: bool):
        if not (trace and self.plan.trace_dir):
            return None, None
        from tracer.recording.torch_profiler import torch_profile
        path = Path(self.plan.trace_dir) / f"hf_{self.plan.model}_{_point_label(point)}.json.gz"
        return torch_profile(self.plan.device), path

    @staticmethod
    def _export(prof, path):
        if prof is not None:
            from tracer.recording.torch_profiler import export_chrome_trace
            export_chrome_trace(prof, path)

    def recover(self):
        import torch
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def close(self):
        del self.lm
        self.recover()


class _VllmRunner:
    def __init__(self, plan: SweepPlan, points: list[dict]):
        from workloads.models import model_config, saved_checkpoint
        from workloads.vllm_start import build_engine, engine_max_len

        self.plan = plan
        self.config = model_config(plan.model, plan.layers)
        max_len = engine_max_len(self.config, max(pt["prompt_tokens"] + pt["output_tokens"] for pt in points))
        opts = plan.vllm or VllmOptions()
        if not opts.max_num_seqs:   # room for the largest batch in one step
            opts = replace(opts, max_num_seqs=max(256, *(pt["batch"] or 0 for pt in points)))
        self.llm = build_engine(saved_checkpoint(plan.model, plan.layers, plan.dtype), plan.device, plan.dtype,
                                opts, max_len, profile_dir=plan.trace_dir)

    def run(self, point: dict, warmup: int, trace: bool) -> dict:
        from workloads.vllm_engine import run_vllm

        n, p, o = point["requests"], point["prompt_tokens"], point["output_tokens"]
        profile = bool(trace and self.plan.trace_dir)
        result = run_vllm(self.llm, self.config, Workload("e2e", n, p, o), warmup, profile=profile)
        return _figures_row(result.figures())

    def recover(self):
        pass

    def close(self):
        from tracer.recording.run import shutdown_engine
        shutdown_engine(self.llm)


ROW_FIGURES = ("ttft_ms", "decode_ms_per_token_mean", "decode_ms_per_token_p50", "decode_ms_per_token_p99",
               "total_s", "output_tokens_per_s", "total_tokens_per_s", "peak_allocated_bytes", "kv_cache_bytes",
               "kv_blocks_allocated", "kv_blocks_used_peak", "kv_blocks_needed", "kv_bytes_per_block",
               "ttft_ms_max", "prefill_tokens_computed")


def _figures_row(figures: dict) -> dict:
    return {k: figures.get(k) for k in ROW_FIGURES}


def _request_row(n, p, o, ttfts, steps, total_s, **extra) -> dict:
    import numpy as np
    steps_a = np.asarray(steps, dtype=float)
    return {"ttft_ms": float(np.mean(ttfts)), "ttft_ms_max": float(np.max(ttfts)),
            "decode_ms_per_token_mean": float(steps_a.mean()) if steps_a.size else None,
            "decode_ms_per_token_p50": float(np.percentile(steps_a, 50)) if steps_a.size else None,
            "decode_ms_per_token_p99": float(np.percentile(steps_a, 99)) if steps_a.size else None,
            "total_s": total_s, "output_tokens_per_s": n * o / total_s, "total_tokens_per_s": n * (p + o) / total_s,
            "prefill_tokens_computed": n * p, **extra}


POINT_KEYS = ["backend", "mode", "requests", "batch", "prompt_tokens", "output_tokens"]


def point_summary(df: pd.DataFrame) -> pd.DataFrame:
    """One row per backend and point over its timed repeats (status ok): `runs`, each timing figure's median and
    its `<figure>_spread_pct` (interquartile range as % of the median), the other columns' medians."""
    from workloads.repeats import TIMING_KEYS, median_and_spread

    ok = df[df["status"] == "ok"] if "status" in df else df.iloc[:0]
    rows = []
    for key, g in ok.groupby([k for k in POINT_KEYS if k in ok], dropna=False, sort=False):
        row = dict(zip([k for k in POINT_KEYS if k in ok], key)) | {"runs": len(g)}
        for col in g.select_dtypes("number").columns:
            if col in POINT_KEYS or col == "repeat":
                continue
            med, spread = median_and_spread(g[col].tolist())
            row[col] = med
            if col in TIMING_KEYS:
                row[f"{col}_spread_pct"] = spread
        rows.append(row)
    return pd.DataFrame(rows)


def _remove_older_sweep(out_dir: Path) -> None:
    """A sweep folder holds one sweep: an older sweep's tables and plots (ours by the folder's marker or its
    sweep.json) go before this one writes, so no plot draws the old run's NVML timeline as this one's."""
    from tracer.io.atomic import clean_leftovers
    from tracer.io.outputs import SWEEP_FILES, our_files

    clean_leftovers(out_dir)
    ours = our_files(out_dir)
    for name in SWEEP_FILES:
        if name in ours:
            (out_dir / name).unlink(missing_ok=True)


def write_sweep_tables(rows: list[dict], timeline: list[dict], out_dir: Path, plan: SweepPlan) -> None:
    import orjson

    from tracer.io.atomic import write_atomic, write_with
    from tracer.io.outputs import MARKER, SWEEP_FILES

    if not rows:
        return
    df = pd.DataFrame(rows)
    write_with(out_dir / "sweep.parquet", lambda p: df.to_parquet(p, index=False))
    write_atomic(out_dir / "sweep.csv", df.to_csv(index=False).encode())
    meta = {"plan": {k: v for k, v in plan.__dict__.items()}, "rows": len(df)}
    from tracer.recording.environment import device_properties, library_versions
    meta["device"] = device_properties(plan.device)
    meta["versions"] = library_versions()
    summary = point_summary(df)   # medians and spreads of each point's timed repeats
    points = summary.astype(object).where(summary.notna(), None).to_dict(orient="records")
    write_atomic(out_dir / "sweep.json", orjson.dumps({"meta": meta, "points": points, "rows": rows},
                                                      option=orjson.OPT_INDENT_2
                                                      | orjson.OPT_SERIALIZE_NUMPY, default=str))
    if timeline:
        write_with(out_dir / "nvml_timeline.parquet", lambda p: pd.DataFrame(timeline).to_parquet(p, index=False))
    write_atomic(out_dir / MARKER, orjson.dumps({"files": sorted(n for n in SWEEP_FILES if (out_dir / n).exists())
                                                 + ["throughput_latency.png", "memory.png", "gpu_utilization.png", "report.html"]}))


def parse_int_list(text: str | None, name: str) -> tuple[int, ...]:
    if not text:
        return ()
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise TracerError(f"--{name} {text!r}: expected comma-separated whole numbers, e.g. 1,2,4,8") from None
    if any(v < 1 for v in values):
        raise TracerError(f"--{name} {text!r}: values must be >= 1")
    return values
