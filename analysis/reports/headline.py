"""A few sentences at the top of a report, generated from the topic tables' values (analysis.reports.tables) and written
with the same formatter, so every number in them is a cell of a table below."""
from __future__ import annotations

from analysis.timing import repeat_figures as rf
from analysis.numbers import count, ms, sig3
from analysis.timing.overhead import NO_UNPROFILED
from analysis.reports.tables import (GPU_BUSY, PHASE_ORDER, WALL, figure_value, figures_of, has_kernels, host_values,
                             wall_components, wall_values)
from analysis.timing.walltime import IDLE_BETWEEN, IDLE_IN_STEPS

_SHORT = {IDLE_IN_STEPS: "GPU idle in steps (launch gaps)", IDLE_BETWEEN: "GPU idle between steps"}


def _main_phase(result: dict) -> str | None:
    phases = set(result["wall"]["phase"]) if len(result["wall"]) else set()
    if "decode" in phases:
        return "decode"
    return max(phases, key=lambda p: wall_values(result, p).get(WALL, 0.0)) if phases else None


def _step_sentence(label: str, result: dict, phase: str) -> str:
    v = wall_values(result, phase)
    classes = sorted((c for c in v if c not in (IDLE_IN_STEPS, IDLE_BETWEEN, GPU_BUSY, WALL)),
                     key=lambda c: -v[c])[:3]
    cls = ", ".join(f"{c} {ms(v[c])}" for c in classes)
    what = "a decode step" if phase == "decode" else f"a {phase} step"
    s = f"{label}: {what} takes {ms(v.get(WALL))} ms of wall time"
    if not has_kernels(result):
        s += " (no GPU kernels in this trace)."
    else:
        s += (f": GPU busy {ms(v.get(GPU_BUSY))} ms{f' ({cls} ms)' if cls else ''}, "
              f"{_SHORT[IDLE_IN_STEPS]} {ms(v.get(IDLE_IN_STEPS))} ms, {_SHORT[IDLE_BETWEEN]} {ms(v.get(IDLE_BETWEEN))} ms.")
    h = host_values(result, phase)
    if h:
        top = sorted(h, key=lambda f: -h[f])[:3]
        s += " On the host: " + ", ".join(f"{f} {ms(h[f])} ms" for f in top) + "."
    return s


def _verdict_sentence(label: str, result: dict) -> str:
    parts = []
    order = {p: i for i, p in enumerate(PHASE_ORDER)}
    for p in sorted(result["summary"]["phases"], key=lambda p: order.get(p["phase"], 9)):
        v = p.get("verdict") or "-"
        if p.get("verdict_unprofiled") not in (None, "-"):
            v += f"; without it: {p['verdict_unprofiled']}"
        parts.append(f"{p['phase']}: {v}")
    return f"{label} verdicts: " + "; ".join(parts) + "." if parts else ""


def _inflation_sentence(runs) -> str:
    parts = []
    key = "decode_ms_per_token_mean"
    for label, r in runs:
        i = figure_value(r, "profiler_inflation")
        pr, un = rf.profiled(figures_of(r)), rf.unprofiled(figures_of(r))
        sides = (f" ({rf.with_spread(pr.get(key), rf.spread(pr, key))} over {rf.with_spread(un.get(key), rf.spread(un, key))}"
                 f" ms/token, medians of {count(pr.get('runs'))} and {count(un.get('runs'))} runs)") if pr and un else ""
        parts.append(f"{label} {sig3(i)}x{sides}" if i else f"{label}: {NO_UNPROFILED}")
    return "Profiler inflation (profiled / unprofiled decode ms/token): " + "; ".join(parts) + "."


def _speed_clause(r: dict) -> str:
    d, u = figure_value(r, "decode_ms_per_token_mean"), figure_value(r, "decode_ms_per_token_mean", True)
    s = f"decode {sig3(d)} ms/token under the profiler"
    un = rf.unprofiled(figures_of(r))
    spread = rf.spread(un, "decode_ms_per_token_mean")
    s += (f", {sig3(u)} without it" + (f" (±{rf.spread_text(spread)}% over {count(un.get('runs'))} runs)"
                                       if spread is not None else "")) if u else ""
    if rf.has_generate(figures_of(r)):
        g = un.get(rf.GENERATE + "decode_ms_per_token")
        s += f"; HF generate() {rf.with_spread(g, un.get(rf.GENERATE + 'decode_ms_per_token_spread_pct'), 'ms/token')}"
    return s


