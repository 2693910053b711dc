"""What each step of a run computed: new tokens, sequences, and the attention context each sequence saw.

vLLM names every engine step after its token composition (`execute_context_<n>(<prefill tokens>)_generation_<m>
(<decode tokens>)`); the context of each running sequence follows from the steps before it: a prefill of n
sequences and p tokens starts n sequences of p/n tokens (chunked prefill of one prompt over several steps is not
followed: each chunk counts as a new prompt), each decode step adds one token to the sequences still running, and
sequences that finished are the oldest (equal output lengths). Our HF runs mark one prefill and one range per decode
step; their composition follows from the workload (batch, prompt tokens): decode step j attends over prompt + j + 1
positions.

Steps are keyed as the kernels table keys them: `step` (HF's prefill has none and is keyed -1).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from tracer.schema import VLLM_STEP, str_values

COLUMNS = ("tokens", "seqs", "attn_pairs", "kv_read_tokens", "kv_tokens_after", "max_context", "seq_shapes")
PREFILL_KEY = -1


def step_keys(kernels: pd.DataFrame) -> np.ndarray:
    """Each kernel's step key (float, NaN outside steps): its `step`, or PREFILL_KEY in an HF prefill."""
    step = kernels["step"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    prefill = str_values(kernels["phase"]) == "prefill"
    return np.where(np.isnan(step) & prefill, float(PREFILL_KEY), step)


def _row(q_lens: list[float], ctx_after: list[float], block_tokens: int | None) -> dict:
    """A context of NaN (a sequence whose prefill came before the trace began, as in a server's profiled window)
    makes the step's attention figures NaN: its attention kernels stay unmodeled rather than guessed."""
    pairs = sum(q * (c - q) + q * (q + 1) / 2 for q, c in zip(q_lens, ctx_after))
    rounded = [math.ceil(c / block_tokens) * block_tokens if block_tokens and not math.isnan(c) else c
               for c in ctx_after]
    return {"tokens": float(sum(q_lens)), "seqs": float(len(q_lens)), "attn_pairs": float(pairs),
            "kv_read_tokens": float(sum(rounded)), "kv_tokens_after": float(sum(ctx_after)),
            "max_context": float(np.max(ctx_after)) if ctx_after else 0.0,   # NaN when any is unknown
            "seq_shapes": list(zip(q_lens, ctx_after))}   # (new tokens, keys after) per sequence


def vllm_step_tokens(ranges: pd.DataFrame, block_tokens: int = 16,
                     prompt_tokens_hint: int | None = None) -> pd.DataFrame:
    steps = ranges[(ranges["source"] == "vllm_step") | _has_composition(ranges)].sort_values("start_us", kind="stable")
    contexts: list[float] = []   # running sequences, oldest first
    rows = {}
    for step, comp in zip(steps["step"], _compositions(steps)):
        if comp is None or pd.isna(step):
            continue
        n_prefill, prefill_tokens, n_decode, decode_tokens = comp
        q_lens, ctx_after = [], []
        if n_decode:
            running = contexts[-n_decode:]
            missing = n_decode - len(running)   # the trace began after these sequences' prefill
            start = float(prompt_tokens_hint) if prompt_tokens_hint else float("nan")
            running = [start] * missing + running
            per_seq = decode_tokens / n_decode
            ctx_after = [c + per_seq for c in running]
            q_lens = [per_seq] * n_decode
        if n_prefill:
            per_prompt = prefill_tokens / n_prefill
            q_lens += [per_prompt] * n_prefill
            ctx_after += [per_prompt] * n_prefill
        rows[int(step)] = _row(q_lens, ctx_after, block_tokens)
        contexts = ctx_after
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(COLUMNS))


def _has_composition(ranges: pd.DataFrame) -> pd.Series:
    """Steps found without annotations whose composition analysis/steps/inferred_steps.py told."""
    seqs = ranges.get("prefill_seqs")
    return seqs.notna() if seqs is not None else pd.Series(False, index=ranges.index)


def _compositions(steps: pd.DataFrame) -> list:
    """(prefill seqs, prefill tokens, decode seqs, decode tokens) of each step: from a vLLM step annotation's
    name, else from the columns analysis/steps/inferred_steps.py filled."""
    out = []
    for row in steps.itertuples():
        m = VLLM_STEP.match(str(row.name))
        if m is not None:
            out.append(tuple(int(g) for g in m.groups()))
        elif pd.notna(getattr(row, "prefill_seqs", pd.NA)):
            out.append((int(row.prefill_seqs), int(row.prefill_tokens), int(row.decode_seqs), int(row.decode_tokens)))
        else:
            out.append(None)
    return out


def hf_step_tokens(ranges: pd.DataFrame, batch: int, prompt_tokens: int) -> pd.DataFrame:
    """Our HF runs: one prefill of batch x prompt tokens, then decode steps of one token per sequence."""
    rows = {PREFILL_KEY: _row([prompt_tokens] * batch, [prompt_tokens] * batch, None)}
    steps = ranges.loc[(ranges["phase"] == "decode") & ranges["step"].notna(), "step"]
    for j in sorted({int(s) for s in steps}):
        rows[j] = _row([1.0] * batch, [float(prompt_tokens + j + 1)] * batch, None)
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(COLUMNS))


def measured_step_tokens(step: dict, block_tokens: int | None) -> pd.DataFrame:
    """The one step a profiler captured (ncu), keyed 0: uniform sequences of a known context."""
    seqs, tokens, ctx = int(step["seqs"]), float(step["tokens"]), float(step["context_after"])
    return pd.DataFrame.from_dict({0: _row([tokens / seqs] * seqs, [ctx] * seqs, block_tokens)}, orient="index",
                                  columns=list(COLUMNS))


def step_tokens(ranges: pd.DataFrame, workload: dict | None, block_tokens: int | None,
                measured_step: dict | None = None) -> pd.DataFrame | None:
    """Per step key: tokens, seqs, attn_pairs (query-key pairs attended), kv_read_tokens (context read, in whole
    KV blocks where the cache is paged), kv_tokens_after, max_context, seq_shapes ((new tokens, keys) per
    sequence); None when the composition is unknown."""
    if measured_step:
        return measured_step_tokens(measured_step, block_tokens)
    if (ranges["source"] == "vllm_step").any() or _has_composition(ranges).any():
        hint = (workload or {}).get("prompt_tokens")
        return vllm_step_tokens(ranges, block_tokens or 16, hint)
    if workload and workload.get("batch") and workload.get("prompt_tokens"):
        return hf_step_tokens(ranges, int(workload["batch"]), int(workload["prompt_tokens"]))
    return None
