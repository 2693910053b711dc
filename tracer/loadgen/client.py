"""`tracer load`: an async HTTP load generator for OpenAI-style /v1/completions servers (ours and vLLM's).

Open loop: request i is sent at the i-th arrival of a Poisson process of `rate` per second (exponential gaps,
as `vllm bench serve` with burstiness 1), whether or not earlier ones are done. Closed loop: `concurrency`
clients each send their next request when the last one ends. Prompts are seeded random token ids.
"""
from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import dataclass

import numpy as np

from tracer.loadgen.metrics import request_row


@dataclass(frozen=True)
class LoadPlan:
    url: str
    requests: int
    prompt_tokens: int
    output_tokens: int
    seed: int = 0
    rate: float | None = None          # requests per second (open loop); inf: all at once
    concurrency: int | None = None     # closed loop
    model: str = "gpt2"
    vocab_size: int = 50257
    timeout_s: float = 300.0


def prompts(plan: LoadPlan) -> list[list[int]]:
    rng = np.random.default_rng(plan.seed)
    low = min(1000, plan.vocab_size // 2)  # clear of special tokens, as workloads/prompts.py
    return rng.integers(low, plan.vocab_size, size=(plan.requests, plan.prompt_tokens)).tolist()


def arrival_offsets_s(plan: LoadPlan) -> np.ndarray:
    if plan.rate is None or np.isinf(plan.rate):
        return np.zeros(plan.requests)
    gaps = np.random.default_rng(plan.seed + 1).exponential(1.0 / plan.rate, size=plan.requests)
    return np.concatenate([[0.0], np.cumsum(gaps[:-1])])


def completions_url(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/v1/completions") else url + "/v1/completions"


async def send_one(session, plan: LoadPlan, index: int, prompt: list[int]) -> dict:
    """Stream one completion; every outcome is a row (ok, error with the server's message, or timeout)."""
    import aiohttp
    body = {"model": plan.model, "prompt": prompt, "max_tokens": plan.output_tokens, "stream": True,
            "ignore_eos": True, "temperature": 0, "stream_options": {"include_usage": True}}
    chunk_s, tokens, usage = [], 0, None
    sent = time.perf_counter()
    try:
        async with asyncio.timeout(plan.timeout_s):
            async with session.post(completions_url(plan.url), json=body) as resp:
                if resp.status != 200:
                    text = (await resp.text())[:300]
                    return request_row(index, sent, len(prompt), [], 0, time.perf_counter(), "error",
                                       f"HTTP {resp.status}: {text}")
                async for raw in resp.content:
                    line = raw.strip()
                    if not line.startswith(b"data:"):
                        continue
                    data = line[5:].strip()
                    if data == b"[DONE]":
                        break
                    msg = json.loads(data)
                    if "error" in msg:
                        return request_row(index, sent, len(prompt), [], 0, time.perf_counter(), "error",
                                           str(msg["error"].get("message", msg["error"]))[:300])
                    if msg.get("usage"):
                        usage = msg["usage"]
                    choices = msg.get("choices") or []
                    if choices:
                        chunk_s.append(time.perf_counter())
                        tokens += len(choices[0].get("token_ids") or []) or 1
    except TimeoutError:
        return request_row(index, sent, len(prompt), [], 0, time.perf_counter(), "timeout", "timed out")
    except aiohttp.ClientError as e:
        return request_row(index, sent, len(prompt), [], 0, time.perf_counter(), "error", f"{type(e).__name__}: {e}")
    end = time.perf_counter()
    # the server's usage is the token count of record; streamed chunks are the fallback
    output_tokens = usage["completion_tokens"] if usage else tokens
    if not chunk_s:
        return request_row(index, sent, len(prompt), [], 0, end, "error", "no tokens streamed")
    return request_row(index, sent, len(prompt), chunk_s, output_tokens, end, "ok")


async def run_load(plan: LoadPlan, progress=None) -> tuple[list[dict], float]:
    """All requests of the plan; returns their rows (sorted by index) and the run's wall time in seconds."""
    import aiohttp
    ids = prompts(plan)
    rows: list[dict] = []
    conn = aiohttp.TCPConnector(limit=0)  # no client-side cap: open loop means the server sees every arrival
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as session:
        async def one(i: int) -> None:
            rows.append(await send_one(session, plan, i, ids[i]))
            if progress:
                progress.update(1)

        t0 = time.perf_counter()
        if plan.concurrency:
            queue = iter(range(plan.requests))

            async def worker() -> None:
                for i in queue:
                    await one(i)
            await asyncio.gather(*(worker() for _ in range(plan.concurrency)))
        else:
            tasks = []
            for i, offset in enumerate(arrival_offsets_s(plan)):
                delay = t0 + offset - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(i)))
            await asyncio.gather(*tasks)
        duration = time.perf_counter() - t0
    rows.sort(key=lambda r: r["request"])
    scheduled = arrival_offsets_s(plan) if not plan.concurrency else None
    for r in rows:
        r["sent_s"] -= t0
        # how late the client sent it: a client whose event loop is busy with other streams offers less load than
        # asked and its latencies include its own delay (nan in closed loop, where nothing is scheduled)
        r["send_lag_ms"] = (r["sent_s"] - scheduled[r["request"]]) * 1e3 if scheduled is not None else math.nan
    return rows, duration
