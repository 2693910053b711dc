"""HF timed the way HF users run it: `model.generate()` on the workload's prompts with an attention mask, greedy,
a fixed output length (min_new_tokens = max_new_tokens, so EOS never ends a sequence early), beside the
phase-annotated loop of workloads/hf.py.

generate() reports no per-token times, so each repeat times two calls: one token (TTFT: the prefill and
generate's own set-up) and the whole output; decode ms/token is (whole - one token) / (output tokens - 1)."""
from __future__ import annotations

import time

from tracer.errors import TracerError
from workloads.prompts import synthetic_prompt_ids
from workloads.repeats import repeated_figures
from workloads.spec import Workload

GENERATE_KEYS = ("ttft_ms", "decode_ms_per_token", "output_tokens_per_s", "total_s")
PREFIX = "hf_generate_"


def generation_config(config, new_tokens: int):
    from transformers import GenerationConfig
    eos = getattr(config, "eos_token_id", None)
    pad = getattr(config, "pad_token_id", None)
    pad = pad if pad is not None else (eos[0] if isinstance(eos, list) else eos) if eos is not None else 0
    return GenerationConfig(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, num_beams=1,
                            use_cache=True, eos_token_id=eos, pad_token_id=pad)


def _timed_generate(lm, ids, mask, gen_config, sync) -> float:
    import torch
    with torch.inference_mode():
        sync()
        t0 = time.perf_counter()
        out = lm.generate(input_ids=ids, attention_mask=mask, generation_config=gen_config)
        sync()
        elapsed = time.perf_counter() - t0
    if out.shape[1] != ids.shape[1] + gen_config.max_new_tokens:
        raise TracerError(f"generate() returned {out.shape[1] - ids.shape[1]} new tokens, not "
                          f"{gen_config.max_new_tokens}")
    return elapsed


def generate_runs(lm, config, workload: Workload, device: str, repeats: int, warmup: int = 1,
                  prompts: list[list[int]] | None = None) -> list[dict]:
    """Each repeat's figures (ttft_ms, decode_ms_per_token, output_tokens_per_s, total_s) after `warmup`
    uncounted calls of each length."""
    import torch

    prompts = prompts or synthetic_prompt_ids(workload.batch, workload.prompt_tokens, config.vocab_size)
    ids = torch.tensor(prompts, device=device)
    mask = torch.ones_like(ids)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    n = workload.output_tokens
    one, whole = generation_config(config, 1), generation_config(config, n)
    for _ in range(warmup):
        _timed_generate(lm, ids, mask, one, sync)
        _timed_generate(lm, ids, mask, whole, sync)
    runs = []
    for _ in range(repeats):
        first_s = _timed_generate(lm, ids, mask, one, sync)
        total_s = _timed_generate(lm, ids, mask, whole, sync) if n > 1 else first_s
        runs.append({"ttft_ms": first_s * 1e3,
                     "decode_ms_per_token": (total_s - first_s) * 1e3 / (n - 1) if n > 1 else None,
                     "output_tokens_per_s": workload.batch * n / total_s, "total_s": total_s})
    return runs


def generate_figures(runs: list[dict]) -> dict:
    """The repeats as sidecar fields: hf_generate_<figure> (median), hf_generate_<figure>_spread_pct,
    hf_generate_runs."""
    rep = repeated_figures(runs, GENERATE_KEYS)
    out = {f"{PREFIX}runs": rep["runs"]}
    for key in GENERATE_KEYS:
        out[PREFIX + key] = rep[key]
        out[f"{PREFIX}{key}_spread_pct"] = rep[f"{key}_spread_pct"]
    out[f"{PREFIX}per_run"] = rep["per_run"]
    return out
