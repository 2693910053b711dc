"""vLLM's engine steps from its `execute_model` Python frames, for traces recorded with stacks (`with_stack=True`)
by a vLLM that writes no step annotations (`execute_context_...`).

Each call of the model runner's execute_model is one engine step: V1 engines (0.6 onward,
`vllm/v1/worker/gpu_model_runner.py(NNN): execute_model`, and the newer `vllm/v1/worker/gpu/model_runner.py`) and
V0's `vllm/worker/model_runner.py(NNN): execute_model` (also its multi-step and encoder-decoder runners). The
worker's own execute_model (`gpu_worker.py`, `worker_base.py`) wraps it and is not a step; a runner frame inside
another (V0's multi-step runner calls the plain one) is the same step. The frame names no tokens: the phase of
each step is decided in analysis (analysis/steps/inferred_steps.py) from the attention ops' shapes or the workload.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

EXECUTE_MODEL = re.compile(r"vllm/(?:v1/)?worker/(?:gpu/)?\w*model_runner\.py\(\d+\): execute_model$")
SOURCE = "vllm_frame"


def frame_step_ranges(frames: pd.DataFrame | None) -> pd.DataFrame:
    """One row per outermost execute_model frame of a model runner: name, start_us, end_us, pid, tid, source,
    phase ("none" until analysis tells it), step (in time order)."""
    cols = ["name", "start_us", "end_us", "pid", "tid", "source", "phase", "step"]
    if frames is None or frames.empty:
        return pd.DataFrame(columns=cols)
    names = frames["name"].astype("string").fillna("")
    keep = names.str.contains(EXECUTE_MODEL, regex=True).to_numpy(dtype=bool)
    f = frames[keep]
    if f.empty:
        return pd.DataFrame(columns=cols)
    start = pd.to_numeric(f["ts"], errors="coerce").to_numpy(dtype=float)
    end = start + pd.to_numeric(f["dur"], errors="coerce").fillna(0).to_numpy(dtype=float)
    df = pd.DataFrame({"name": names[keep].to_numpy(), "start_us": start, "end_us": end,
                       "pid": pd.to_numeric(f["pid"], errors="coerce").to_numpy(),
                       "tid": pd.to_numeric(f["tid"], errors="coerce").to_numpy()})
    df = df[np.isfinite(start) & np.isfinite(end)]
    df = df.sort_values(["start_us", "end_us"], ascending=[True, False], kind="stable").reset_index(drop=True)
    df = df[~_enclosed(df)].reset_index(drop=True)
    df["source"], df["phase"], df["step"] = SOURCE, "none", np.arange(len(df))
    return df


def _enclosed(df: pd.DataFrame) -> np.ndarray:
    """Rows inside an earlier row of the same thread (sorted by start, longest first)."""
    out = np.zeros(len(df), dtype=bool)
    for _, idx in df.groupby(df["tid"].fillna(-1)).indices.items():
        reach = np.maximum.accumulate(df["end_us"].to_numpy()[idx])
        out[idx[1:]] = df["end_us"].to_numpy()[idx[1:]] <= reach[:-1]
    return out
