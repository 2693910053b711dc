"""`tracer serve`: an HF server with a dynamic batcher, or vLLM's own API server."""
from __future__ import annotations

import click

from tracer.cli.options import PORT
from tracer.errors import TracerError
from workloads.sdpa import SDPA_BACKENDS   # light: torch is imported when a backend is set


@click.command()
@click.option("--backend", type=click.Choice(["hf", "vllm"]), default="hf", show_default=True)
@click.option("--model", default="gpt2", show_default=True, help="preset name or local checkpoint folder")
@click.option("--layers", type=int, help="shorten the preset to N layers")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=PORT)
@click.option("--max-batch", type=int, help="HF: requests per batch (default 8); vLLM: --max-num-seqs")
@click.option("--max-wait-ms", default=50.0, show_default=True, help="HF: how long a batch waits to fill")
@click.option("--max-queue", default=256, show_default=True, help="HF: waiting requests before 503")
@click.option("--device", default="auto", show_default=True, help="auto (GPU if present), cuda[:N] or cpu")
@click.option("--dtype", type=click.Choice(["bfloat16", "float16", "float32"]))
@click.option("--enforce-eager", is_flag=True, help="vLLM: no CUDA graphs")
@click.option("--enable-prefix-caching", is_flag=True, help="vLLM: prefix caching (off by default)")
@click.option("--profile", "profile_s", type=float, help="torch.profiler window of this many seconds under load "
              "(HF: from the first batch, with request spans; vLLM: its profiler endpoints, from the first running "
              "request), with the running batch size")
@click.option("--profile-delay", "profile_delay_s", default=0.0, show_default=True, type=float,
              help="open the window this many seconds after the first request runs (past a load's warm-up)")
@click.option("--profile-out", help="trace path of the window (default traces/serve_<backend>_<model>_<device>.json.gz)")
@click.option("--sdpa-backend", type=click.Choice(SDPA_BACKENDS), default="auto",
              show_default=True, help="HF: torch's attention backend (auto: torch's choice; on Hopper that can be "
              "cuDNN, which plans every new KV length once)")
def serve(**kw):
    """Serve /v1/completions (prompts as token ids): HF with a dynamic batcher, or vLLM's own API server."""
    from tracer.serve.hf_server import ServeOptions
    device = kw["device"]
    if device == "auto":
        import torch
        device = "cuda" if torch.cuda.is_available() else "cpu"
    opts = ServeOptions(model=kw["model"], layers=kw["layers"], device=device, dtype=kw["dtype"], host=kw["host"],
                        port=kw["port"], max_batch=kw["max_batch"] or 8, max_wait_ms=kw["max_wait_ms"],
                        max_queue=kw["max_queue"], profile_s=kw["profile_s"], profile_out=kw["profile_out"],
                        profile_delay_s=kw["profile_delay_s"], sdpa_backend=kw["sdpa_backend"])
    if kw["profile_s"] is not None and not kw["profile_s"] > 0:
        raise TracerError("--profile SECONDS must be above 0")
    if not kw["profile_delay_s"] >= 0:
        raise TracerError("--profile-delay SECONDS must be 0 or more")
    if kw["backend"] == "hf":
        from tracer.serve.hf_server import serve_hf
        serve_hf(opts)
    else:
        from tracer.serve.vllm_server import serve_vllm
        serve_vllm(opts, enable_prefix_caching=kw["enable_prefix_caching"], enforce_eager=kw["enforce_eager"],
                   max_num_seqs=kw["max_batch"])
