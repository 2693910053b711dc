"""One trace's analysis: tables in, the result out (its files: analysis/reports/output_files.py).

summary.json (schema version 1):
- `source`: trace path, format, device name, peaks used (`peaks.source` says datasheet or measured)
- `run`: the sidecar's workload, backend and figures when a sidecar sits beside the trace
- `totals`: kernels, kernel_us, memops, memop_us, ops, unmodeled_pct (share of kernel time without a work model)
- `phases`: per phase: kernels, kernel_us, gpu_busy_us, wall_us, gpu_busy_pct_of_wall, steps, profiler_inflation,
  unprofiled_wall_us, gpu_busy_pct_of_unprofiled, memory/l2/compute/latency_bound_pct (of the phase's kernel time),
  unmodeled_pct, verdict, verdict_unprofiled
- `wall`: per phase and component (kernel class, GPU idle in steps, GPU idle between steps, wall): us, steps,
  us_per_step (analysis/timing/walltime.py); `host`: per phase and host family: us, steps, us_per_step; `steps`: per
  step: phase, step, start_us, end_us, range_us, period_us (to the next step's start), gpu_busy_us,
  idle_in_step_us, idle_after_step_us
- `classes`: per phase and kernel class: kernels, kernel_us, pct_of_phase
- `top_kernels`: per phase, the 10 kernels with most time, with mean roof_pct and bound
- `ncu`: where measured counters were merged: per class analytic against measured FLOPs and DRAM bytes
- `quantization` (quantized models): method, where it was learnt, tensor precision, bytes per weight, activation
  and KV-cache element; `moe` (MoE models): experts, top-k, widths and the routing assumption; `deployment`: per
  phase, GEMM time, share, DRAM bytes and bound, share on 8-bit tensor cores, quantization kernels', MoE layers',
  expert GEMMs' and routing's shares (analysis/reports/deployment.py)
- `notices`: plain-language facts (no kernels in a CPU-only trace, unknown device, ...)
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import orjson
import pandas as pd

from analysis.work.architecture import (NO_QUANTIZATION, Quantization, elem_bytes_of, kv_cache_bytes_from_kernels,
                                   model_shape, quantization_from_config, quantization_from_kernels,
                                   quantization_named)
from analysis.timing.breakdown import class_breakdown, phase_summary, top_kernels
from analysis.roofline.ncu_check import ncu_against_analytic
from analysis.timing.overhead import NO_UNPROFILED
from analysis.roofline.peaks import resolve_peaks
from analysis.roofline.placement import kernel_work, merge_ncu, ncu_comparison_by_class, roofline
from analysis.steps.inferred_steps import resolve_steps
from analysis.work.layer_map import layout_failure_notice
from analysis.steps.step_tokens import step_tokens
from analysis.work.tensor_parallel import predicted_allreduce, shard_shape, tp_degree
from analysis.timing.walltime import walltime
from analysis.work.expert_routing import step_expert_tokens
from tracer.schema import as_str, per_distinct

SUMMARY_VERSION = 1
NO_SIDECAR = ("no sidecar (the <trace>.meta.json `tracer record` writes): throughput, TTFT, decode ms/token and "
              "memory figures are not in the trace; record the run with `tracer record` for them (wall time per "
              "step is in the tables below)")


def device_name(tables: dict) -> str:
    props = tables["meta"].get("device_properties") or []
    return props[0].get("name", "") if props and isinstance(props[0], dict) else ""


def architecture_inputs(tables: dict, sidecar: dict | None, model_config: dict | None = None,
                        workload: dict | None = None, dtype: str | None = None, quantization: str | None = None,
                        kv_cache_dtype: str | None = None, tp: int | None = None) -> tuple[tuple | None, str | None]:
    """(ModelShape, step tokens) for the work model of shape-less kernels, from the sidecar or what the user named
    (`--model`, `--workload`, `--dtype`, `--quantization`, `--kv-cache-dtype`), and a notice when it cannot be
    had. Under tensor parallelism (`--tp`, the sidecar's, the trace's world size) the shape is one rank's shard
    (analysis.work.tensor_parallel)."""
    side = sidecar or {}
    config = model_config or (side.get("model") or {}).get("config")
    if not config:
        return None, ("kernels without recorded shapes (CUDA-graph replays, nsys exports) stay unmodeled: name the "
                      "model with --model (a preset or a local config.json) to model them")
    elem = elem_bytes_of(dtype or (side.get("model") or {}).get("dtype")) or _elem_bytes_from_ops(tables["ops"])
    quant, kv_bytes, quant_notice = model_quantization(tables, side, config, quantization, kv_cache_dtype)
    shape = model_shape(config, elem or 2, quant, kv_bytes)
    if shape is None:
        return None, f"model type {config.get('model_type')!r} has no architecture model: its shape-less kernels stay unmodeled"
    shape = shard_shape(shape, tp_degree(tp, side, tables["meta"])[0])
    figures = side.get("figures") or {}
    block = figures.get("kv_block_size_tokens") or (16 if side.get("backend") == "vllm" else None)
    measured = None
    if tables["meta"].get("source_format") == "ncu":   # one step: the one the child bracketed, else HF's first
        wl = side.get("workload") or {}
        measured = figures.get("measured_step") or (
            {"phase": "prefill", "tokens": wl["batch"] * wl["prompt_tokens"], "seqs": wl["batch"],
             "context_after": wl["prompt_tokens"]} if wl.get("kind") == "prefill" else
            {"phase": "decode", "tokens": wl["batch"], "seqs": wl["batch"], "context_after": wl["prompt_tokens"] + 1}
        ) if wl else None
    steps = step_tokens(tables["ranges"], workload or side.get("workload"), block, measured)
    if steps is None:
        return None, ("the steps' token counts are unknown (no vLLM step annotations, no workload): name it with "
                      "--workload (e.g. decode_b16_s128_o64) to model shape-less kernels")
    if shape.moe and figures.get("moe_routing"):   # the experts each step's tokens really went to
        steps = steps.assign(expert_tokens=pd.Series(step_expert_tokens(steps, figures["moe_routing"]),
                                                     index=steps.index, dtype=object))
    return (shape, steps), quant_notice


def model_quantization(tables: dict, side: dict, config: dict, named: str | None,
                       kv_named: str | None) -> tuple[Quantization, float, str | None]:
    """The projections' quantization and the KV cache's element bytes: what the user named, else the sidecar's
    vLLM options, else the checkpoint config, else what the kernels show (vLLM's online quantization leaves the
    config unquantized); and a notice when a named method has no work model."""
    vopts = side.get("vllm_options") or {}
    notice = None
    quant = None
    for method, source in ((named, "option"), (vopts.get("quantization"), "sidecar")):
        if method:
            quant = quantization_named(method, source)
            if quant is None:
                notice = (f"quantization {method!r} has no work model: its projections are modeled from what the "
                          "kernels show, else in the model's dtype")
            break
    names = as_str(tables["kernels"]["name"]).unique() if len(tables["kernels"]) else []
    quant = quant or quantization_from_config(config) or quantization_from_kernels(names) or NO_QUANTIZATION
    kv = kv_named or vopts.get("kv_cache_dtype")
    kv_bytes = 1.0 if (kv and str(kv).startswith("fp8")) else float(kv_cache_bytes_from_kernels(names) or 0)
    return quant, kv_bytes, notice


def shape_of(tables: dict, sidecar: dict | None, model_config: dict | None, dtype: str | None):
    """The ModelShape of the model the sidecar or the user names, or None."""
    side = sidecar or {}
    config = model_config or (side.get("model") or {}).get("config")
    if not config:
        return None
    elem = elem_bytes_of(dtype or (side.get("model") or {}).get("dtype")) or _elem_bytes_from_ops(tables["ops"])
    return model_shape(config, elem or 2)


def _elem_bytes_from_ops(ops: pd.DataFrame) -> int | None:
    """The activations' element size, from the most common floating type among the ops' inputs."""
    if ops.empty:
        return None
    counts = per_distinct(ops["input_dtypes"], lambda u: u.astype(str).str.extract(r"(BFloat16|Half|\"float\")")[0]) \
        .value_counts()
    if counts.empty:
        return None
    return {"BFloat16": 2, "Half": 2}.get(counts.index[0], 4)


def analyze(tables: dict, sidecar: dict | None = None, peaks_file=None, ncu: pd.DataFrame | None = None,
            ncu_phase: str | None = None, model_config: dict | None = None, workload: dict | None = None,
            dtype: str | None = None, quantization: str | None = None, kv_cache_dtype: str | None = None,
            tp: int | None = None, on_early_result=None) -> dict:
    """Everything computed from the tables: {"kernels", "summary", "classes", "phases", "top"}. `on_early_result`
    is called with the parts of the result that the figures and the Parquet kernel table need, {"kernels" (work,
    roofline, bounds), "peaks", "wall"}, as soon as they are final, before the summaries that need the wall time: a
    caller may write and draw them meanwhile (no thread of the analysis runs then, so it may fork)."""
    dev = device_name(tables) or ((sidecar or {}).get("device") or {}).get("name", "")
    props = (tables["meta"].get("device_properties") or [None])[0]
    peaks = resolve_peaks(dev, peaks_file, props) if dev or props else None
    # steps and phases of a trace without step annotations; the caller's copy of the tables gets them, so that
    # ops.parquet and the communication summary see the same steps
    resolved, notices = resolve_steps(tables, shape_of(tables, sidecar, model_config, dtype),
                                      workload or (sidecar or {}).get("workload"))
    tables.update(resolved)
    kernels = tables["kernels"]
    architecture, arch_notice = architecture_inputs(tables, sidecar, model_config, workload, dtype, quantization,
                                                    kv_cache_dtype, tp)
    tp, tp_source = tp_degree(tp, sidecar, tables["meta"])
    if architecture and tp_source == "world_size":
        notices.append(f"tensor-parallel degree {tp} taken from the trace's world size: the model's work is one "
                       f"rank's 1/{tp} shard (--tp 1 if its ranks are not tensor-parallel)")
    model_dtype = {2: "bf16", 4: "fp32"}.get(architecture[0].elem_bytes, "fp32") if architecture else "fp32"
    # Nsight Compute flushes the L2 before every kernel it measures (its default --cache-control all)
    cold_l2 = tables["meta"].get("source_format") == "ncu"
    failures: list = []   # steps whose GEMMs fit no layout of the model
    # the wall-time tables read only what the work model leaves as parsed (device, times, class, launching op):
    # on a thread beside it (interval arithmetic in NumPy, mostly without the GIL)
    wall_thread = ThreadPoolExecutor(1)
    wall_job = wall_thread.submit(walltime, dict(tables))
    k = roofline(kernel_work(kernels, architecture, failures), peaks, model_dtype, cold_l2=cold_l2)
    unmapped = layout_failure_notice(failures, architecture[0]) if architecture else None
    if unmapped:
        notices.append(unmapped)
    flagged = k[k["roof_flag"] != ""] if "roof_flag" in k else k.iloc[:0]
    if len(flagged):
        worst = flagged.sort_values("roof_pct", ascending=False).iloc[0]
        notices.append(f"{len(flagged)} kernel(s) above their roof ({100 * flagged['dur_us'].sum() / k['dur_us'].sum():.1f}% "
                       f"of kernel time), flagged in kernels.parquet `roof_flag`; the highest, {worst['short_name']} at "
                       f"{worst['roof_pct']:.0f}% of its {worst['roof']} roof: {worst['roof_flag']}")
    if arch_notice and (architecture is not None or len(k) and (k["work_source"] == "unmodeled").any()):
        notices.append(arch_notice)
    notices += unmodeled_notice(k, architecture is not None)
    if sidecar is None:
        notices.append(NO_SIDECAR)
    if kernels.empty:
        notices.append("no GPU kernels in this trace (CPU-only or capture without kernels); op tables only")
    if peaks is None and not kernels.empty:
        notices.append((f"no peaks known for device {dev!r}" if dev else "the trace names no GPU (no device "
                        "properties, no sidecar)") + ": roofline distances are not computed (run `tracer "
                       "calibrate` on it or pass --peaks)")
    classes = class_breakdown(k)
    memops = tables["memops"]
    if not memops.empty:
        mm = memops.groupby("phase").agg(kernels=("dur_us", "size"), kernel_us=("dur_us", "sum")).reset_index()
        mm["kernel_class"] = "memcpy/memset"
        classes = pd.concat([classes, mm], ignore_index=True)
        classes["pct_of_phase"] = 100 * classes["kernel_us"] / classes.groupby("phase")["kernel_us"].transform("sum")
    top = top_kernels(k)
    # the wall-time tables are needed from here on: the summaries above, which need none, ran while the thread
    # made them
    wall = wall_job.result()
    wall_thread.shutdown()   # no thread of its own left running: the hook may fork
    if on_early_result is not None:
        on_early_result({"kernels": k, "peaks": peaks, "wall": wall["gpu"]})
    figures = (sidecar or {}).get("figures") or {}
    phases = phase_summary(k, wall["gpu"], figures) if not k.empty else pd.DataFrame()
    if figures and not figures.get("unprofiled") and (sidecar or {}).get("profiler") not in (None, "none"):
        notices.append(NO_UNPROFILED)
    ncu_cmp = ncu_against_analytic(k)   # a report of one step read as the trace itself
    if ncu is not None and ncu_phase:
        step = 0 if ncu_phase == "decode" else None
        matched = merge_ncu(k, ncu, ncu_phase, step)
        ncu_cmp = ncu_comparison_by_class(matched)
        if matched.empty:
            notices.append("ncu kernels could not be aligned with the trace's kernels of that phase")
    total_us = float(k["dur_us"].sum()) if len(k) else 0.0
    summary = {
        "summary_version": SUMMARY_VERSION,
        "source": {"path": tables["meta"].get("source_path"), "format": tables["meta"].get("source_format"),
                   "device": dev, "peaks": peaks},
        "run": {key: sidecar.get(key) for key in ("workload", "backend", "profiler", "figures", "vllm_options")}
        if sidecar else None,
        "totals": {"kernels": int(len(k)), "kernel_us": total_us, "memops": int(len(memops)),
                   "memop_us": float(memops["dur_us"].sum()) if len(memops) else 0.0,
                   "ops": int(len(tables["ops"])),
                   "unmodeled_pct": float(100 * k.loc[k["work_source"] == "unmodeled", "dur_us"].sum() / total_us)
                   if total_us else None,
                   "phase_attributed_pct": float(100 * k.loc[k["phase"] != "none", "dur_us"].sum() / total_us)
                   if total_us else None},
        "phases": _records(phases),
        "classes": _records(classes),
        "top_kernels": _records(top),
        "wall": _records(wall["gpu"]),
        "host": _records(wall["host"]),
        "steps": _records(wall["steps"]),
        "ncu": _records(ncu_cmp) if not ncu_cmp.empty else None,
        "tensor_parallel": {"tp": tp, "source": tp_source,
                            "predicted": predicted_allreduce(architecture[0], architecture[1], tp)}
        if tp > 1 and architecture else None,
        "notices": notices,
    }
    _add_deployment(summary, k, architecture)
    return {"kernels": k, "summary": summary, "classes": classes, "phases": phases, "top": top, "ncu": ncu_cmp,
            "peaks": peaks, "wall": wall["gpu"], "host": wall["host"], "steps": wall["steps"],
            "step_classes": wall["step_classes"]}


UNMODELED_NOTICE_PCT = 5.0


def unmodeled_notice(k: pd.DataFrame, has_model: bool) -> list[str]:
    """A notice when more than UNMODELED_NOTICE_PCT of kernel time has no work (its roofline is unknown): how much,
    the kernels that take most of it, and what would model them."""
    total = float(k["dur_us"].sum()) if len(k) else 0.0
    unmodeled = k[k["work_source"] == "unmodeled"] if total else k.iloc[:0]
    pct = 100 * float(unmodeled["dur_us"].sum()) / total if total else 0.0
    if pct <= UNMODELED_NOTICE_PCT:
        return []
    top = unmodeled.groupby(as_str(unmodeled["short_name"]))["dur_us"].sum().nlargest(3)
    why = ("no formula of the work model backs them (analysis/work/architecture_work.py); --quantization or "
           "--kv-cache-dtype if the run was quantized" if has_model else
           "they recorded no shapes and no model is named: --model (a preset or a config.json) and --workload")
    names = ", ".join(f"{name} {100 * us / total:.1f}%" for name, us in top.items())
    return [f"{pct:.1f}% of kernel time is unmodeled (no FLOPs or bytes, no roofline): {names}; {why}"]


def _add_deployment(summary: dict, k: pd.DataFrame, architecture: tuple | None) -> None:
    """summary.json's `quantization`, `moe` and per-phase `deployment` (analysis.reports.deployment), and the routing
    assumption among the notices, for a model that is quantized or has MoE layers."""
    from analysis.reports.deployment import ROUTING_ASSUMPTION, deployment_by_phase, recorded_routing_sentence
    shape = architecture[0] if architecture else None
    if shape is None:
        return
    summary["deployment"] = _records(deployment_by_phase(k))   # a comparison sets a dense bf16 run beside
    if not (shape.quant.method or shape.moe or shape.kv_bytes):
        return
    q = shape.quant
    summary["quantization"] = {"method": q.method or None, "source": q.source or None, "precision": q.precision or None,
                               "weight_bytes": shape.weight_bytes, "act_bytes": shape.act_bytes,
                               "kv_cache_bytes": shape.cache_bytes}
    if shape.moe:
        steps = architecture[1]
        recorded = int(steps["expert_tokens"].notna().sum()) if "expert_tokens" in steps else 0
        routing = (ROUTING_ASSUMPTION if not recorded else
                   recorded_routing_sentence(recorded, len(steps)))
        summary["moe"] = {"experts": shape.experts, "experts_per_token": shape.experts_per_token,
                          "expert_intermediate": shape.expert_intermediate,
                          "shared_intermediate": shape.shared_intermediate, "routing": routing,
                          "steps_with_recorded_routing": recorded}
        if recorded < len(steps):
            summary["notices"].append(routing)


def _records(df: pd.DataFrame) -> list:
    if df is None or df.empty:
        return []
    return orjson.loads(orjson.dumps(df.replace({np.nan: None}).to_dict(orient="records"), default=str,
                                     option=orjson.OPT_SERIALIZE_NUMPY))
