"""`tracer sweep`: timed runs over batch size, prompt length or request count, with plots."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from tracer.cli.options import FORCE, backend_list, quiet_unless_verbose, vllm_options, vllm_options_of
from tracer.errors import TracerError


@click.command()
@click.option("--backend", default="hf", show_default=True, help="hf, vllm or hf,vllm")
@click.option("--model", default="gpt2", show_default=True)
@click.option("--layers", type=click.IntRange(min=1))
@click.option("--batch", default="1", show_default=True, help="batch sizes, e.g. 1,2,4,8,16,32,64")
@click.option("--prompt", default="128", show_default=True, help="prompt lengths, e.g. 32,64,128,256,512,1024")
@click.option("--output", default="64", show_default=True, help="output lengths")
@click.option("--requests", default=None, help="request counts (request-count mode), e.g. 10,50,100,200,500")
@click.option("--hf-batch", default=16, show_default=True, type=click.IntRange(min=1),
              help="HF static batch size in request-count mode")
@click.option("--repeats", default=5, show_default=True, type=click.IntRange(min=1),
              help="timed runs per point: medians with their spread (IQR % of median)")
@click.option("--device", default="auto", show_default=True)
@click.option("--dtype", type=click.Choice(["bfloat16", "float16", "float32"]))
@click.option("--trace", "keep_traces", is_flag=True, help="keep a torch.profiler trace per point")
@click.option("--out", default="traces/sweep", show_default=True, help="output folder")
@click.option("--no-plots", is_flag=True)
@vllm_options
@FORCE
def sweep(**kw):
    """Latency, throughput, memory and GPU utilisation over batch size, prompt length or request count."""
    from tracer.progress import progress
    from tracer.recording.sweep import SweepPlan, parse_int_list, run_sweep

    from tracer.io.outputs import SWEEP_FILES, check_out_dir

    out = kw["out"]
    lists = {k: parse_int_list(kw[k], k) for k in ("batch", "prompt", "output")}
    for k, v in lists.items():
        if not v:
            raise TracerError(f"--{k} {kw[k]!r}: expected comma-separated whole numbers, e.g. 1,2,4,8")
    if kw["requests"] is not None and not parse_int_list(kw["requests"], "requests"):
        raise TracerError(f"--requests {kw['requests']!r}: expected comma-separated whole numbers, e.g. 10,50")
    backends = tuple(backend_list(kw["backend"]))
    check_out_dir(out, SWEEP_FILES, kw["force"])
    quiet_unless_verbose()
    plan = SweepPlan(backends=backends, model=kw["model"],
                     batches=lists["batch"], prompts=lists["prompt"], outputs=lists["output"],
                     requests=parse_int_list(kw["requests"], "requests"), repeats=kw["repeats"],
                     layers=kw["layers"], device=kw["device"], dtype=kw["dtype"], hf_batch=kw["hf_batch"],
                     trace_dir=str(Path(out) / "traces") if kw["keep_traces"] else None,
                     vllm=vllm_options_of(kw))
    try:
        df = run_sweep(plan, out, progress=lambda total: progress(total, "runs", "tracer sweep", each=True))
    except KeyboardInterrupt:
        click.echo(f"tracer: interrupted; finished points kept in {out}", err=True)
        sys.exit(130)
    click.echo(summarize_sweep(df))
    if not kw["no_plots"]:
        from analysis.reports.sweep_plots import plot_sweep
        for path in plot_sweep(out):
            click.echo(f"wrote {path}", err=True)
        from analysis.reports.html.sweep_pages import sweep_html
        from tracer.io.atomic import write_atomic
        click.echo(f"wrote {write_atomic(Path(out) / 'report.html', sweep_html(out).encode())}", err=True)
    click.echo(f"wrote {out}/sweep.parquet {out}/sweep.csv {out}/sweep.json", err=True)


def summarize_sweep(df) -> str:
    """Per backend and point: the medians of its timed repeats, with the spread (IQR % of median) of each timing."""
    from tracer.recording.sweep import point_summary
    cols = [c for c in ("backend", "mode", "requests", "prompt_tokens", "output_tokens", "runs", "ttft_ms",
                        "ttft_ms_spread_pct", "decode_ms_per_token_mean", "decode_ms_per_token_mean_spread_pct",
                        "output_tokens_per_s", "output_tokens_per_s_spread_pct", "peak_allocated_bytes",
                        "nvml_peak_memory_used_bytes", "gpu_util_pct_mean") if c in df.columns or c == "runs"
            or c.endswith("_spread_pct")]
    agg = point_summary(df)
    agg = agg[[c for c in cols if c in agg.columns]].rename(columns=lambda c: c.replace("_spread_pct", " ±%"))
    return agg.round(2).to_string(index=False)
