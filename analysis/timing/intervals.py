"""Interval arithmetic on the trace's timeline: unions, first-cover attribution, measure inside windows.

All functions take and return numpy arrays of starts and ends (microseconds); "segments" are sorted and disjoint.
"""
from __future__ import annotations

import numpy as np


def union(starts, ends) -> tuple[np.ndarray, np.ndarray]:
    """The union of [start, end) intervals as sorted, disjoint segments."""
    s, e = np.asarray(starts, dtype=float), np.asarray(ends, dtype=float)
    keep = e > s
    s, e = s[keep], e[keep]
    if len(s) == 0:
        return s, e
    order = np.argsort(s, kind="stable")
    s, e = s[order], e[order]
    run_end = np.maximum.accumulate(e)
    new_block = np.r_[True, s[1:] > run_end[:-1]]
    last_of_block = np.r_[new_block[1:], True]
    return s[new_block], run_end[last_of_block]


def first_cover(starts, ends) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each interval's part not covered by intervals that started before it: (order, seg_start, seg_end) with
    `order` the input rows sorted by start. The parts are disjoint and their union is the intervals' union, so a
    time the GPU ran two kernels at once is counted once, for the kernel that was running first."""
    s, e = np.asarray(starts, dtype=float), np.asarray(ends, dtype=float)
    order = np.argsort(s, kind="stable")
    s, e = s[order], e[order]
    prev_max = np.r_[-np.inf, np.maximum.accumulate(e)[:-1]] if len(e) else e
    seg_s = np.maximum(s, prev_max)
    seg_e = np.maximum(e, seg_s)
    return order, seg_s, seg_e


def covered_before(seg_s: np.ndarray, seg_e: np.ndarray, t) -> np.ndarray:
    """Measure of the (sorted, disjoint) segments before each time t."""
    t = np.asarray(t, dtype=float)
    if len(seg_s) == 0:
        return np.zeros_like(t)
    cum = np.r_[0.0, np.cumsum(seg_e - seg_s)]
    i = np.searchsorted(seg_s, t, side="right")
    over = np.where(i > 0, np.maximum(0.0, seg_e[np.maximum(i - 1, 0)] - t), 0.0)
    return cum[i] - over


def covered_between(seg_s: np.ndarray, seg_e: np.ndarray, starts, ends) -> np.ndarray:
    """Measure of the (sorted, disjoint) segments inside each [start, end) window: both ends in one covered_before
    call, so the segments' running length is summed once."""
    starts = np.asarray(starts, dtype=float)
    both = covered_before(seg_s, seg_e, np.r_[np.asarray(ends, dtype=float), starts])
    return both[:len(starts)] - both[len(starts):]


def measure_within(seg_s, seg_e, win_s, win_e) -> float:
    """Total length of the segments inside the (sorted, disjoint) windows."""
    if len(win_s) == 0:
        return 0.0
    return float(covered_between(seg_s, seg_e, win_s, win_e).sum())


def overlapping(starts, ends, win_s, win_e) -> np.ndarray:
    """Whether each [start, end) interval overlaps one of the (sorted, disjoint) windows."""
    if len(win_s) == 0:
        return np.zeros(len(starts), dtype=bool)
    i = np.searchsorted(win_e, starts, side="right")   # the first window that ends after the interval starts
    return (i < len(win_e)) & (np.asarray(win_s)[np.minimum(i, len(win_s) - 1)] < ends)


def intersect(a_s, a_e, b_s, b_e) -> tuple[np.ndarray, np.ndarray]:
    """Intersection of two sets of sorted, disjoint segments."""
    if len(a_s) == 0 or len(b_s) == 0:
        return np.zeros(0), np.zeros(0)
    # candidate pairs: every a against the b segments that can overlap it
    lo = np.searchsorted(b_e, a_s, side="right")
    hi = np.searchsorted(b_s, a_e, side="left")
    counts = np.maximum(hi - lo, 0)
    ai = np.repeat(np.arange(len(a_s)), counts)
    bi = np.concatenate([np.arange(l, h) for l, h in zip(lo, hi) if h > l]) if counts.sum() else np.zeros(0, int)
    s = np.maximum(a_s[ai], b_s[bi])
    e = np.minimum(a_e[ai], b_e[bi])
    keep = e > s
    return s[keep], e[keep]
