"""Which of a kernel's bytes reach DRAM, with the L2 between the SMs and DRAM.

Every byte a kernel reads or writes passes through L2, so `l2_bytes` is the analytic count (each input read once,
each output written once). DRAM sees less: on the H100 fixtures Nsight Compute measured copies and elementwise
kernels at 1.5-2x under that count. Two effects, both modeled:
- outputs: L2 is write-back. An output that fits in L2 is still there, dirty, when the kernel ends; it reaches DRAM
  later, if ever (the caching allocator hands the same blocks to the next kernels). DRAM writes = the part that
  does not fit.
- inputs: an input written by the kernel just before on the same stream is still resident when that output fit in
  L2 (a transformer layer is a chain: norm, projection, activation, projection, residual add), so that many of its
  reads come from L2. Under Nsight Compute's default `--cache-control all` the L2 is flushed before every kernel
  and no input is resident (`cold_l2`).
- state that outlives the step (the KV cache a kernel writes) is written back while later kernels run: in a run it
  is charged to the kernel that wrote it (`persistent`), which reads the cache of the last step from DRAM. Under ncu each kernel is measured alone and its dirty lines
  leave L2 after the measurement, so there it is not.
A kernel's data is taken to keep L2_RESIDENT_SHARE of the L2: the rest holds weights streaming through, and
Hopper's L2 is two partitions.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from tracer.schema import as_str

L2_RESIDENT_SHARE = 0.5


def l2_capacity_bytes(peaks: dict | None) -> float | None:
    if not peaks:
        return None
    if peaks.get("l2_bytes"):
        return float(peaks["l2_bytes"])
    return float(peaks["l2_mb"]) * 2**20 if peaks.get("l2_mb") else None


def dram_bytes(kernels: pd.DataFrame, l2_bytes: np.ndarray, written_bytes: np.ndarray, l2_capacity: float,
               cold_l2: bool, persistent: np.ndarray | None = None) -> np.ndarray:
    """DRAM bytes of each kernel: its L2 traffic less the writes that stay in L2 and, unless `cold_l2`, less the
    reads of its stream predecessor's output where that output fit. NaN stays NaN (unmodeled)."""
    keep = L2_RESIDENT_SHARE * l2_capacity
    written = np.nan_to_num(written_bytes, nan=0.0)
    read = np.maximum(l2_bytes - written, 0.0)
    dram_write = np.maximum(written - keep, 0.0)
    if persistent is not None and not cold_l2:
        dram_write = np.where(persistent, written, dram_write)
    resident_read = np.zeros(len(kernels))
    if not cold_l2 and len(kernels):
        order = pd.DataFrame({"device": kernels["device"].fillna(-1).to_numpy(),
                              "stream": kernels["stream"].fillna(-1).to_numpy(),
                              "start": kernels["start_us"].to_numpy()}).sort_values(["device", "stream", "start"],
                                                                                   kind="stable")
        idx = order.index.to_numpy()
        same_stream = np.r_[False, (order["device"].to_numpy()[1:] == order["device"].to_numpy()[:-1])
                            & (order["stream"].to_numpy()[1:] == order["stream"].to_numpy()[:-1])]
        prev_written = np.r_[0.0, written[idx][:-1]]
        fits = same_stream & (prev_written <= keep)
        resident_read[idx] = np.where(fits, np.minimum(read[idx], prev_written), 0.0)
        if persistent is not None:   # a KV-cache write reads the cache of the last step, not its predecessor's output
            resident_read[persistent] = 0.0
    out = read - resident_read + dram_write
    return np.where(np.isnan(l2_bytes), np.nan, out)


def writes_persistent_state(kernels: pd.DataFrame) -> np.ndarray:
    """Kernels whose output is the KV cache (HF's torch.cat of the cache, vLLM's reshape_and_cache)."""
    if "model_op" not in kernels:
        return np.zeros(len(kernels), dtype=bool)
    return ((as_str(kernels["model_op"]) == "attention") & (as_str(kernels["kernel_class"]) == "copy")).to_numpy()
