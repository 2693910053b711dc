"""Which experts each step's tokens were routed to, where the run recorded it (`tracer record --moe-routing`: the
sidecar's `figures.moe_routing`, from vLLM's returned routing), as tokens per expert of each layer for each step.

The routing is kept per group of requests (those whose first token came in the same engine step: vLLM may prefill
a batch over two steps, after which the groups decode one position apart): each group's prompts together, and each
generated position. A step is matched part by part: its whole-prompt prefills take the next groups not yet
prefilled, in order, and the sequences decoding at context c take the routing of position c - 1 of the prefilled
groups that reached it, their sizes summing to the sequences'. A step with any other part (a chunk of a prompt,
other lengths) gets none, and its experts are modeled under uniform routing.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd


def routing_groups(routing: dict) -> list[dict]:
    """The recorded groups ({requests, prefill, decode}); a routing recorded before groups existed is one group."""
    if "groups" in routing:
        return routing["groups"]
    first = np.asarray(routing["prefill"])[0]
    requests = int(round(first.sum() / (int(routing["top_k"]) * int(routing["prompt_tokens"]))))
    return [{"requests": requests, "prefill": routing["prefill"], "decode": routing.get("decode") or {}}]


def step_expert_tokens(steps: pd.DataFrame, routing: dict | None) -> list[np.ndarray | None]:
    """Per step (in `steps`' order, which is the run's): a layers x experts array of routed tokens, or None."""
    if not routing:
        return [None] * len(steps)
    prompt = float(routing["prompt_tokens"])
    groups = routing_groups(routing)
    # groups whose prompts a step before this one computed: all of them where no step prefills (one measured decode
    # step, a window that began after the prefills)
    any_prefill = any(float(q) == prompt and float(c) == prompt for shapes in steps["seq_shapes"] for q, c in shapes)
    prefilled = 0 if any_prefill else len(groups)
    position = [] if any_prefill else [-1] * len(groups)   # each prefilled group's next decode position
    out: list[np.ndarray | None] = []
    for shapes in steps["seq_shapes"]:
        parts = Counter((float(q), float(c)) for q, c in shapes)
        total, matched = None, True
        n_prefill = sum(n for (q, c), n in parts.items() if q == prompt and c == prompt)
        taken = []
        if n_prefill:   # the next groups in order, their sizes summing to the step's prefills
            size, j = 0, prefilled
            while j < len(groups) and size < n_prefill:
                size += int(groups[j]["requests"])
                j += 1
            matched = size == n_prefill
            taken = groups[prefilled:j]
        decoding = [(c, n) for (q, c), n in parts.items() if q == 1.0 and not (q == prompt and c == prompt)]
        counts = [np.asarray(g["prefill"], dtype=float) for g in taken]
        advanced = []
        for c, n in decoding:
            pos = int(c) - 1
            # the prefilled groups whose next position this is (where the prefills were not seen: any that has it)
            at = [j for j in range(prefilled) if (position[j] == pos if any_prefill else str(pos) in groups[j]["decode"])
                  and str(pos) in groups[j]["decode"]]
            if sum(int(groups[j]["requests"]) for j in at) != n:
                matched = False
                break
            counts += [np.asarray(groups[j]["decode"][str(pos)], dtype=float) for j in at]
            advanced += at
        if sum(parts.values()) != n_prefill + sum(n for _, n in decoding):
            matched = False   # a part that is neither: a chunk of a prompt, another length
        if matched and counts:
            total = np.sum(counts, axis=0)
        out.append(total)
        for j in advanced:
            position[j] += 1
        if n_prefill and matched:
            position += [int(prompt)] * len(taken)
            prefilled += len(taken)
        elif n_prefill:
            return out + [None] * (len(steps) - len(out))   # lost track of the groups: no more steps are matched
    return out


def layer_expert_tokens(step: pd.Series, layer: int) -> np.ndarray | None:
    """The experts' routed tokens in one layer of a step, where recorded."""
    counts = step.get("expert_tokens") if hasattr(step, "get") else None
    if counts is None or not isinstance(counts, np.ndarray) or not 0 <= layer < len(counts):
        return None
    return counts[layer]