def _generate_comparison(runs) -> list[str]:
    """Without the profiler, each later run against the first with HF as generate() runs it (where the sidecar
    has it), and against HF's annotated loop beside it."""
    out = []
    base_label, base = runs[0]
    key = "output_tokens_per_s"
    a, _, which_a = rf.hf_comparable(figures_of(base), key)
    for label, r in runs[1:]:
        b, _, which_b = rf.hf_comparable(figures_of(r), key)
        if not (a and b) or not (which_a or which_b):
            continue
        la, lb = base_label + (f" {which_a}" if which_a else ""), label + (f" {which_b}" if which_b else "")
        s = (f"Without the profiler, HF as generate() runs it: {lb} gives {sig3(b / a)}x the output tokens/s of {la} "
             f"({sig3(b)} vs {sig3(a)})")
        da, db = (rf.hf_comparable(figures_of(base), "decode_ms_per_token_mean")[0],
                  rf.hf_comparable(figures_of(r), "decode_ms_per_token_mean")[0])
        if da and db:
            s += f", decode {sig3(db)} vs {sig3(da)} ms/token"
        loop_a, loop_b = figure_value(base, key, True), figure_value(r, key, True)
        if loop_a and loop_b and (loop_a, loop_b) != (a, b):
            s += f"; against the annotated loop {sig3(loop_b / loop_a)}x ({sig3(loop_b)} vs {sig3(loop_a)})"
        out.append(s + ".")
    return out


def headline(runs) -> list[str]:
    """Sentences for one run (analyze) or several (compare, the first as the baseline)."""
    if not runs:
        return []
    out = []
    base_label, base = runs[0]
    if len(runs) == 1:
        tps, ttft = figure_value(base, "output_tokens_per_s"), figure_value(base, "ttft_ms")
        if tps is not None:
            out.append(f"{base_label}: {sig3(tps)} output tokens/s, TTFT {sig3(ttft)} ms, {_speed_clause(base)}.")
    out += _generate_comparison(runs)   # the ratio HF users would see, where the sidecars have it
    for label, r in runs[1:]:
        a, b = figure_value(base, "output_tokens_per_s"), figure_value(r, "output_tokens_per_s")
        if a and b:
            da, db = figure_value(base, "decode_ms_per_token_mean"), figure_value(r, "decode_ms_per_token_mean")
            ua, ub = (figure_value(base, "decode_ms_per_token_mean", True),
                      figure_value(r, "decode_ms_per_token_mean", True))
            loop = " under the profiler with HF's annotated loop" if any(rf.has_generate(figures_of(x)) for _, x in runs) else ""
            s = (f"{label} gives {sig3(b / a)}x the output tokens/s of {base_label}{loop} ({sig3(b)} vs {sig3(a)}); "
                 f"decode takes {sig3(db)} vs {sig3(da)} ms/token under the profiler")
            out.append(s + (f", {sig3(ub)} vs {sig3(ua)} without it." if ua and ub else "."))
    phase = _main_phase(base)
    for label, r in runs:
        p = _main_phase(r) if phase is None else phase
        if p and wall_values(r, p):
            out.append(_step_sentence(label, r, p))
    if phase:
        for label, r in runs[1:]:
            va, vb = wall_values(base, phase), wall_values(r, phase)
            if not va or not vb or not (has_kernels(base) and has_kernels(r)):   # CPU traces: no GPU to be idle
                continue
            comps = [c for c in wall_components(runs, phase) if c not in (GPU_BUSY, WALL)]
            deltas = sorted(((c, va.get(c, 0.0) - vb.get(c, 0.0)) for c in comps), key=lambda t: -abs(t[1]))[:3]
            words = [f"{_SHORT.get(c, c)} {ms(abs(d))} ms {'saved' if d >= 0 else 'more'}" for c, d in deltas]
            out.append(f"Largest differences per {phase} step, {label} against {base_label}: " + "; ".join(words) + ".")
    from analysis.reports.deployment import deployment_sentences
    out += deployment_sentences(runs)
    for label, r in runs:
        s = _verdict_sentence(label, r)
        if s:
            out.append(s)
    if any(len(r["wall"]) for _, r in runs) and any(r["summary"].get("run") for _, r in runs):
        out.append(_inflation_sentence(runs))
    for label, r in runs:
        if figures_of(r).get("sdpa_backend_used"):
            out.append(f"{label} attention: {rf.attention_text(figures_of(r))}.")
        out += [w + "." for w in rf.spread_warnings(label, figures_of(r))]
    return out


def source_lines(summary: dict, label: str = "") -> list[str]:
    """What was read, on which device, with which peaks: the lines under a report's headline."""
    src, prefix = summary["source"], f"{label}: " if label else ""
    out = [f"{prefix}Source: {src['path']} ({src['format']}), device {src['device'] or 'unknown'}."]
    return out + ([f"{prefix}{peaks_line(src['peaks'])}."] if src["peaks"] else [])


def backend_workload_label(summary: dict, fallback: str) -> str:
    """backend[-eager]:workload where the sidecar says them, else `fallback`."""
    run = summary.get("run") or {}
    if not run.get("backend"):
        return fallback
    eager = "-eager" if (run.get("vllm_options") or {}).get("enforce_eager") else ""
    return f"{run['backend']}{eager}:{(run.get('workload') or {}).get('name', '')}"


def peaks_line(p: dict) -> str:
    l2 = (f", L2 {sig3(p['l2_gbps'])} GB/s ({p.get('l2_source', p['source'])})" if p.get("l2_gbps")
          else ", L2 unknown (no L2 roof; run `tracer calibrate`)")
    return (f"Peaks used ({p['source']}): bf16 {sig3(p['bf16'])} TFLOP/s, fp32 {sig3(p['fp32'])} TFLOP/s, "
            f"DRAM {sig3(p['hbm_gbps'])} GB/s{l2}")
