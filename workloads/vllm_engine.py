"""vLLM backend: the offline engine (started by workloads/vllm_start.py) run on the same model, dtype, prompts and
lengths as the HF backend.

The measured run drives `LLMEngine.step()` itself, one scheduler step at a time, so time to first token and the
per-step decode latency are read per step as a client sees them (vLLM's `generate()` reports neither per step).
Prefix caching is off unless asked for: with it on, a repeated prompt's prefill computes only its uncached tail.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

from tracer.errors import TracerError
from workloads.prompts import synthetic_prompt_ids
from workloads.result import RunResult
from workloads.spec import Workload


def sampling_params(output_tokens: int):
    """Greedy, exactly `output_tokens` tokens, an output after every step (LLM.generate() switches the kind it is
    given to final-only in place, so each use gets a fresh object)."""
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind
    return SamplingParams(max_tokens=output_tokens, temperature=0.0, ignore_eos=True, detokenize=False,
                          output_kind=RequestOutputKind.CUMULATIVE)


def run_vllm(llm, config, workload: Workload, warmup: int = 1, profile: bool = False,
             prompts: list[list[int]] | None = None, capture: str | None = None,
             kv_usage_peak: float | None = None) -> RunResult:
    """Warm up, then run the workload's requests through the engine step by step and measure them.
    The warm-ups step the same way and sample the KV-cache use after each step (the measured run does not: vLLM's
    metrics snapshot costs milliseconds of the client's time per step); `kv_usage_peak` carries a peak sampled by
    an earlier call's warm-ups (same workload, same blocks).
    `capture` (in-process engine only): bracket with the CUDA profiler API the whole measured run ("all"), its
    first step ("prefill") or its first step after every request has its first token ("decode")."""
    prompts = prompts or synthetic_prompt_ids(workload.batch, workload.prompt_tokens, config.vocab_size)
    token_prompts = [{"prompt_token_ids": p} for p in prompts]
    engine = llm.llm_engine
    for i in range(warmup):
        warm = _stepped_batch(engine, token_prompts, workload, f"warmup{i}", sample_kv=True)
        kv_usage_peak = max([u for u in warm.kv_usage + [kv_usage_peak] if u is not None], default=None)
    if profile:
        llm.start_profile()
    with _profiler_range(capture == "all"):
        run = _stepped_batch(engine, token_prompts, workload, "measured", capture=capture)
    if profile:
        llm.stop_profile()
    first_token_s = run.first_token_s
    if len(first_token_s) != len(token_prompts):
        raise TracerError(f"vLLM finished {len(first_token_s)} of {len(token_prompts)} requests")
    # Pure decode steps: those after the step that brought the last first token. Their spacing is the per-token
    # latency. (By step index, not by time: the step that brought the last first token ends a few µs after it, and
    # counting it gave a decode step of 0 ms, 1/64 of the mean low at 64 output tokens, 1/8 at 8.)
    all_first = max(first_token_s.values())
    last_first_step = max(run.first_token_step.values())
    decode_ends = run.step_end_s[last_first_step:]
    decode_step_ms = [(b - a) * 1e3 for a, b in zip(decode_ends[:-1], decode_ends[1:])]
    if workload.output_tokens == 1:  # nothing to decode: later steps only retire the finished requests
        decode_step_ms = []
    cached = sum((o.num_cached_tokens or 0) for o in run.outputs.values())
    routing = expert_tokens_by_group(run.outputs, run.first_token_step, workload.prompt_tokens, _experts_of(config))
    return RunResult(
        backend="vllm", batch=len(prompts), prompt_tokens=workload.prompt_tokens,
        output_tokens=workload.output_tokens,
        ttft_ms=1e3 * sum(first_token_s.values()) / len(first_token_s),
        decode_step_ms=decode_step_ms, total_s=run.total_s,
        prefill_tokens_computed=sum(len(p) for p in prompts) - cached,
        kv_cache_bytes=_kv_bytes_allocated(engine, config),
        extra={**_kv_block_facts(engine, config, workload, kv_usage_peak),
               "ttft_ms_max": 1e3 * all_first, "engine_steps": len(run.step_end_s),
               # how many engine steps brought first tokens: 1 when the whole batch was prefilled together
               "first_token_steps": len(set(run.first_token_step.values())),
               "batch_admission": run.admission,
               **({"measured_step": run.captured} if run.captured else {}),
               **({"moe_routing": routing} if routing else {})},
    )


@dataclass
class SteppedBatch:
    """What the client saw of one batch stepped through the engine (times in s from submitting the batch)."""
    first_token_s: dict
    first_token_step: dict     # request id -> the engine step whose outputs brought its first token
    step_end_s: list
    kv_usage: list
    outputs: dict
    total_s: float
    admission: str
    captured: dict | None


def _stepped_batch(engine, token_prompts: list[dict], workload: Workload, tag: str, capture: str | None = None,
                   sample_kv: bool = False) -> SteppedBatch:
    """Submit the batch as one (see `admit_batch`), then step the engine until every request is done, noting when
    each request's first token and each step's outputs reached this client."""
    params = sampling_params(workload.output_tokens)
    first_token_s: dict[str, float] = {}
    first_token_step: dict[str, int] = {}
    step_end_s, kv_usage, outputs = [], [], {}
    captured = None
    t0 = time.perf_counter()
    admission = admit_batch(engine, [(f"{tag}-{i}", p) for i, p in enumerate(token_prompts)], params)
    while engine.has_unfinished_requests():
        this_step = captured is None and (capture == "prefill" and not step_end_s
                                          or capture == "decode" and len(first_token_s) == len(token_prompts))
        with _profiler_range(this_step):
            step_outputs = engine.step()
        if this_step:
            captured = _measured_step(capture, workload, len(first_token_s), _steps_ahead(engine))
        for out in step_outputs:
            outputs[out.request_id] = out
            if out.request_id not in first_token_s and out.outputs and len(out.outputs[0].token_ids) > 0:
                first_token_s[out.request_id] = time.perf_counter() - t0
                first_token_step[out.request_id] = len(step_end_s)
        step_end_s.append(time.perf_counter() - t0)
        if sample_kv:
            kv_usage.append(_kv_cache_usage(engine))
    return SteppedBatch(first_token_s, first_token_step, step_end_s, kv_usage, outputs,
                        time.perf_counter() - t0, admission, captured)


def admit_batch(engine, requests: list[tuple[str, dict]], params) -> str:
    """Add the requests so that the engine's first step can schedule all of them, as an offline batch means.
    With the engine core in its own process, it starts stepping as soon as the first request arrives, and a batch
    added one request at a time is prefilled over two steps or more, differently from run to run (seen on the
    H200: 3 + 13, 7 + 9 or all 16, a TTFT of 13 to 26 ms). So the core's scheduler is paused ("keep") while
    the requests are added and resumed after. Returns how the batch was admitted: "together" (paused, or an
    in-process engine, which only steps when asked) or "as added" (a vLLM without pause_scheduler)."""
    core = engine.engine_core
    paused = False
    if hasattr(core, "call_utility"):   # the engine core runs in another process
        try:
            core.call_utility("pause_scheduler", "keep", False)
            paused = True
        except Exception:
            paused = False
    try:
        for request_id, prompt in requests:
            engine.add_request(request_id, prompt, params)
    finally:
        if paused:
            core.call_utility("resume_scheduler")
    return "together" if paused or not hasattr(core, "call_utility") else "as added"


def _experts_of(config) -> int | None:
    for key in ("num_local_experts", "num_experts", "n_routed_experts"):
        if getattr(config, key, None):
            return int(getattr(config, key))
    return None


def expert_tokens_by_group(outputs: dict, first_token_step: dict, prompt_tokens: int,
                          experts: int | None) -> dict | None:
    """The sidecar's `figures.moe_routing` from vLLM's returned routing (None when the engine returned none): tokens
    routed to each expert of each layer. Requests are grouped by the step that brought their first token (the
    engine may prefill a batch over two steps, after which the groups decode one position apart); for each group,
    its prompts' positions together (`prefill`, layers x experts) and each generated position a decode step computes
    (`decode`, keyed by the 0-based position: a step whose sequences hold c tokens computes position c - 1)."""
    import numpy as np
    routed = {rid: np.asarray(o.outputs[0].routed_experts) for rid, o in outputs.items()
              if o.outputs and getattr(o.outputs[0], "routed_experts", None) is not None}
    if not routed:
        return None
    arrays = list(routed.values())   # each [positions, layers, top_k]
    experts = experts or int(max(a.max() for a in arrays)) + 1
    layers, top_k = arrays[0].shape[1], arrays[0].shape[2]

    def counts(ids: np.ndarray) -> list[list[int]]:   # ids: [tokens, layers, top_k]
        per_layer = ids.transpose(1, 0, 2).reshape(layers, -1).astype(np.int64)
        offsets = per_layer + np.arange(layers)[:, None] * experts
        return np.bincount(offsets.ravel(), minlength=layers * experts).reshape(layers, experts).tolist()

    groups = []
    for step in sorted({first_token_step.get(rid, -1) for rid in routed}):
        members = [a for rid, a in routed.items() if first_token_step.get(rid, -1) == step]
        longest = max(a.shape[0] for a in members)
        groups.append({"requests": len(members),
                       "prefill": counts(np.concatenate([a[:prompt_tokens] for a in members])),
                       "decode": {str(p): counts(np.concatenate([a[p:p + 1] for a in members if a.shape[0] > p]))
                                  for p in range(prompt_tokens, longest)}})
    return {"experts": experts, "top_k": top_k, "layers": layers, "prompt_tokens": prompt_tokens, "groups": groups}


def _measured_step(capture: str, workload: Workload, decoding: int, ahead: int) -> dict:
    """The token composition of the one step a profiler captured (every prompt is prefilled in the first step).
    The decode step is the first one launched after every request has its first token: under async scheduling
    (`ahead` = 1) the engine had already launched the step of position prompt_tokens by then, so the captured step
    computes position prompt_tokens + 1 (seen on the H200: its MoE routing is that position's)."""
    if capture == "prefill":
        return {"phase": "prefill", "tokens": workload.batch * workload.prompt_tokens, "seqs": workload.batch,
                "context_after": workload.prompt_tokens}
    return {"phase": "decode", "tokens": decoding, "seqs": decoding,
            "context_after": workload.prompt_tokens + 1 + ahead, "async_scheduling": bool(ahead)}


def _steps_ahead(engine) -> int:
    """1 when the engine schedules a step before the previous one's tokens are back (async scheduling), else 0."""
    try:
        return 1 if engine.vllm_config.scheduler_config.async_scheduling else 0
    except AttributeError:
        return 0


def _profiler_range(on: bool):
    """cudaProfilerStart/Stop around a block, synchronised so its kernels finish inside it."""
    import contextlib
    if not on:
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def bracket():
        import torch
        torch.cuda.synchronize()
        torch.cuda.cudart().cudaProfilerStart()
        try:
            yield
        finally:
            torch.cuda.synchronize()
            torch.cuda.cudart().cudaProfilerStop()
    return bracket()


def _cache_config(engine):
    return engine.vllm_config.cache_config


def _kv_cache_usage(engine) -> float | None:
    """The scheduler's KV-cache usage (0..1) now, from the engine's metrics when stats are on."""
    try:
        for m in engine.get_metrics():
            if m.name == "vllm:kv_cache_usage_perc":
                return float(m.value)
    except Exception:
        return None
    return None


def _kv_bytes_per_block(engine, config) -> int | None:
    cc = _cache_config(engine)
    mc = engine.vllm_config.model_config
    try:
        layers = mc.get_num_layers(engine.vllm_config.parallel_config)
        kv_heads = mc.get_num_kv_heads(engine.vllm_config.parallel_config)
        head = mc.get_head_size()
        import torch
        elem = torch.tensor([], dtype=mc.dtype).element_size()
        if str(getattr(cc, "cache_dtype", "auto")).startswith("fp8"):
            elem = 1
    except Exception:
        return None
    return 2 * layers * cc.block_size * kv_heads * head * elem


def _kv_bytes_allocated(engine, config) -> int | None:
    per_block = _kv_bytes_per_block(engine, config)
    blocks = _cache_config(engine).num_gpu_blocks
    return per_block * blocks if per_block and blocks else None


def _kv_block_facts(engine, config, workload: Workload, peak_usage: float | None) -> dict:
    cc = _cache_config(engine)
    needed = workload.batch * math.ceil((workload.prompt_tokens + workload.output_tokens) / cc.block_size)
    facts = {"kv_block_size_tokens": cc.block_size, "kv_blocks_allocated": cc.num_gpu_blocks,
             "kv_blocks_needed": needed, "kv_bytes_per_block": _kv_bytes_per_block(engine, config)}
    if peak_usage is not None and cc.num_gpu_blocks:
        facts["kv_cache_usage_peak"] = peak_usage     # 0..1 of the blocks, sampled after each warm-up step
        facts["kv_blocks_used_peak"] = round(peak_usage * cc.num_gpu_blocks)
    return facts


def engine_profiler_traces(profile_dir: str | Path, since: float = 0.0) -> list[Path]:
    """The torch.profiler traces vLLM's engine wrote into `profile_dir` (modified at `since` or later), oldest
    first. The API server's own CPU-only trace (`<host>_<pid>.async_llm.*`) is never one of them."""
    traces = [p for p in Path(profile_dir).rglob("*.pt.trace.json*")
              if ".async_llm." not in p.name and p.stat().st_mtime >= since]
    return sorted(traces, key=lambda p: p.stat().st_mtime)


def newest_profiler_trace(profile_dir: str | Path) -> Path:
    traces = engine_profiler_traces(profile_dir)
    if not traces:
        raise TracerError(f"vLLM's profiler wrote no trace into {profile_dir}")
    return traces[-1]
