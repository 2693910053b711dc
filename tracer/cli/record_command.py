"""`tracer record`: run named workloads under a profiler; with two backends, compare them."""
from __future__ import annotations

from pathlib import Path

import click

from tracer.cli.options import (FORCE, backend_list, nonempty_list, quiet_unless_verbose, vllm_options,
                                vllm_options_of)
from workloads.sdpa import SDPA_BACKENDS   # light: torch is imported when a backend is set


@click.command()
@click.option("--workload", "-w", required=True,
              help="e.g. decode_b16, prefill_b1_s512 (see `tracer workloads`); several, comma-separated, share "
                   "one loaded model or engine")
@click.option("--backend", default="hf", show_default=True, help="hf, vllm, or both: hf,vllm (then compared)")
@click.option("--model", default="gpt2", show_default=True, help="preset name or local checkpoint folder")
@click.option("--layers", type=int, help="shorten the preset to N layers (recorded in the sidecar)")
@click.option("--device", default="auto", show_default=True, help="auto (GPU if present), cuda[:N] or cpu")
@click.option("--dtype", type=click.Choice(["bfloat16", "float16", "float32"]),
              help="default: bfloat16 on GPU, float32 on CPU")
@click.option("--profiler", default="torch", show_default=True,
              type=click.Choice(["torch", "nsys", "ncu", "none", "capture"]),
              help="none: timing only, no profiler overhead")
@click.option("--out", help="trace path (default traces/<backend>_<model>_<workload>_<device>.json.gz); "
                           "with several workloads, a folder")
@click.option("--warmup", default=1, show_default=True, type=click.IntRange(min=0),
              help="warm-up runs before the measured run")
@click.option("--ncu-range", type=click.Choice(["prefill", "decode"]), help="ncu: the phase to measure")
@click.option("--ncu-launch-count", default=400, show_default=True, type=click.IntRange(min=1),
              help="ncu: kernels at most")
@click.option("--tool-path", help="nsys/ncu executable when not on PATH (or TRACER_NSYS / TRACER_NCU)")
@click.option("--repeat", default=5, show_default=True, type=click.IntRange(min=1),
              help="timed runs without a profiler after the warm-ups: each figure their median, with its spread")
@click.option("--profiled-repeats", default=3, show_default=True, type=click.IntRange(min=1),
              help="--profiler torch: profiled runs (the last one's trace is written)")
@click.option("--sdpa-backend", type=click.Choice(SDPA_BACKENDS), default="auto", show_default=True,
              help="HF: torch's attention backend (auto: torch's choice); the one used is in the sidecar")
@FORCE
@vllm_options
def record(**kw):
    """Run a named workload and write a trace under traces/ plus a <name>.meta.json sidecar."""
    from tracer.io.outputs import check_record_out
    from tracer.recording.run import RecordRequest, record as do_record
    from workloads.spec import parse_workload

    backends = backend_list(kw["backend"])
    wls = [parse_workload(w) for w in nonempty_list(kw["workload"], "--workload")]
    out = check_record_out(kw["out"], len(backends) * len(wls), kw["force"])
    quiet_unless_verbose()
    req = RecordRequest(workload=wls[0], backend=backends[0], model=kw["model"],
                        layers=kw["layers"], device=kw["device"], dtype=kw["dtype"], profiler=kw["profiler"],
                        out=kw["out"], warmup=kw["warmup"], vllm=vllm_options_of(kw), ncu_range=kw["ncu_range"],
                        ncu_launch_count=kw["ncu_launch_count"], tool_path=kw["tool_path"], repeat=kw["repeat"],
                        profiled_repeats=kw["profiled_repeats"], sdpa_backend=kw["sdpa_backend"])
    if len(backends) == 1:
        written = do_record(req, tuple(wls[1:]))
        _echo_repeated_figures(written)
        click.echo("wrote " + " ".join(str(p) for p in written), err=True)
        return
    from dataclasses import replace
    traces: dict[str, list[str]] = {w.name: [] for w in wls}
    for backend in backends:   # every workload on each backend, into --out when given
        written = do_record(replace(req, backend=backend), tuple(wls[1:]))
        _echo_repeated_figures(written)
        click.echo("wrote " + " ".join(str(p) for p in written), err=True)
        firsts = [p for i, p in enumerate(written) if i == 0 or str(written[i - 1]).endswith(".meta.json")]
        for w, trace in zip(wls, firsts):
            traces[w.name].append(str(trace))
    from tracer.commands import compare_paths
    for name, paths in traces.items():
        where = Path(out) / f"compare_{name}" if out else Path("traces") / f"compare_{name}"
        compare_paths(paths, out_dir=str(where), as_json=False, force=kw["force"])


def _echo_repeated_figures(written) -> None:
    """Each sidecar's repeated figures: medians with their spreads, generate()'s, inflation, warnings."""
    import orjson

    from analysis.timing.repeat_figures import record_lines
    for p in written:
        if str(p).endswith(".meta.json"):
            side = orjson.loads(Path(p).read_bytes())
            label = f"{side['backend']}:{side['workload']['name']}"
            for line in record_lines(label, side.get("figures") or {}):
                click.echo(line)
