"""What we add to the Chrome traces we write so that Perfetto draws them right and tells more at a glance.

- a "tracer phases" track with our prefill/decode/step ranges (HF) or vLLM's scheduler steps, named by kind;
- counter tracks of GPU utilisation and memory sampled by NVML during the run;
- overlap lanes: on Hopper, kernels launched with programmatic dependent launch (cuBLAS split-K reduce, FA3's
  combine) start before their predecessor on the same stream ends. Perfetto's JSON importer needs the slices of a
  track to nest, so such a kernel is moved to a lane track beside its stream ("stream 7 · overlapping launches").
  Only `tid` changes: the stream stays in the kernel's args, which is what parsers read, and durations are kept.
"""
from __future__ import annotations

from collections import defaultdict

from tracer.perfetto import slice_ns
from tracer.schema import PHASE_OF_RANGE, VLLM_STEP

PHASE_TRACK_TID = 999_999_999
_LANE_TID_BASE = 1_000_000_000   # lane tids stay integers (Perfetto coerces tids to uint32)
_MAX_LANES = 15


def perfetto_ready(events: list, nvml_samples=(), phase_clock=(), base_time_ns=None, unix_offset_ns=None) -> list:
    """The trace's events with the phase track, the NVML counter tracks and overlap lanes added."""
    events = move_overlaps_to_lanes(events)
    return events + phase_track_events(events) + nvml_counter_events(events, nvml_samples, phase_clock,
                                                                        base_time_ns, unix_offset_ns)


def _vllm_step_label(name: str) -> str | None:
    m = VLLM_STEP.match(name)
    if not m:
        return None
    ctx_tok, gen_tok = int(m[2]), int(m[4])
    kind = "mixed step" if ctx_tok and gen_tok else "prefill step" if ctx_tok else "decode step"
    return f"{kind} ({ctx_tok} prefill + {gen_tok} decode tokens)"


def phase_track_events(events: list) -> list:
    """Our phase ranges (or vLLM's steps) again, on a track of their own ("tracer phases") in the process that ran
    them, above the op slices. Category `tracer_phase`: parsers read the original annotations, not these copies."""
    spans = []
    for e in events:
        if e.get("cat") != "user_annotation" or e.get("ph") != "X":
            continue
        name = e.get("name", "")
        label = name if name in PHASE_OF_RANGE else _vllm_step_label(name)
        if label:
            spans.append((e, label))
    if not spans:
        return []
    pid = spans[0][0].get("pid", 0)
    out = [{"ph": "M", "name": "thread_name", "pid": pid, "tid": PHASE_TRACK_TID, "args": {"name": "tracer phases"}},
           {"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": PHASE_TRACK_TID, "args": {"sort_index": -1}}]
    out += [{"ph": "X", "cat": "tracer_phase", "name": label, "pid": pid, "tid": PHASE_TRACK_TID, "ts": e["ts"],
             "dur": e["dur"]} for e, label in spans]
    return out


def nvml_counter_events(events: list, nvml_samples, phase_clock, base_time_ns=None, unix_offset_ns=None) -> list:
    """Chrome counter events ("ph": "C") for NVML samples. Placed by the Unix clock where the trace says where
    its clock starts (Kineto's baseTimeNanoseconds: ts in us after it), else aligned on the first `prefill`
    annotation with the host time we took when it opened."""
    annotations = [e for e in events if e.get("cat") == "user_annotation" and e.get("ph") == "X"]
    if not nvml_samples or not annotations:
        return []
    if base_time_ns is not None and unix_offset_ns:
        offset_us = (unix_offset_ns - base_time_ns) / 1e3
    else:
        prefill_host_ns = next((start for name, start, _ in phase_clock if name == "prefill"), None)
        prefill = next((e for e in annotations if e.get("name") == "prefill"), None)
        if prefill_host_ns is None or prefill is None:
            return []
        offset_us = float(prefill["ts"]) - prefill_host_ns / 1e3
    pid = annotations[0].get("pid", 0)
    # The sampler also ran through the warm-ups, which the profiler did not record: keep the samples over the
    # trace's own span (and the one just before it, so the counters start with a value).
    spans = [(float(e["ts"]), float(e["ts"]) + float(e["dur"])) for e in events
             if e.get("ph") == "X" and isinstance(e.get("ts"), (int, float)) and isinstance(e.get("dur"), (int, float))]
    if not spans:
        return []
    first, last = min(s for s, _ in spans), max(e for _, e in spans)
    placed = [(round(t_ns / 1e3 + offset_us, 3), util, used) for t_ns, util, used in nvml_samples]
    before = [p for p in placed if p[0] < first][-1:]
    out = []
    for ts, util, used in before + [p for p in placed if first <= p[0] <= last]:
        out.append({"ph": "C", "name": "GPU utilization (NVML, %)", "pid": pid, "ts": ts, "args": {"util": util}})
        out.append({"ph": "C", "name": "GPU memory used (NVML, MiB)", "pid": pid, "ts": ts,
                    "args": {"MiB": round(used / 2**20, 1)}})
    return out


