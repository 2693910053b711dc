"""`tracer load`: load-test a /v1/completions server (tracer.loadgen)."""
from __future__ import annotations

import click


@click.command()
@click.option("--url", help="server base URL, e.g. http://127.0.0.1:8000")
@click.option("--rate", type=float, help="open loop: Poisson arrivals per second (inf: all at once)")
@click.option("--rates", help="sweep open-loop rates, e.g. 1,2,4,8 (one run each)")
@click.option("--concurrency", type=int, help="closed loop: clients that each wait for their last answer")
@click.option("--requests", default=100, show_default=True, type=int)
@click.option("--min-duration-s", type=float,
              help="open loop: send at least rate x this many requests, so a high rate is held long enough to queue")
@click.option("--prompt", default=128, show_default=True, type=int, help="prompt tokens per request")
@click.option("--output", default=64, show_default=True, type=int, help="output tokens per request")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--model", default="gpt2", show_default=True, help="model name sent in each request")
@click.option("--vocab-size", default=50257, show_default=True, type=int, help="prompt ids are drawn below this")
@click.option("--slo-ttft-ms", type=float, help="goodput: TTFT at most this")
@click.option("--slo-tpot-ms", type=float, help="goodput: TPOT at most this")
@click.option("--timeout-s", default=300.0, show_default=True, help="per request")
@click.option("--warmup-requests", default=0, show_default=True, type=int,
              help="requests sent first (closed loop, same shapes) and not counted")
@click.option("--label", help="name of this server on plots (default: the output folder's name)")
@click.option("--out", default="traces/load", show_default=True, help="output folder")
@click.option("--plot", "plot_with", multiple=True, help="another sweep folder to draw on the same plot")
def load(**kw):
    """Load-test a /v1/completions server: TTFT, TPOT, ITL, e2e, throughput and goodput; sweeps over rates."""
    from tracer.loadgen.runner import load_command
    load_command(**kw)
