"""`tracer compare`: analysed runs side by side, with regression gates."""
from __future__ import annotations

import click

from tracer.cli.options import FORCE, work_model_options


@click.command()
@click.argument("traces", nargs=-1, required=True)
@click.option("--out", help="output folder (default traces/compare)")
@click.option("--json", "as_json", is_flag=True)
@click.option("--peaks", type=click.Path(exists=True, dir_okay=False))
@click.option("--fail-if", "fail_if", multiple=True, metavar="COND",
              help="regression gate, e.g. 'decode_ms_per_token>+5%' (change of each run against the first) or "
                   "'unmodeled_pct>3' (a run's value); repeatable; exit 1 with one line per broken condition")
@work_model_options
@FORCE
def compare(traces, out, as_json, peaks, fail_if, model, layers, workload, dtype, quantization, kv_cache_dtype,
            force):
    """Side by side: headline, throughput and latency, wall time per step, host time, classes, bound shares,
    memory."""
    from tracer.commands import compare_paths, work_model_inputs
    compare_paths(list(traces), out, as_json, peaks, work_model=work_model_inputs(model, layers, workload, dtype, quantization, kv_cache_dtype),
                  fail_if=fail_if, force=force)