def _lane_tid(tid, lane: int):
    if isinstance(tid, int) and 0 <= tid < 2**28:
        return _LANE_TID_BASE + tid * 16 + lane
    return f"{tid} lane {lane}"


# Slices parsers attribute through their thread (tid): these keep their track; what crosses them moves.
_ANCHORED = frozenset({"user_annotation", "cpu_op", "cuda_runtime", "cuda_driver", "gpu_user_annotation"})


def _greedy_lanes(items: list) -> dict:
    """items: (start_ns, end_ns, index, min_lane), sorted by start then longest first. Each goes to the first lane
    at or above its minimum where it nests; returns index -> lane for those not on lane 0."""
    stacks: list[list[int]] = [[]]
    lanes = {}
    for s, e, i, min_lane in items:
        for lane in range(min_lane, _MAX_LANES + 1):
            if lane == len(stacks):
                stacks.append([])
            stack = stacks[lane]
            while stack and stack[-1] <= s:
                stack.pop()
            if not stack or e <= stack[-1] or lane == _MAX_LANES:
                stack.append(e)
                break
        if lane:
            lanes[i] = lane
    return lanes


def _crosses_anchored(anchored: list):
    """A test whether [s, e] crosses one of the (properly nested) anchored slices: the innermost anchored slice
    around just after s differs from the one around just before e."""
    import bisect
    starts = [a[0] for a in anchored]
    parent, stack = [], []
    for k, (s, e, _, _) in enumerate(anchored):
        while stack and anchored[stack[-1]][1] <= s:
            stack.pop()
        parent.append(stack[-1] if stack else -1)
        stack.append(k)

    def innermost(t: float) -> int:
        k = bisect.bisect_right(starts, t) - 1
        while k >= 0 and anchored[k][1] <= t:   # half-open [start, end): a slice starting at an end is outside
            k = parent[k]
        return k

    return lambda s, e: innermost(s) != innermost(max(s, e - 1))


def _lanes_of_track(events: list, idx: list) -> dict:
    items = sorted((slice_ns(events[i]) + (i, events[i].get("cat") in _ANCHORED) for i in idx),
                   key=lambda x: (x[0], -x[1]))
    anchored_lanes = _greedy_lanes([(s, e, i, 0) for s, e, i, a in items if a])
    base = [(s, e, i, 0) for s, e, i, a in items if a and i not in anchored_lanes]
    crosses = _crosses_anchored(base)
    return _greedy_lanes([(s, e, i, 0 if (a and i not in anchored_lanes) or (not a and not crosses(s, e)) else 1)
                          for s, e, i, a in items])


def move_overlaps_to_lanes(events: list) -> list:
    """Move every complete slice that partially overlaps another on its track to the first lane where it nests,
    with its flow-arrow end; name the lane tracks. Slices parsers attribute by thread (annotations, ops, runtime
    calls) stay where they are when they can: what crosses them moves. Returns a new list (moved events copied)."""
    tracks = defaultdict(list)
    for i, e in enumerate(events):
        if isinstance(e, dict) and e.get("ph") == "X" and isinstance(e.get("ts"), (int, float)) \
                and isinstance(e.get("dur"), (int, float)):
            tracks[(e.get("pid"), e.get("tid"))].append(i)
    moved: dict[int, int] = {}   # event index -> lane
    for idx in tracks.values():
        moved.update(_lanes_of_track(events, idx))
    if not moved:
        return list(events)
    landing = {(events[i].get("pid"), events[i].get("tid"), events[i]["ts"]): lane for i, lane in moved.items()}
    out, names = [], {}
    for i, e in enumerate(events):
        lane = moved.get(i)
        if lane is None and isinstance(e, dict) and e.get("ph") == "f":   # flow arrow ending on a moved kernel
            lane = landing.get((e.get("pid"), e.get("tid"), e.get("ts")))
        if lane:
            names[(e.get("pid"), e.get("tid"), lane)] = None
            e = dict(e, tid=_lane_tid(e.get("tid"), lane))
        out.append(e)
    thread_names = {(e.get("pid"), e.get("tid")): e.get("args", {}).get("name") for e in events
                    if isinstance(e, dict) and e.get("ph") == "M" and e.get("name") == "thread_name"}
    for pid, tid, lane in names:
        base = thread_names.get((pid, tid)) or f"thread {tid}"
        out.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": _lane_tid(tid, lane),
                    "args": {"name": f"{base.strip()} · overlapping launches" + (f" {lane}" if lane > 1 else "")}})
    return out
