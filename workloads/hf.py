"""Hugging Face transformers backend: eager PyTorch, KV cache, greedy, one forward pass per phase step.

The loop is written out (not `generate()`) so that the phase ranges enclose exactly one prefill forward pass and
one forward pass per decode step, and so each step is timed with the device synchronised at its end.
"""
from __future__ import annotations

import inspect
import time

from workloads.phases import DECODE, DECODE_STEP, PREFILL, phase
from workloads.prompts import synthetic_prompt_ids
from workloads.result import RunResult
from workloads.spec import Workload


def run_hf(lm, config, workload: Workload, device: str, warmup: int = 1, profiler=None,
           clock: list | None = None, prompts: list[list[int]] | None = None) -> RunResult:
    """Warm up `warmup` times, then run `workload` once inside `profiler` (a context manager such as a
    torch.profiler.profile, entered for the measured run alone) and return the measured figures."""
    import contextlib

    import torch

    prompts = prompts or synthetic_prompt_ids(workload.batch, workload.prompt_tokens, config.vocab_size)
    ids = torch.tensor(prompts, device=device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    keep_last_logits = _last_logits_kwarg(lm)
    for _ in range(warmup):
        _generate(lm, ids, workload.decode_steps, sync, keep_last_logits, None)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    with profiler if profiler is not None else contextlib.nullcontext():
        ttft_ms, step_ms, total_s, cache = _generate(lm, ids, workload.decode_steps, sync, keep_last_logits, clock)
    peak_alloc = torch.cuda.max_memory_allocated() if device.startswith("cuda") else None
    peak_reserved = torch.cuda.max_memory_reserved() if device.startswith("cuda") else None
    return RunResult(
        backend="hf", batch=workload.batch, prompt_tokens=workload.prompt_tokens,
        output_tokens=workload.output_tokens, ttft_ms=ttft_ms, decode_step_ms=step_ms, total_s=total_s,
        prefill_tokens_computed=workload.batch * workload.prompt_tokens,
        peak_allocated_bytes=peak_alloc, peak_reserved_bytes=peak_reserved,
        kv_cache_bytes=kv_cache_bytes(cache),
        extra={"attn_implementation": getattr(config, "_attn_implementation", None)},
    )


def _generate(lm, ids, decode_steps: int, sync, keep_last_logits: dict, clock):
    import torch

    with torch.inference_mode():
        sync()
        t0 = time.perf_counter()
        with phase(PREFILL, clock):
            out = lm(input_ids=ids, use_cache=True, **keep_last_logits)
            next_ids = out.logits[:, -1, :].argmax(-1, keepdim=True)
            sync()
        ttft_ms = (time.perf_counter() - t0) * 1e3
        cache = out.past_key_values
        step_ms = []
        with phase(DECODE, clock):
            for _ in range(decode_steps):
                s0 = time.perf_counter()
                with phase(DECODE_STEP, clock):
                    out = lm(input_ids=next_ids, past_key_values=cache, use_cache=True)
                    next_ids = out.logits[:, -1, :].argmax(-1, keepdim=True)
                    cache = out.past_key_values
                    sync()
                step_ms.append((time.perf_counter() - s0) * 1e3)
        total_s = time.perf_counter() - t0
    return ttft_ms, step_ms, total_s, cache


def _last_logits_kwarg(lm) -> dict:
    """Ask for the last position's logits only, as generate() and vLLM do, where the model supports it."""
    params = inspect.signature(lm.forward).parameters
    for name in ("logits_to_keep", "num_logits_to_keep"):
        if name in params:
            return {name: 1}
    return {}


def kv_cache_bytes(cache) -> int | None:
    """Bytes held by the KV-cache tensors (DynamicCache of any transformers version, or legacy tuples)."""
    import torch

    seen = set()
    total = 0

    def visit(obj, depth=0):
        nonlocal total
        if depth > 4 or obj is None:
            return
        if isinstance(obj, torch.Tensor):
            if id(obj) not in seen:
                seen.add(id(obj))
                total += obj.numel() * obj.element_size()
        elif isinstance(obj, (list, tuple)):
            for x in obj:
                visit(x, depth + 1)
        elif hasattr(obj, "layers"):  # transformers >= 4.56: Cache.layers[i].keys / .values
            for layer in obj.layers:
                visit(getattr(layer, "keys", None), depth + 1)
                visit(getattr(layer, "values", None), depth + 1)
        elif hasattr(obj, "key_cache"):
            visit(obj.key_cache, depth + 1)
            visit(obj.value_cache, depth + 1)

    visit(cache)
    return total or None
