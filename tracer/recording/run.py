"""`tracer record`: run one workload on one backend under one profiler and write the trace and its sidecar.

torch.profiler and `none` run in this process. nsys and ncu run this same command again in a child process under
the tool, with `--profiler capture`: the child brackets its measured run with cudaProfilerStart/Stop so the
tool's capture leaves the warm-ups out.
"""
from __future__ import annotations

import contextlib
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from tracer.errors import TracerError
from tracer.recording.environment import device_properties, library_versions, resolve_device
from tracer.recording.nvml_sampler import NvmlSampler
from tracer.io.sidecar import write_sidecar
from tracer.recording.progress import progress
from workloads.spec import Workload
from workloads.vllm_start import VllmOptions

PROFILERS = ("torch", "nsys", "ncu", "none")
BACKENDS = ("hf", "vllm")


@dataclass(frozen=True)
class RecordRequest:
    workload: Workload
    backend: str = "hf"
    model: str = "gpt2"
    layers: int | None = None
    device: str = "auto"
    dtype: str | None = None
    profiler: str = "torch"
    out: str | None = None
    warmup: int = 1
    vllm: VllmOptions = field(default_factory=VllmOptions)
    ncu_range: str | None = None       # phase whose kernels ncu measures (prefill or decode)
    ncu_launch_count: int = 400
    tool_path: str | None = None       # explicit nsys / ncu executable
    repeat: int = 5                    # timed runs without a profiler after the warm-ups (medians, spreads)
    profiled_repeats: int = 3          # profiled runs (--profiler torch); the last one's trace is written
    sdpa_backend: str = "auto"         # HF: torch's attention backend (workloads/sdpa.py)


def default_dtype(device: str) -> str:
    return "bfloat16" if device.startswith("cuda") else "float32"


def default_out(req: RecordRequest, device: str) -> Path:
    model = Path(req.model).name if Path(req.model).is_dir() else req.model
    layers = f"_L{req.layers}" if req.layers else ""
    eager = "_eager" if req.backend == "vllm" and req.vllm.enforce_eager else ""
    quant = f"_{req.vllm.quantization}" if req.vllm.quantization else ""
    kv = f"_kv{req.vllm.kv_cache_dtype.split('_')[0]}" if req.vllm.kv_cache_dtype else ""
    stem = f"{req.backend}_{model}{layers}{quant}{kv}_{req.workload.name}_{device.split(':')[0]}{eager}"
    suffix = {"torch": ".json.gz", "nsys": ".nsys-rep", "ncu": ".ncu.csv", "none": ".json.gz",
              "capture": ".json.gz"}[req.profiler]
    return Path("traces") / (stem + suffix)


def record(req: RecordRequest, more_workloads: tuple[Workload, ...] = ()) -> list[Path]:
    """Run the request (and `more_workloads` on the same loaded model or engine, which saves engine starts);
    return the files written: for each workload, its trace files first and its sidecar last."""
    if req.backend not in BACKENDS:
        raise TracerError(f"--backend {req.backend}: expected one of {', '.join(BACKENDS)}")
    if req.backend == "hf" and (req.vllm.quantization or req.vllm.kv_cache_dtype):
        raise TracerError("--quantization and --kv-cache-dtype are vLLM options; the HF backend runs the model in "
                          "its --dtype (record a quantized run with --backend vllm)")
    if req.repeat < 1 or req.profiled_repeats < 1:
        raise TracerError(f"--repeat {req.repeat}, --profiled-repeats {req.profiled_repeats}: each must be 1 or more")
    device = resolve_device(req.device)
    req = replace(req, device=device, dtype=req.dtype or default_dtype(device))
    workloads = (req.workload,) + tuple(more_workloads)
    if len(workloads) > 1 and req.out and not Path(req.out).is_dir():
        raise TracerError("with several workloads, --out names an existing folder")
    from workloads.models import check_fits_context
    check_fits_context(req.model, req.layers, [(wl.prompt_tokens, wl.output_tokens) for wl in workloads])
    outs = []
    for wl in workloads:
        one = replace(req, workload=wl)
        out = Path(req.out) if req.out and len(workloads) == 1 and not Path(req.out).is_dir() else None
        if out is None:
            out = default_out(one, device)
            if req.out:
                out = Path(req.out) / out.name
        out.parent.mkdir(parents=True, exist_ok=True)
        outs.append(out)
    if req.profiler in ("nsys", "ncu"):
        if not device.startswith("cuda"):
            raise TracerError(f"--profiler {req.profiler} needs a CUDA GPU; this run's device is {device}")
        from tracer.recording import ncu, nsys
        tool = nsys if req.profiler == "nsys" else ncu
        return [p for wl, out in zip(workloads, outs) for p in tool.record_under_tool(replace(req, workload=wl), out)]
    return _record_in_process(req, list(zip(workloads, outs)))


