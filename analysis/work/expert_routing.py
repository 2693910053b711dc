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


def step_expert_tokens(steps: pd.DataFrame, routing: dict | None) -> list[np.ndarray | None]:
    """Per step (in `steps`' order, which is the run's): a layers x experts array of routed tokens, or None."""
    if not routing:
        return [None] * len(steps)
    prompt = float(routing["prompt_tokens"])
    groups = routing["groups"]
    # groups whose prompts a step before this one computed: all of them where no step prefills (one measured decode
    # step, a window that began after the prefills)
    any_prefill = any(float(q) == prompt and float(c) == prompt for shapes in steps["seq_shapes"] for q, c in shapes)
    prefilled = 0 if any_prefill else len(groups)
    position = [] if any_prefill else [-1] * len(groups)   # each prefilled group's next decode position (-1: unseen)
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
        reached = {}   # group -> the position this step computed for it
        for c, n in decoding:
            pos = int(c) - 1
            # the prefilled groups whose next position this is (not yet seen: any that reached it)
            at = [j for j in range(prefilled) if position[j] in (pos, -1) and str(pos) in groups[j]["decode"]]
            if sum(int(groups[j]["requests"]) for j in at) != n:
                matched = False
                break
            counts += [np.asarray(groups[j]["decode"][str(pos)], dtype=float) for j in at]
            reached.update({j: pos for j in at})
        if sum(parts.values()) != n_prefill + sum(n for _, n in decoding):
            matched = False   # a part that is neither: a chunk of a prompt, another length
        if matched and counts:
            total = np.sum(counts, axis=0)
        out.append(total)
        for j, pos in reached.items():
            position[j] = pos + 1
        if n_prefill and matched:
            position += [int(prompt)] * len(taken)
            prefilled += len(taken)
        elif n_prefill:
            return out + [None] * (len(steps) - len(out))   # lost track of the groups: no more steps are matched
    return out


def layer_expert_tokens(step: pd.Series, layer: int) -> np.ndarray | None:
    """The experts' routed tokens in one layer of a step, where recorded."""
    counts = step.get("expert_tokens")   # absent, None or a layers x experts array
    if not isinstance(counts, np.ndarray) or not 0 <= layer < len(counts):
        return None
    return counts[layer]
