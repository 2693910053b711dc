"""The `tracer` command line: click commands only, each a few lines that call library functions."""
from __future__ import annotations

import sys

import click

from tracer.errors import TracerError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli():
    """Profile LLM inference (HF transformers and vLLM), parse traces into tables, analyse kernels."""


@cli.command()
def workloads():
    """List the workload grammar, its defaults and the model presets."""
    from workloads.models import DEFAULT_MODEL, PRESETS
    from workloads.spec import DEFAULT_OUTPUT_TOKENS, DEFAULT_PROMPT_TOKENS, EXAMPLES, GRAMMAR

    click.echo(f"workload names: {GRAMMAR}")
    click.echo(f"  defaults: prompt {DEFAULT_PROMPT_TOKENS} tokens; output {DEFAULT_OUTPUT_TOKENS} tokens "
               "(prefill_*: 1 output token, the prefill alone)")
    click.echo(f"  examples: {', '.join(EXAMPLES)}")
    click.echo("  phases recorded: prefill, decode, and one decode_step per decode forward pass")
    click.echo("models (seeded random weights from the published config; --model PATH loads a local checkpoint):")
    for name, (_, desc) in PRESETS.items():
        click.echo(f"  {name:<11} {desc}{'  [default]' if name == DEFAULT_MODEL else ''}")


def _vllm_options(f):
    f = click.option("--enforce-eager", is_flag=True, help="vLLM: no CUDA graphs, no torch.compile")(f)
    f = click.option("--gpu-memory-utilization", type=float, help="vLLM: share of device memory (CPU: RAM)")(f)
    f = click.option("--max-num-batched-tokens", type=int, help="vLLM: tokens per scheduler step")(f)
    f = click.option("--max-num-seqs", type=int, help="vLLM: sequences per scheduler step")(f)
    f = click.option("--enable-prefix-caching", is_flag=True,
                     help="vLLM: keep prefix caching on (off by default: it skips repeated prefills)")(f)
    return f


def _vllm_opts(kw):
    from workloads.vllm_engine import VllmOptions
    return VllmOptions(enforce_eager=kw["enforce_eager"], gpu_memory_utilization=kw["gpu_memory_utilization"],
                       max_num_batched_tokens=kw["max_num_batched_tokens"], max_num_seqs=kw["max_num_seqs"],
                       prefix_caching=kw["enable_prefix_caching"])


@cli.command()
@click.option("--workload", "-w", required=True, help="e.g. decode_b16, prefill_b1_s512 (see `tracer workloads`)")
@click.option("--backend", default="hf", show_default=True, help="hf, vllm, or both: hf,vllm (then compared)")
@click.option("--model", default="gpt2", show_default=True, help="preset name or local checkpoint folder")
@click.option("--layers", type=int, help="shorten the preset to N layers (recorded in the sidecar)")
@click.option("--device", default="auto", show_default=True, help="auto (GPU if present), cuda[:N] or cpu")
@click.option("--dtype", type=click.Choice(["bfloat16", "float16", "float32"]),
              help="default: bfloat16 on GPU, float32 on CPU")
@click.option("--profiler", default="torch", show_default=True,
              type=click.Choice(["torch", "nsys", "ncu", "none", "capture"]),
              help="none: timing only, no profiler overhead")
@click.option("--out", help="trace path (default traces/<backend>_<model>_<workload>_<device>.json.gz)")
@click.option("--warmup", default=1, show_default=True, type=int, help="warm-up runs before the measured run")
@click.option("--ncu-range", type=click.Choice(["prefill", "decode"]), help="ncu: the phase to measure")
@click.option("--ncu-launch-count", default=400, show_default=True, type=int, help="ncu: kernels at most")
@click.option("--tool-path", help="nsys/ncu executable when not on PATH (or TRACER_NSYS / TRACER_NCU)")
@_vllm_options
def record(**kw):
    """Run a named workload and write a trace under traces/ plus a <name>.meta.json sidecar."""
    from tracer.record.run import RecordRequest, record as do_record
    from workloads.spec import parse_workload

    backends = [b.strip() for b in kw["backend"].split(",") if b.strip()]
    req = RecordRequest(workload=parse_workload(kw["workload"]), backend=backends[0], model=kw["model"],
                        layers=kw["layers"], device=kw["device"], dtype=kw["dtype"], profiler=kw["profiler"],
                        out=kw["out"], warmup=kw["warmup"], vllm=_vllm_opts(kw), ncu_range=kw["ncu_range"],
                        ncu_launch_count=kw["ncu_launch_count"], tool_path=kw["tool_path"])
    if len(backends) == 1:
        written = do_record(req)
        click.echo("wrote " + " ".join(str(p) for p in written), err=True)
        return
    from dataclasses import replace
    traces = []
    for backend in backends:
        written = do_record(replace(req, backend=backend, out=None))
        click.echo("wrote " + " ".join(str(p) for p in written), err=True)
        traces.append(str(written[0]))
    from tracer.commands import compare_paths
    compare_paths(traces, out_dir=None, as_json=False)


def main():
    try:
        cli.main(standalone_mode=False)
    except TracerError as e:
        click.echo(f"tracer: error: {e}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("tracer: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        click.echo(f"tracer: error: {e.format_message()}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("tracer: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