def _record_in_process(req: RecordRequest, runs: list[tuple[Workload, Path]]) -> list[Path]:
    import torch

    dtype = getattr(torch, req.dtype)
    written: list[Path] = []
    index = int(req.device.split(":")[1]) if ":" in req.device else 0
    if req.backend == "hf":
        from workloads.models import build_model
        from workloads.sdpa import sdpa_backend

        progress(f"building {req.model} ({req.dtype}) on {req.device}")
        lm, config = build_model(req.model, req.layers, dtype, req.device)
        with sdpa_backend(req.sdpa_backend):
            for wl, out in runs:
                written += _record_hf(req, lm, config, wl, out, index)
        return written

    from workloads.models import model_config, saved_checkpoint
    from workloads.vllm_start import build_engine, engine_max_len

    config = model_config(req.model, req.layers)
    progress(f"saving {req.model} ({req.dtype}) as a local checkpoint for vLLM")
    model_dir = saved_checkpoint(req.model, req.layers, req.dtype)
    max_len = engine_max_len(config, max(wl.prompt_tokens + wl.output_tokens for wl, _ in runs))
    with tempfile.TemporaryDirectory(prefix="tracer-vllm-prof-") as pdir:
        progress(f"starting the vLLM engine on {req.device} (its log is shown once it is up; TRACER_DEBUG=1: live)")
        opts = req.vllm if req.vllm.max_num_seqs else replace(req.vllm, max_num_seqs=max(256, *(wl.batch for wl, _ in runs)))
        capture = (req.ncu_range or "all") if req.profiler == "capture" else None
        llm = build_engine(model_dir, req.device, req.dtype, opts, max_len,
                           profile_dir=pdir if req.profiler == "torch" else None, in_process=capture is not None)
        for wl, out in runs:
            written += _record_vllm(replace(req, vllm=opts), llm, config, wl, out, index, pdir, capture)
        shutdown_engine(llm)
    return written


def _plan_line(req: RecordRequest, wl: Workload, extra: str = "") -> str:
    """What the run is about to do, in the order it does it."""
    if req.profiler == "capture":
        return f"running {wl.name}: {req.warmup} warm-up(s), then the measured run"
    parts = [f"{req.warmup} warm-up(s)", f"{req.repeat} run(s) without a profiler"] + ([extra] if extra else [])
    if req.profiler == "torch":
        parts.append(f"{req.profiled_repeats} profiled run(s)")
    return f"running {wl.name}: " + ", ".join(parts)


