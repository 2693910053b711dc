"""Dynamic batching for the HF server: requests that arrive within `max_wait_ms` of the first one (at most
`max_batch`) run as one padded batch with its own KV cache until the longest of them is done.

This is the classic "static batch per window" server (not continuous batching): a request that arrives while a
batch runs waits for it to finish. The model runs in one worker thread; tokens go back to the event loop through
`call_soon_threadsafe`, so a slow client never stalls the batch.
"""
from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field


@dataclass
class Request:
    prompt: list[int]
    max_tokens: int
    ignore_eos: bool
    arrived_ns: int = field(default_factory=time.perf_counter_ns)
    batch_start_ns: int | None = None   # perf_counter_ns: its batch's prefill began
    first_token_ns: int | None = None
    done_ns: int | None = None
    tokens: asyncio.Queue = field(default_factory=asyncio.Queue)  # (token id, finish reason or None), then None (or an Exception)
    output_ids: list[int] = field(default_factory=list)
    finish_reason: str | None = None


class QueueFull(Exception):
    """More requests waiting than the queue limit: the server answers 503."""


@dataclass
class BatcherConfig:
    max_batch: int = 8
    max_wait_ms: float = 50.0
    max_queue: int = 256


IDLE_CHECK_S = 0.5   # how often an idle batcher asks whether a profiled window is due to close


class Batcher:
    """Owns the waiting queue and the one task that forms and runs batches."""

    def __init__(self, step_fn, cfg: BatcherConfig):
        self._generate = step_fn  # generate(requests, emit) runs a batch to the end in a worker thread
        self.cfg = cfg
        self._waiting: asyncio.Queue[Request] = asyncio.Queue()
        self.running = 0
        # one worker thread: the model is not shared between batches, and a profiler started there sees every batch
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="tracer-batch")
        # a profiled window (tracer/serve/profile_window.py) that must close in that thread when no batch comes
        self._close_window = getattr(step_fn, "close_window", None)

    @property
    def waiting(self) -> int:
        return self._waiting.qsize()

    def submit(self, req: Request) -> None:
        if self._waiting.qsize() >= self.cfg.max_queue:
            raise QueueFull(f"{self._waiting.qsize()} requests waiting (limit {self.cfg.max_queue})")
        self._waiting.put_nowait(req)

    async def next_request(self, loop) -> Request:
        """The next waiting request; while a profiled window is open, the idle worker closes it once it is due."""
        while self._close_window is not None:
            try:
                return await asyncio.wait_for(self._waiting.get(), IDLE_CHECK_S)
            except asyncio.TimeoutError:
                if await loop.run_in_executor(self._worker, self._close_window):
                    self._close_window = None
        return await self._waiting.get()

    async def shutdown(self) -> None:
        """At server exit: a profiled window still open is closed and written, after any batch still running."""
        if self._close_window is not None:
            await asyncio.get_running_loop().run_in_executor(self._worker, self._close_window, True)
            self._close_window = None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.next_request(loop)]
            deadline = loop.time() + self.cfg.max_wait_ms / 1e3
            while len(batch) < self.cfg.max_batch:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._waiting.get(), timeout))
                except asyncio.TimeoutError:
                    break

            def emit(req: Request, item) -> None:
                loop.call_soon_threadsafe(req.tokens.put_nowait, item)

            self.running = len(batch)
            try:
                await loop.run_in_executor(self._worker, self._generate, batch, emit)
            except Exception as e:  # a failed batch fails its requests, never the server
                for r in batch:
                    r.tokens.put_nowait(e)
            finally:
                self.running = 0


def left_padded(prompts: list[list[int]], pad_id: int):
    """(input_ids, attention_mask, position_ids) tensors with prompts aligned to the right, so every row's next
    token is at the last column and one decode step serves the whole batch."""
    import torch
    width = max(map(len, prompts))
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p):] = torch.tensor(p)
        mask[i, width - len(p):] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids, mask, positions


from tracer.serve import SDPA_BACKENDS  # noqa: E402,F401 (defined where the CLI reads it without asyncio)


def sdpa_context(backend: str):
    """torch's scaled-dot-product attention limited to one backend ("auto": torch's own choice). Why: on the H200
    (torch 2.11) auto picks cuDNN for HF decode, which builds a plan for every new (batch, KV length) it meets,
    ~4.6 ms of host time a call, ~55 ms a gpt2 decode step, until every shape a server sees has been met once."""
    import contextlib
    if backend == "auto":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel
    return sdpa_kernel({"flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION,
                        "cudnn": SDPBackend.CUDNN_ATTENTION, "math": SDPBackend.MATH}[backend])


def make_generate(lm, device: str, eos_id: int | None, pad_id: int = 0, sdpa_backend: str = "auto"):
    """The batch runner for `Batcher`: greedy decoding with a KV cache for this batch alone. Each forward pass is
    a `prefill` or `decode_step` phase (workloads/phases.py), so `tracer analyze` attributes a profile's kernels;
    `generate.clock` (a list, or None) collects the phases' host times for placing request spans."""
    import torch

    from workloads.phases import DECODE_STEP, PREFILL, phase

    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def generate(batch: list[Request], emit) -> None:
        ids, mask, pos = (t.to(device) for t in left_padded([r.prompt for r in batch], pad_id))
        steps = max(r.max_tokens for r in batch)
        live = [True] * len(batch)
        cache = None
        start_ns = time.perf_counter_ns()
        for r in batch:
            r.batch_start_ns = start_ns
        with torch.inference_mode(), sdpa_context(sdpa_backend):
            for step in range(steps):
                with phase(PREFILL if step == 0 else DECODE_STEP, generate.clock):
                    out = lm(input_ids=ids, attention_mask=mask, position_ids=pos, past_key_values=cache,
                             use_cache=True)
                    cache = out.past_key_values
                    next_ids = out.logits[:, -1, :].argmax(-1)
                    sync()
                now_ns = time.perf_counter_ns()
                values = next_ids.tolist()
                for i, r in enumerate(batch):
                    if not live[i]:
                        continue
                    r.output_ids.append(values[i])
                    r.first_token_ns = r.first_token_ns or now_ns
                    if len(r.output_ids) >= r.max_tokens:
                        r.finish_reason, live[i] = "length", False
                    elif not r.ignore_eos and eos_id is not None and values[i] == eos_id:
                        r.finish_reason, live[i] = "stop", False
                    emit(r, (values[i], r.finish_reason))
                    if not live[i]:
                        r.done_ns = now_ns
                        emit(r, None)
                if not any(live):
                    break
                ids = next_ids[:, None]
                mask = torch.cat([mask, mask.new_ones((len(batch), 1))], dim=1)
                pos = pos[:, -1:] + 1

    generate.clock = None
    return generate
