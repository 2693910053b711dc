"""Steps of a trace recorded without step annotations, and the phase of each from its tokens.

Where the trace marks no step (no vLLM `execute_context_...` step, no `decode_step` range), steps come, in order, from:
- vLLM's `execute_model` Python frames (traces with stacks; found by the parser, tracer/parse/frame_steps.py);
- one CUDA-graph launch a step, where every graph launch replays a whole forward pass (its GEMMs and its
  attention: vLLM's piecewise graphs stop at attention, so theirs are not steps);
- the model's own kernel pattern (`--model`): a forward pass is L layers of the same projections and one LM head
  (analysis/work/layer_map.py), so the kernels are cut after each LM head and the sampling kernels that follow it.
Kernels inside a coarse phase range (an HF `decode` range without `decode_step`s) are split within it and keep its
phase; kernels outside any phase (an engine's steps) get the phase of their step's tokens:
- from the attention ops' shapes, where vLLM's attention ran eagerly (FlashAttention-3's `_vllm_fa3_C::fwd`, the CPU
  backend's `_C::cpu_attention_with_kv_cache`): the query rows are the step's tokens and the cumulative query lengths
  hold one more entry than sequences; a step whose attention replays a CUDA graph is a uniform decode batch (vLLM
  captures full graphs only for those), its sequences counted by `_vllm_fa3_C::get_scheduler_metadata`'s per-sequence
  lengths: the batch the graph was captured for, which the GPU runs whole (15 sequences in a graph of 16 count 16).
  Sequences of the step before that are still running decode one token each; the other tokens are prompts;
- else from `--workload`: the first step a prefill of batch x prompt tokens, every later one a decode of batch.
A step whose tokens neither tells stays outside the phases, with a notice; so does every failure to find steps.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.work.architecture import ModelShape
from analysis.work.layer_map import GEMM_HELPER, _layout_from_structure, gemm_layouts
from tracer import schema

FRAME, GRAPH, PATTERN = "vllm_frame", "graph_launch", "model_pattern"
INFERRED = (FRAME, GRAPH, PATTERN)
FA3_METADATA = "_vllm_fa3_C::get_scheduler_metadata"
# attention ops whose first input is the step's queries (tokens x heads x head_dim) -> the input holding the
# cumulative query lengths (sequences + 1), as vLLM records them
CU_SEQLENS_Q = {"_vllm_fa3_C::fwd": 7,                  # fwd(q, k, v, k_new, v_new, q_v, out, cu_seqlens_q, ...)
                "_C::cpu_attention_with_kv_cache": 4}   # vLLM's CPU backend: (q, k_cache, v_cache, out, query_start_loc, ...)


def has_annotated_steps(ranges: pd.DataFrame) -> bool:
    return bool((ranges["step"].notna() & ~ranges["source"].isin(INFERRED)).any())


def resolve_steps(tables: dict, shape: ModelShape | None, workload: dict | None) -> tuple[dict, list[str]]:
    """The tables with steps found and phases decided where the trace annotates none, and notices saying how
    (or why not)."""
    ranges, kernels = tables["ranges"], tables["kernels"]
    if has_annotated_steps(ranges) or tables["meta"].get("source_format") == "ncu":
        return tables, []
    notices = []
    odd = ranges.loc[ranges["name"].str.startswith("execute_context_") & (ranges["source"] != "vllm_step"), "name"]
    if len(odd):   # a vLLM step annotation in a format tracer does not read
        notices.append(f"{len(odd)} annotation(s) named like vLLM steps but not in the form "
                       f"execute_context_N(T)_generation_M(D) (e.g. {odd.iloc[0][:60]!r}): not read as steps")
    if (ranges["source"] == FRAME).any():
        notices.append(f"no step annotations: {int((ranges['source'] == FRAME).sum())} steps from vLLM's "
                       "execute_model Python frames")
        tables = dict(tables)
    elif kernels.empty:   # no kernels to find steps among (a CPU-only trace)
        return tables, notices
    else:
        found = _graph_launch_steps(kernels)
        how = "one CUDA-graph launch each (every launch replays a whole forward pass)"
        if found is None and shape is not None:
            found, why = _pattern_steps(kernels, shape)
            how = f"the model's kernel pattern (one LM-head GEMM per forward pass of {shape.layers} layers)"
            notices += why
        if found is None:
            if shape is None:
                notices.append("no step annotations, execute_model frames or whole-pass CUDA-graph launches: steps "
                               "unknown; name the model with --model to split steps by its kernel pattern")
            return tables, notices
        tables = _with_steps(tables, found)
        notices.append(f"no step annotations: {found['n_steps']} steps from {how}")
    return _with_phases(tables, workload, notices), notices


# --- finding steps -------------------------------------------------------------------------------------------

def _launch_order(kernels: pd.DataFrame) -> np.ndarray:
    t = kernels["launch_start_us"].fillna(kernels["start_us"]).to_numpy(dtype=float)
    return np.lexsort((kernels["start_us"].to_numpy(dtype=float), t))


def _graph_launch_steps(kernels: pd.DataFrame) -> dict | None:
    """Steps at graph launches, where each launch holds GEMMs and attention; None otherwise. A step runs from
    after the sampling kernels that follow the previous launch (its input preparation comes before its launch)."""
    none = np.flatnonzero((kernels["phase"] == "none").to_numpy())
    graph = kernels["graph_launch"].fillna(False).to_numpy(dtype=bool)
    if not graph[none].any():
        return None
    idx = none[_launch_order(kernels.iloc[none])]
    classes = schema.str_values(kernels["kernel_class"])[idx]
    launch = np.where(graph[idx], kernels["launch_start_us"].to_numpy(dtype=float)[idx], np.nan)
    at = np.flatnonzero(~np.isnan(launch))
    if len(at) == 0:
        return None
    per = pd.DataFrame({"launch": launch[at], "pos": at, "gemm": classes[at] == "gemm",
                        "attention": classes[at] == "attention"}).groupby("launch", sort=True)
    agg = per.agg(first=("pos", "min"), last=("pos", "max"), gemm=("gemm", "any"), attention=("attention", "any"))
    if not (agg["gemm"] & agg["attention"]).all():
        return None
    helper = np.zeros(len(idx), dtype=bool)
    anchors = agg["last"].astype(int).tolist()
    nexts = agg["first"].astype(int).tolist()[1:] + [len(idx)]
    cuts = _cut_after_sampling(classes, helper, anchors, nexts)
    step = np.full(len(kernels), np.nan)
    for j, (a, b) in enumerate(cuts):
        step[idx[a:b]] = j
    return {"step": step, "n_steps": len(cuts), "source": GRAPH}


def _cut_after_sampling(classes: np.ndarray, helper: np.ndarray, anchors: list[int], nexts: list[int],
                        keep_tail: bool = True) -> list[tuple[int, int]]:
    """[(first, end)] of each pass: pass j ends after its anchor (an LM head, a graph's last kernel), the GEMM
    helpers right after it and the sampling kernels before the next pass's first kernel `nexts[j]`; the first pass
    starts at 0, the last keeps everything after it when `keep_tail`."""
    cuts, begin = [], 0
    for j, (anchor, nxt) in enumerate(zip(anchors, nexts)):
        end = anchor + 1
        while end < nxt and helper[end]:
            end += 1
        sampling = np.flatnonzero(classes[end:nxt] == "sampling")
        if j + 1 == len(anchors) and keep_tail:
            end = len(classes)
        elif len(sampling):
            end = end + int(sampling[-1]) + 1
        cuts.append((begin, end))
        begin = end
    return cuts


def _pattern_steps(kernels: pd.DataFrame, shape: ModelShape) -> tuple[dict | None, list[str]]:
    """Steps cut after each LM head, within each coarse phase range without steps and among kernels outside any
    phase; (None, reasons) when no group fits the model."""
    step = np.full(len(kernels), np.nan)
    notices, n_steps, phase_of_group = [], 0, {}
    phase = schema.str_values(kernels["phase"])
    unstepped = kernels["step"].isna().to_numpy()
    # an HF prefill range is one forward pass already; kernels outside the phase ranges of a trace that has them
    # (between HF's prefill and decode) are no steps
    groups = ("decode",) if (phase != "none").any() else ("none",)
    for group in groups:
        idx = np.flatnonzero(unstepped & (phase == group))
        if len(idx) == 0:
            continue
        idx = idx[_launch_order(kernels.iloc[idx])]
        cuts, why = _forward_passes(schema.str_values(kernels["kernel_class"])[idx],
                                    schema.str_values(kernels["name"])[idx], shape)
        if why:
            notices.append(f"{group if group != 'none' else 'kernels outside phases'}: {why}")
        for j, (a, b) in enumerate(cuts):   # from 0: HF's decode step j is its token j + 1
            step[idx[a:b]] = n_steps + j
        if cuts:
            phase_of_group[group] = len(cuts)
            n_steps += len(cuts)
    if not phase_of_group:
        return None, notices
    return {"step": step, "n_steps": sum(phase_of_group.values()), "source": PATTERN}, notices


def _forward_passes(classes: np.ndarray, names: np.ndarray, shape: ModelShape) -> tuple[list[tuple[int, int]], str]:
    """[(first, end)] kernel positions of each whole forward pass, and why not all kernels fit ("" when they do).
    A pass ends after its LM head's GEMM, its split-K helpers and the sampling kernels before the next pass's
    first GEMM. A trace that begins inside a pass (a capture started by time) leaves that part outside steps: the
    LM heads are the GEMMs that sampling kernels follow."""
    is_gemm = classes == "gemm"
    helper = is_gemm & np.array([bool(GEMM_HELPER.search(n)) for n in names], dtype=bool)
    main = is_gemm & ~helper
    gemm_pos = np.flatnonzero(main)
    if len(gemm_pos) == 0:
        return [], "no GEMMs, so no forward pass of the model"
    found = _layout_from_structure(main, classes, names, shape)
    layouts = [found] if found else [(lay, 0) for lay in gemm_layouts(shape)]
    sizes = [(lay, pre, pre + shape.layers * len(lay) + 1) for lay, pre in layouts]
    offsets = [_pass_offset(classes, gemm_pos, n) for _, _, n in sizes]
    fit = [(s, o) for s, o in zip(sizes, offsets) if (len(gemm_pos) - o) % s[2] == 0 and len(gemm_pos) > o]
    (lay, pre, per_pass), offset = (fit or list(zip(sizes, offsets)))[0]
    body = gemm_pos[offset:]
    whole = len(body) // per_pass
    why = []
    if offset:
        why.append(f"the trace begins inside a forward pass: its first {offset} GEMMs stay outside steps")
    if not fit:
        left = len(body) - whole * per_pass
        why.append(f"{len(body)} GEMMs are not a whole number of forward passes of the model ({per_pass} each: "
                   f"{shape.layers} layers x {len(lay)} + {pre + 1}); "
                   + (f"the {left} GEMMs after {whole} passes" if whole else "all of them") + " stay outside steps")
    anchors = [int(gemm_pos[offset - 1])] if offset else []
    nexts = [int(body[0])] if offset else []
    anchors += [int(body[(j + 1) * per_pass - 1]) for j in range(whole)]
    nexts += [int(body[(j + 1) * per_pass]) if (j + 1) * per_pass < len(body) else len(classes) for j in range(whole)]
    cuts = _cut_after_sampling(classes, helper, anchors, nexts, keep_tail=bool(fit))[1 if offset else 0:]
    layers = _attention_layers(classes, main, cuts)
    if cuts and (layers != shape.layers).any():
        bad = np.flatnonzero(layers != shape.layers)
        return [], (f"{len(bad)} of {len(cuts)} cuts of {per_pass} GEMMs hold {int(layers[bad[0]])} attention "
                    f"blocks, not the model's {shape.layers} layers: no steps from the kernel pattern (is --model "
                    "the traced model?)")
    return cuts, "; ".join(why)


def _pass_offset(classes: np.ndarray, gemm_pos: np.ndarray, per_pass: int) -> int:
    """GEMMs before the first whole pass: the LM heads are the GEMMs with a sampling kernel before the next GEMM,
    so the passes are aligned to the position (mod the pass's GEMMs) most of those hold. 0 where none is."""
    sampling = np.flatnonzero(classes == "sampling")
    if len(sampling) == 0:
        return 0
    nxt = np.r_[gemm_pos[1:], len(classes)]
    k = np.searchsorted(sampling, gemm_pos, side="right")
    followed = np.flatnonzero((k < len(sampling)) & (sampling[np.minimum(k, len(sampling) - 1)] < nxt))
    if len(followed) == 0:
        return 0
    return int(np.bincount((followed + 1) % per_pass).argmax())


def _attention_layers(classes: np.ndarray, main: np.ndarray, cuts: list) -> np.ndarray:
    """Attention blocks in each pass: the distinct GEMM counts (from the pass's start) at which attention kernels
    run, between its first GEMM and its LM head (bookkeeping kernels of the attention class come before either)."""
    gemms_before = np.cumsum(main) - main
    att = classes == "attention"
    out = []
    for a, b in cuts:
        g = gemms_before[a:b] - gemms_before[a]
        last = int(main[a:b].sum())
        at = g[att[a:b] & (g > 0) & (g < last)]
        out.append(len(np.unique(at)))
    return np.array(out)


def _with_steps(tables: dict, found: dict) -> dict:
    """Kernels with their step; memops and ops of a step's time too; one range a step (from its first launch to
    its last) so that wall time has step windows."""
    k = tables["kernels"].copy()
    step = found["step"]
    k["step"] = pd.array(np.where(np.isnan(step), -1, step).astype(np.int64), dtype="Int64")
    k.loc[np.isnan(step), "step"] = pd.NA
    t = k["launch_start_us"].fillna(k["start_us"])
    has = k["step"].notna()
    rows = []
    for (ph, s), g in k[has].groupby([k.loc[has, "phase"].astype(str), k.loc[has, "step"]], sort=True):
        tg = t[g.index]
        rows.append({"name": f"step {int(s)}", "start_us": float(tg.min()), "end_us": float(tg.max()),
                     "pid": pd.NA, "tid": g["launch_tid"].mode().iloc[0] if g["launch_tid"].notna().any() else pd.NA,
                     "depth": 1 if ph != "none" else 0, "source": found["source"], "phase": ph, "step": int(s)})
    steps = pd.DataFrame(rows).sort_values("start_us", kind="stable")
    ranges = schema.conform(pd.concat([tables["ranges"], steps], ignore_index=True), "ranges")
    out = dict(tables, kernels=k, ranges=ranges)
    for name, time_col in (("memops", "launch_start_us"), ("ops", "start_us")):
        out[name] = _steps_by_time(tables[name], time_col, steps)
    return out


def _steps_by_time(df: pd.DataFrame, time_col: str, steps: pd.DataFrame) -> pd.DataFrame:
    """Rows without a step get the step whose period (its start to the next step's start) holds their time, where
    their phase is the step's."""
    if df.empty or steps.empty:
        return df
    df = df.copy()
    t = df[time_col].to_numpy(dtype=float)
    s = steps.sort_values("start_us")
    starts = s["start_us"].to_numpy(dtype=float)
    j = np.searchsorted(starts, t, side="right") - 1
    ok = (j >= 0) & ~np.isnan(t) & df["step"].isna().to_numpy()
    last = len(starts) - 1
    ok &= (j < last) | (t <= s["end_us"].to_numpy()[last] if len(starts) else False)
    ok[ok] &= s["phase"].to_numpy()[j[ok]] == df["phase"].astype(str).to_numpy()[ok]
    step = df["step"].astype("Int64").copy()
    step[ok] = s["step"].to_numpy()[j[ok]]
    df["step"] = step
    return df


# --- tokens and phases ---------------------------------------------------------------------------------------

def _with_phases(tables: dict, workload: dict | None, notices: list[str]) -> dict:
    """Engine steps (outside any phase range) get prefill_seqs/prefill_tokens/decode_seqs/decode_tokens and their
    phase, and so do their kernels, memops and ops."""
    ranges = tables["ranges"]
    engine = ranges["source"].isin(INFERRED) & (ranges["phase"] == "none")
    if not engine.any():
        return tables
    rows = ranges[engine].sort_values("start_us", kind="stable")
    steps = rows["step"].astype(int).tolist()
    comp = _compositions_from_ops(tables, steps)
    with_kernels = set(tables["kernels"]["step"].dropna().astype(int))
    unknown = [s for s in steps if comp[s] is None and s in with_kernels]
    if unknown and workload and workload.get("batch") and workload.get("prompt_tokens"):
        told = _compositions_from_workload(steps, workload, notices)
        comp = {s: comp[s] if comp[s] is not None else told[s] for s in steps}
        others = ", the others from the attention ops' shapes" if len(unknown) < len(steps) else ""
        notices.append(f"tokens of {len(unknown)} of {len(steps)} steps from --workload {workload.get('name', '')}"
                       f"{others}")
    elif unknown:
        notices.append(f"{len(unknown)} of {len(steps)} steps ({_few(unknown)}) have no tokens the trace can tell "
                       "(no eager attention op or FA3 scheduler metadata) and no --workload: their kernels stay "
                       "outside the phases")
    first = next((comp[s] for s in steps if comp[s] is not None), None)
    if first is not None and first[2] and not (workload or {}).get("prompt_tokens"):
        notices.append(f"the trace begins mid-run: its first step decodes {first[2]} sequences whose prompts came "
                       "before it, so their context and attention work are unknown (unmodeled); --workload names the "
                       "prompt length")
    ranges = ranges.copy()
    told = [(i, s, comp[s]) for i, s in zip(rows.index, steps) if comp.get(s) is not None]
    phase_of = {s: ("mixed" if c[1] and c[3] else "prefill" if c[1] else "decode" if c[3] else "none")
                for _, s, c in told}
    if told:
        at = [i for i, _, _ in told]
        ranges.loc[at, ["prefill_seqs", "prefill_tokens", "decode_seqs", "decode_tokens"]] = \
            np.array([c for _, _, c in told], dtype=np.int64)
        ranges.loc[at, "phase"] = [phase_of[s] for _, s, _ in told]
    out = dict(tables, ranges=schema.conform(ranges, "ranges"))
    for name in ("kernels", "memops", "ops"):
        df = tables[name]
        if df.empty:
            continue
        df = df.copy()
        mapped = df["step"].astype("Int64").map(pd.Series(phase_of, dtype=object))
        take = mapped.notna() & (df["phase"].astype(str) == "none")
        ph = df["phase"].astype(str).where(~take, mapped.astype(object))
        df["phase"] = schema.as_text_category(pd.Series(ph, index=df.index, dtype="string"))
        out[name] = df
    return out


def _few(steps: list) -> str:
    return ", ".join(map(str, steps[:5])) + (", ..." if len(steps) > 5 else "")


def _compositions_from_workload(steps: list[int], workload: dict, notices: list[str]) -> dict:
    b, p = int(workload["batch"]), int(workload["prompt_tokens"])
    out = {s: ((b, b * p, 0, 0) if j == 0 else (0, 0, b, b)) for j, s in enumerate(steps)}
    expected = workload.get("output_tokens")
    if expected and len(steps) != int(expected):
        notices.append(f"{len(steps)} steps found, the workload {workload.get('name', '')} has {int(expected)} "
                       f"(a prefill and {int(expected) - 1} decode steps): tokens per step from the workload may not "
                       "match the trace's")
    return out


def _compositions_from_ops(tables: dict, steps: list[int]) -> dict:
    """{step: (prefill seqs, prefill tokens, decode seqs, decode tokens) or None} from vLLM's FA3 ops."""
    ops, kernels = tables["ops"], tables["kernels"]
    out: dict = {}
    prev_seqs = 0
    graph_att = set()
    if len(kernels):
        att = kernels[(kernels["kernel_class"] == "attention") & kernels["graph_launch"].fillna(False)
                      & kernels["step"].notna()]
        graph_att = set(att["step"].astype(int))
    by_step = {int(s): g for s, g in ops[ops["step"].notna()].groupby("step")} if len(ops) else {}
    for s in steps:
        g = by_step.get(s)
        tokens_seqs = _attention_op_tokens(g) if g is not None else None
        if tokens_seqs is None and g is not None and s in graph_att:
            seqs = _fa3_metadata_seqs(g)
            tokens_seqs = (seqs, seqs) if seqs else None
        if tokens_seqs is None:
            out[s] = None
            prev_seqs = 0
            continue
        t, n = tokens_seqs
        if t == n:
            out[s] = (0, 0, n, t)
        else:
            d = min(prev_seqs, n - 1)
            out[s] = (n - d, t - d, d, d)
        prev_seqs = n
    return out


def _shapes(text: str) -> list:
    import orjson
    try:
        v = orjson.loads(text) if text else []
    except orjson.JSONDecodeError:
        return []
    return v if isinstance(v, list) else []


def _attention_op_tokens(ops: pd.DataFrame) -> tuple[int, int] | None:
    """(tokens, sequences) of a step from its first attention op that records them."""
    att = ops[ops["name"].astype(str).isin(list(CU_SEQLENS_Q))]
    if att.empty:
        return None
    row = att.iloc[0]
    sh, at = _shapes(str(row["input_shapes"])), CU_SEQLENS_Q[str(row["name"])]
    if len(sh) <= at or not sh[0] or len(sh[at]) != 1:
        return None
    return int(sh[0][0]), int(sh[at][0]) - 1


def _fa3_metadata_seqs(ops: pd.DataFrame) -> int | None:
    """The per-sequence KV lengths ([S]) that the scheduler metadata takes beside cu_seqlens_q ([S + 1])."""
    md = ops[ops["name"].astype(str) == FA3_METADATA]
    if md.empty:
        return None
    sh = _shapes(str(md["input_shapes"].iloc[0]))
    for a, b in zip(sh, sh[1:]):
        if len(a) == 1 and len(b) == 1 and b[0] == a[0] + 1:
            return int(a[0])
    return None