def _record_hf(req: RecordRequest, lm, config, wl: Workload, out: Path, index: int) -> list[Path]:
    """Warm-ups, the unprofiled repeats of the annotated loop and of generate() in turn, the profiled repeats (the
    last one's trace is written), then which SDPA backend each ran; the sidecar."""
    from workloads.hf import run_hf
    from workloads.hf_generate import generate_figures, generate_runs

    progress(_plan_line(req, wl, f"generate() {req.repeat} time(s)"))
    if req.profiler == "capture":
        with NvmlSampler(index) as sampler:
            result = run_hf(lm, config, wl, req.device, req.warmup, profiler=_measured_context(req))
        return [_write_run_sidecar(replace(req, workload=wl), out, config, result, sampler)]
    sample_plain = req.profiler != "torch"   # NVML samples the run whose figures the sidecar keeps
    # The loop's runs and generate()'s alternate, so that a slow spell of the host falls on both alike: on a lent
    # H200, generate() timed after the loop's five runs was 43% slower in one record and 6% in the next, the
    # loop's medians 3% apart (tests/device/call13_admission.sh, 2026-12-04).
    generate_runs(lm, config, wl, req.device, repeats=0, warmup=req.warmup)
    plain, timed_generate, sampler = [], [], None
    for i in range(req.repeat):
        sampled = sample_plain and i == req.repeat - 1
        with (NvmlSampler(index) if sampled else contextlib.nullcontext()) as samples:
            plain.append(run_hf(lm, config, wl, req.device, req.warmup if i == 0 else 0))
        sampler = samples if sampled else sampler
        timed_generate += generate_runs(lm, config, wl, req.device, repeats=1, warmup=0)
    generate = generate_figures(timed_generate)
    profiled, written, result = [], [], plain[-1]
    if req.profiler == "torch":
        from tracer.recording.torch_profiler import export_chrome_trace
        profiled = [run_hf(lm, config, wl, req.device, 0, profiler=_measured_context(req))
                    for _ in range(req.profiled_repeats - 1)]
        clock: list = []
        prof = _measured_context(req)
        with NvmlSampler(index) as sampler:
            result = run_hf(lm, config, wl, req.device, 0, profiler=prof, clock=clock)
        profiled.append(result)
        written.append(export_chrome_trace(prof, out, sampler.samples, clock, sampler.unix_offset_ns))
    attention = _hf_attention(req, lm, config, wl)
    written.append(_write_run_sidecar(replace(req, workload=wl), out, config, result, sampler, plain, profiled,
                                      generate, attention))
    return written


def _hf_attention(req: RecordRequest, lm, config, wl: Workload) -> dict:
    """The SDPA backend asked for and the one torch ran in each phase, for the annotated loop (no attention mask)
    and for generate() (with one): one prefill and one decode step of each under a CPU-only profiler."""
    import torch

    from workloads.hf import run_hf
    from workloads.hf_generate import generation_config
    from workloads.prompts import synthetic_prompt_ids
    from workloads.sdpa import describe, probe_backends

    layers = config.num_hidden_layers if hasattr(config, "num_hidden_layers") else config.n_layer
    two = Workload(wl.kind, wl.batch, wl.prompt_tokens, 2)
    ids = torch.tensor(synthetic_prompt_ids(wl.batch, wl.prompt_tokens, config.vocab_size), device=req.device)

    def generate():
        with torch.inference_mode():
            lm.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=generation_config(config, 2))

    loop = probe_backends(lambda: run_hf(lm, config, two, req.device, 0), layers)
    gen = probe_backends(generate, layers)
    return {"sdpa_backend": req.sdpa_backend, "sdpa_backend_used": describe(loop),
            "sdpa_backend_used_generate": describe(gen),
            "attn_implementation": getattr(config, "_attn_implementation", None)}


def _record_vllm(req: RecordRequest, llm, config, wl: Workload, out: Path, index: int, pdir: str,
                 capture: str | None) -> list[Path]:
    from workloads.vllm_engine import newest_profiler_trace, run_vllm

    progress(_plan_line(req, wl))
    if capture is not None:
        with NvmlSampler(index) as sampler:
            result = run_vllm(llm, config, wl, req.warmup, capture=capture)
        return [_write_run_sidecar(replace(req, workload=wl), out, config, result, sampler)]
    sample_plain = req.profiler != "torch"   # NVML samples the run whose figures the sidecar keeps
    plain, peak = [], None   # the first run's warm-ups sample the KV-cache use; the later runs carry its peak
    for i in range(req.repeat):
        sampled = sample_plain and i == req.repeat - 1
        with (NvmlSampler(index) if sampled else contextlib.nullcontext()) as samples:
            plain.append(run_vllm(llm, config, wl, req.warmup if i == 0 else 0, kv_usage_peak=peak))
        sampler = samples if sampled else None
        peak = plain[-1].extra.get("kv_cache_usage_peak")
    profiled, written, result = [], [], plain[-1]
    if req.profiler == "torch":
        profiled = [run_vllm(llm, config, wl, 0, profile=True, kv_usage_peak=peak)
                    for _ in range(req.profiled_repeats - 1)]
        with NvmlSampler(index) as sampler:
            result = run_vllm(llm, config, wl, 0, profile=True, kv_usage_peak=peak)
        profiled.append(result)
        written.append(_move_trace(newest_profiler_trace(pdir), out, sampler))
    written.append(_write_run_sidecar(replace(req, workload=wl), out, config, result, sampler, plain, profiled))
    return written


