"""What several commands share: option groups (vLLM engine, work model), list parsers, the -v switch."""
from __future__ import annotations

import click

from tracer.errors import TracerError


def quiet_unless_verbose() -> None:
    ctx = click.get_current_context()
    if not (ctx.find_root().obj or {}).get("verbose"):
        from tracer.quiet import quiet_profilers
        quiet_profilers()


def nonempty_list(value: str, flag: str) -> list[str]:
    items = [x.strip() for x in value.split(",") if x.strip()]
    if not items:
        raise TracerError(f"{flag} {value!r}: expected at least one name")
    return items


def backend_list(value: str) -> list[str]:
    items = nonempty_list(value, "--backend")
    bad = [b for b in items if b not in ("hf", "vllm")]
    if bad:
        raise TracerError(f"--backend {value!r}: expected hf, vllm or hf,vllm (not {', '.join(bad)})")
    return list(dict.fromkeys(items))


FORCE = click.option("--force", is_flag=True, help="replace files in the output place that tracer did not write")
PORT = click.IntRange(0, 65535)


def vllm_options(f):
    f = click.option("--enforce-eager", is_flag=True, help="vLLM: no CUDA graphs, no torch.compile")(f)
    f = click.option("--gpu-memory-utilization", type=float, help="vLLM: share of device memory (CPU: RAM)")(f)
    f = click.option("--max-num-batched-tokens", type=int, help="vLLM: tokens per scheduler step")(f)
    f = click.option("--max-num-seqs", type=int, help="vLLM: sequences per scheduler step")(f)
    f = click.option("--enable-prefix-caching", is_flag=True,
                     help="vLLM: keep prefix caching on (off by default: it skips repeated prefills)")(f)
    f = click.option("--cudagraph-capture-sizes", help="vLLM: token counts to capture CUDA graphs for, e.g. 16,512 "
                     "(default vLLM's; under ncu: the measured step's)")(f)
    f = click.option("--quantization", help="vLLM: quantization method, e.g. fp8 (online, from a bf16 model), "
                     "or the checkpoint's (awq, gptq, compressed-tensors, ...)")(f)
    f = click.option("--kv-cache-dtype", type=click.Choice(["auto", "fp8", "fp8_e4m3", "fp8_e5m2"]),
                     help="vLLM: KV-cache element type (fp8 halves the cache)")(f)
    f = click.option("--moe-routing", is_flag=True,
                     help="vLLM, MoE models: record which experts each token was routed to, so that analysis uses "
                     "the true expert counts (costs a copy kernel per MoE layer; vLLM 0.26 then uses its V1 model "
                     "runner)")(f)
    return f


def vllm_options_of(kw):
    from workloads.vllm_start import VllmOptions
    return VllmOptions(enforce_eager=kw["enforce_eager"], gpu_memory_utilization=kw["gpu_memory_utilization"],
                       max_num_batched_tokens=kw["max_num_batched_tokens"], max_num_seqs=kw["max_num_seqs"],
                       prefix_caching=kw["enable_prefix_caching"],
                       cudagraph_capture_sizes=int_list(kw["cudagraph_capture_sizes"], "--cudagraph-capture-sizes"),
                       quantization=kw["quantization"] or None,
                       kv_cache_dtype=None if kw["kv_cache_dtype"] in (None, "auto") else kw["kv_cache_dtype"],
                       moe_routing=kw["moe_routing"])


def int_list(text: str | None, option: str) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise click.UsageError(f"{option} {text!r}: expected positive integers, comma-separated") from None
    if not values or min(values) < 1:
        raise click.UsageError(f"{option} {text!r}: expected positive integers, comma-separated")
    return values


def work_model_options(f):
    """The model and workload of a trace recorded without our sidecar (vLLM's own profiler output, an nsys export),
    so that kernels without recorded shapes get their work from the model's architecture."""
    f = click.option("--dtype", type=click.Choice(["bfloat16", "float16", "float32"]),
                     help="the model's dtype (default: the sidecar's, else the ops' inputs')")(f)
    f = click.option("--workload", "-w", help="the run's workload, e.g. decode_b16_s128_o64 (HF traces without "
                     "a sidecar; vLLM's step annotations carry their own token counts)")(f)
    f = click.option("--layers", type=int, help="the preset cut to N layers")(f)
    f = click.option("--quantization", help="how the traced model's projections were quantized (fp8, fp8_block, "
                     "int8, awq, gptq, ...); default: the sidecar's, the config's, else what the kernels show")(f)
    f = click.option("--kv-cache-dtype", type=click.Choice(["auto", "fp8", "fp8_e4m3", "fp8_e5m2"]),
                     help="the traced KV cache's element type; default: the sidecar's, else what the kernels show")(f)
    return click.option("--model", help="the traced model: a preset (gpt2, llama-1b, ...), a local checkpoint "
                        "folder or config.json; default: the sidecar's")(f)
