"""`tracer analyze`: one trace, or one trace per rank, into tables, roofline, plots and report."""
from __future__ import annotations

from pathlib import Path

import click

from tracer.cli.options import FORCE, work_model_options


@click.command()
@click.argument("trace", nargs=-1, required=True)
@click.option("--out", help="output folder (default <trace stem>_analysis beside the trace; several traces: "
                           "ranks_analysis in their folder)")
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None,
              help="several traces: parse them as tasks on the Ray cluster at ADDRESS (a local one when none "
                   "is given; put --ray after the traces)")
@click.option("--json", "as_json", is_flag=True, help="print summary.json to stdout")
@click.option("--peaks", type=click.Path(exists=True, dir_okay=False), help="peaks JSON from `tracer calibrate`")
@click.option("--ncu", "ncu_file", type=click.Path(exists=True, dir_okay=False),
              help="Nsight Compute CSV of the same workload: measured against analytic work")
@click.option("--ncu-phase", type=click.Choice(["prefill", "decode"]), help="phase the ncu CSV measured")
@work_model_options
@click.option("--tp", type=click.IntRange(min=1), help="tensor-parallel degree: each rank's work is its 1/N shard "
              "of the model (default: the trace's distributedInfo.world_size)")
@FORCE
def analyze(trace, out, ray_address, as_json, peaks, ncu_file, ncu_phase, model, layers, workload, dtype,
            quantization, kv_cache_dtype, tp, force):
    """Per-kernel tables, roofline and memory/compute/latency breakdowns of a trace (Chrome/Kineto JSON,
    nsys .sqlite or .nsys-rep); several traces (files, a folder, a glob): one per rank, with a rank column,
    communication, overlap and stragglers."""
    from tracer.commands import analyze_path, work_model_inputs
    if len(trace) > 1 or ray_address is not None or Path(trace[0]).is_dir() or any(c in trace[0] for c in "*?["):
        from tracer.analyze_ranks import analyze_ranks
        analyze_ranks(list(trace), out, as_json, peaks,
                      work_model_inputs(model, layers, workload, dtype, quantization, kv_cache_dtype, tp=tp),
                      ray_address)
        return
    trace = trace[0]
    analyze_path(trace, out, as_json, peaks, ncu_file, ncu_phase,
                 work_model=work_model_inputs(model, layers, workload, dtype, quantization, kv_cache_dtype, tp=tp),
                 force=force)