def shutdown_engine(llm) -> None:
    """Stop vLLM's worker processes now, so their shutdown logs come before our last line."""
    try:
        llm.llm_engine.engine_core.shutdown()
    except Exception:
        pass


def _write_run_sidecar(req: RecordRequest, out: Path, config, result, sampler, plain=(), profiled=(),
                       generate: dict | None = None, attention: dict | None = None) -> Path:
    """The sidecar. `plain`, the workload's runs without any profiler after the warm-ups, gives
    `figures.unprofiled` (each timing figure the median over the runs, with `<figure>_spread_pct`, `runs`,
    `per_run`; HF adds generate()'s figures); `profiled`, the profiled runs, `figures.profiled` the same way, and
    `figures.profiler_inflation` is the profiled median over the unprofiled median of decode ms/token. The
    top-level figures are the written trace's run (under `--profiler none`, the medians)."""
    from workloads.repeats import TIMING_KEYS, repeated_figures

    figures = result.figures() | sampler.summary() | {"peak_rss_bytes": _peak_rss_bytes()} | (attention or {})
    if plain:
        unprofiled = repeated_figures([r.figures() for r in plain]) | {"decode_steps": result.figures()["decode_steps"]}
        figures["unprofiled"] = unprofiled | (generate or {})
        if req.profiler == "none":   # no profiled run: the medians are this record's figures
            figures.update({key: unprofiled[key] for key in TIMING_KEYS})
    if plain and profiled:
        figures["profiled"] = repeated_figures([r.figures() for r in profiled])
        a, b = figures["profiled"]["decode_ms_per_token_mean"], figures["unprofiled"]["decode_ms_per_token_mean"]
        figures["profiler_inflation"] = a / b if a and b else None
    return write_sidecar(out, run_metadata(req, config, figures))


def _measured_context(req: RecordRequest, vllm: bool = False):
    """What brackets the measured run: torch.profiler, or the CUDA profiler API range for nsys/ncu children."""
    if req.profiler == "torch" and not vllm:
        from tracer.recording.torch_profiler import torch_profile
        return torch_profile(req.device)
    if req.profiler == "capture":
        import torch
        return torch.cuda.profiler.profile()  # cudaProfilerStart / cudaProfilerStop
    return None


def _move_trace(src: Path, out: Path, sampler) -> Path:
    """vLLM's profiler trace, laid out for Perfetto like ours (phase track of its steps, overlap lanes, NVML
    counters placed by the Unix clock: the engine core is another process)."""
    from tracer.recording.torch_profiler import read_trace, write_trace
    write_trace(read_trace(src), out, sampler.samples, (), sampler.unix_offset_ns)
    src.unlink()
    return out


def _peak_rss_bytes() -> int:
    """This process's peak resident memory (on the CPU backend, model and activations live here)."""
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_metadata(req: RecordRequest, config, figures: dict) -> dict:
    wl = req.workload
    return {
        "tracer_sidecar_version": 1,
        "workload": {"name": wl.name, "kind": wl.kind, "batch": wl.batch, "prompt_tokens": wl.prompt_tokens,
                     "output_tokens": wl.output_tokens, "decode_steps": wl.decode_steps},
        "backend": req.backend,
        "profiler": req.profiler,
        "model": {"name": req.model, "layers_override": req.layers, "dtype": req.dtype,
                  "config": config.to_dict() if hasattr(config, "to_dict") else {}},
        "vllm_options": asdict(req.vllm) if req.backend == "vllm" else None,
        "warmup_runs": req.warmup,
        "repeats": {"unprofiled": req.repeat, "profiled": req.profiled_repeats if req.profiler == "torch" else 0},
        "device": device_properties(req.device),
        "versions": library_versions(),
        "figures": figures,
    }
