"""`tracer serve --backend hf`: an aiohttp server of the OpenAI completions API over a dynamic batcher.

POST /v1/completions {model, prompt: [token ids], max_tokens, stream, ignore_eos}; GET /health; GET /v1/models.
Streaming answers are server-sent events in the OpenAI format, one token per event, then `data: [DONE]`.
"""
from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass

from aiohttp import web

from tracer.serve.api import BadRequest, completion, error_body, parse_completion_request, stream_chunk, usage
from tracer.serve.batcher import Batcher, BatcherConfig, QueueFull, Request


@dataclass(frozen=True)
class ServeOptions:
    model: str = "gpt2"
    layers: int | None = None
    device: str = "cpu"
    dtype: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    max_batch: int = 8
    max_wait_ms: float = 50.0
    max_queue: int = 256
    profile_s: float | None = None      # torch.profiler window over the first batches (tracer/serve/profile_window.py)
    profile_out: str | None = None
    profile_delay_s: float = 0.0        # the window opens this long after the first request runs (past warm-up)
    sdpa_backend: str = "auto"          # attention backend of torch's SDPA (workloads/sdpa.py sdpa_context)

    def window_out(self, backend: str) -> str:
        """Where the profiled window is written: --profile-out, else traces/serve_<backend>_<model>_<device>."""
        return self.profile_out or f"traces/serve_{backend}_{self.model}_{self.device.split(':')[0]}.json.gz"

    def resolved_dtype(self) -> str:
        """The dtype both servers run: the one asked for, else bfloat16 on a GPU and float32 on the CPU."""
        return self.dtype or ("bfloat16" if self.device.startswith("cuda") else "float32")


def build_app(lm, config, opts: ServeOptions, generate=None) -> web.Application:
    from workloads.models import context_tokens
    from tracer.serve.batcher import make_generate

    eos = getattr(config, "eos_token_id", None)
    generate = generate or make_generate(lm, opts.device, eos if isinstance(eos, int) else None,
                                         sdpa_backend=opts.sdpa_backend)
    if opts.profile_s:
        from tracer.serve.profile_window import profiled
        from tracer.serve.window_tracks import write_window_sidecar
        generate = profiled(generate, opts.profile_s, opts.window_out("hf"), opts.device,
                            on_written=lambda path, stall: write_window_sidecar(path, "hf", opts, stall),
                            delay_s=opts.profile_delay_s)
    batcher = Batcher(generate, BatcherConfig(opts.max_batch, opts.max_wait_ms, opts.max_queue))
    ids = itertools.count()
    limit = context_tokens(config)

    def fail(status: int, message: str, kind: str) -> web.Response:
        return web.json_response(error_body(message, kind, status), status=status)

    async def completions(request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return fail(400, "body is not JSON", "invalid_request_error")
        try:
            req_fields = parse_completion_request(body, config.vocab_size, limit)
        except BadRequest as e:
            return fail(400, str(e), "invalid_request_error")
        req = Request(req_fields["prompt"], req_fields["max_tokens"], req_fields["ignore_eos"])
        try:
            batcher.submit(req)
        except QueueFull as e:
            return fail(503, f"server overloaded: {e}", "overloaded")
        req_id, name = f"cmpl-{next(ids)}", opts.model
        if not req_fields["stream"]:
            while (item := await req.tokens.get()) is not None:
                if isinstance(item, Exception):
                    return fail(500, f"generation failed: {type(item).__name__}: {item}", "server_error")
            return web.json_response(completion(req_id, name, req.output_ids, req.finish_reason, len(req.prompt)))
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)

        async def send(obj) -> None:
            await resp.write(b"data: " + json.dumps(obj).encode() + b"\n\n")

        while (item := await req.tokens.get()) is not None:
            if isinstance(item, Exception):
                await send(error_body(f"generation failed: {type(item).__name__}: {item}", "server_error", 500))
                break
            token, finish_reason = item
            await send(stream_chunk(req_id, name, [token], finish_reason))
        if req_fields["include_usage"]:
            await send(stream_chunk(req_id, name, [], usage_body=usage(len(req.prompt), len(req.output_ids))))
        await resp.write(b"data: [DONE]\n\n")
        return resp

    async def health(_request) -> web.Response:
        return web.json_response({"status": "ok", "waiting": batcher.waiting, "running": batcher.running})

    async def models(_request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": opts.model, "object": "model"}]})

    async def start_batcher(app: web.Application) -> None:
        app["batcher_task"] = asyncio.create_task(batcher.run())

    async def stop_batcher(app: web.Application) -> None:
        app["batcher_task"].cancel()
        await batcher.shutdown()

    app = web.Application(client_max_size=8 * 2**20)
    app.router.add_post("/v1/completions", completions)
    app.router.add_get("/health", health)
    app.router.add_get("/v1/models", models)
    app.on_startup.append(start_batcher)
    app.on_cleanup.append(stop_batcher)
    return app


def warm_up(lm, opts: ServeOptions) -> None:
    """One full batch of short prompts through the model before /health answers, as vLLM's server warms up
    before it listens: the first clients would otherwise pay for CUDA/cuBLAS initialisation in their TTFT."""
    from tracer.serve.batcher import make_generate
    generate = make_generate(lm, opts.device, None, sdpa_backend=opts.sdpa_backend)
    generate([Request([1000 + i for i in range(16)], 4, True) for _ in range(opts.max_batch)], lambda r, item: None)


def serve_hf(opts: ServeOptions) -> None:
    """Load the model, then serve until Ctrl-C (aiohttp stops cleanly on SIGINT)."""
    import socket

    import torch

    from tracer.errors import TracerError
    from workloads.models import build_model

    with socket.socket() as s:  # a taken port is one line, before minutes of model loading
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((opts.host, opts.port))
        except OSError as e:
            raise TracerError(f"cannot listen on {opts.host}:{opts.port}: {e.strerror}") from None
    lm, config = build_model(opts.model, opts.layers, getattr(torch, opts.resolved_dtype()), opts.device)
    warm_up(lm, opts)
    print(f"tracer serve: hf {opts.model} on {opts.device} at http://{opts.host}:{opts.port}/v1/completions "
          f"(max batch {opts.max_batch}, max wait {opts.max_wait_ms} ms, queue {opts.max_queue})", flush=True)
    web.run_app(build_app(lm, config, opts), host=opts.host, port=opts.port, print=None, access_log=None)
