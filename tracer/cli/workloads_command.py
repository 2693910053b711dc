"""`tracer workloads`: the workload grammar and the model presets."""
from __future__ import annotations

import click


@click.command()
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
