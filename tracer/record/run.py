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
from tracer.record.environment import device_properties, library_versions, resolve_device
from tracer.record.nvml_sampler import NvmlSampler
from tracer.io.sidecar import write_sidecar
from tracer.record.progress import progress
from workloads.spec import Workload
from workloads.vllm_engine import VllmOptions

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
    device = resolve_device(req.device)
    req = replace(req, device=device, dtype=req.dtype or default_dtype(device))
    workloads = (req.workload,) + tuple(more_workloads)
    if len(workloads) > 1 and req.out and not Path(req.out).is_dir():
        raise TracerError("with several workloads, --out names an existing folder")
    from workloads.models import check_fits_context, model_config
    check_fits_context(model_config(req.model, req.layers), req.model,
                       [(wl.prompt_tokens, wl.output_tokens) for wl in workloads])
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
        from tracer.record import ncu, nsys
        tool = nsys if req.profiler == "nsys" else ncu
        return [p for wl, out in zip(workloads, outs) for p in tool.record_under_tool(replace(req, workload=wl), out)]
    return _record_in_process(req, list(zip(workloads, outs)))


def _record_in_process(req: RecordRequest, runs: list[tuple[Workload, Path]]) -> list[Path]:
    import torch

    dtype = getattr(torch, req.dtype)
    written: list[Path] = []
    index = int(req.device.split(":")[1]) if ":" in req.device else 0
    if req.backend == "hf":
        from tracer.record.torch_profiler import export_chrome_trace
        from workloads.hf import run_hf
        from workloads.models import build_model

        progress(f"building {req.model} ({req.dtype}) on {req.device}")
        lm, config = build_model(req.model, req.layers, dtype, req.device)
        for wl, out in runs:
            clock: list = []
            prof = _measured_context(req)
            plain, warmup = None, req.warmup
            if req.profiler == "torch":
                progress(f"running {wl.name}: {req.warmup} warm-up(s), a run without the profiler, then the "
                         "profiled run")
                plain, warmup = run_hf(lm, config, wl, req.device, req.warmup), 0
            else:
                progress(f"running {wl.name}: {req.warmup} warm-up(s), then the measured run")
            with NvmlSampler(index) as sampler:
                result = run_hf(lm, config, wl, req.device, warmup, profiler=prof, clock=clock)
            if req.profiler == "torch":
                written.append(export_chrome_trace(prof, out, sampler.samples, clock, sampler.unix_offset_ns))
            written.append(_write_run_sidecar(replace(req, workload=wl), out, config, result, sampler, plain))
        return written

    from workloads.models import model_config, saved_checkpoint
    from workloads.vllm_engine import build_engine, engine_max_len, newest_profiler_trace, run_vllm

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
            plain, warmup = None, req.warmup
            if req.profiler == "torch":
                progress(f"running {wl.name}: {req.warmup} warm-up(s), a run without the profiler, then the "
                         "profiled run")
                plain, warmup = run_vllm(llm, config, wl, req.warmup), 0
            else:
                progress(f"running {wl.name}: {req.warmup} warm-up(s), then the measured run")
            with NvmlSampler(index) as sampler:
                result = run_vllm(llm, config, wl, warmup, profile=req.profiler == "torch", capture=capture)
            if req.profiler == "torch":
                written.append(_move_trace(newest_profiler_trace(pdir), out, sampler))
            written.append(_write_run_sidecar(replace(req, workload=wl, vllm=opts), out, config, result, sampler,
                                              plain))
        shutdown_engine(llm)
    return written


def shutdown_engine(llm) -> None:
    """Stop vLLM's worker processes now, so their shutdown logs come before our last line."""
    try:
        llm.llm_engine.engine_core.shutdown()
    except Exception:
        pass


UNPROFILED_KEYS = ("ttft_ms", "decode_ms_per_token_mean", "decode_ms_per_token_p50", "decode_ms_per_token_p99",
                   "decode_steps", "total_s", "output_tokens_per_s")


def _write_run_sidecar(req: RecordRequest, out: Path, config, result, sampler, plain=None) -> Path:
    """The sidecar; `plain`, the same workload run without any profiler in this process after the warm-ups, gives
    `figures.unprofiled` and `figures.profiler_inflation` (profiled over unprofiled decode ms/token)."""
    figures = result.figures() | sampler.summary() | {"peak_rss_bytes": _peak_rss_bytes()}
    if plain is not None:
        p = plain.figures()
        figures["unprofiled"] = {key: p[key] for key in UNPROFILED_KEYS}
        a, b = figures.get("decode_ms_per_token_mean"), p.get("decode_ms_per_token_mean")
        figures["profiler_inflation"] = a / b if a and b else None
    return write_sidecar(out, run_metadata(req, config, figures))


def _measured_context(req: RecordRequest, vllm: bool = False):
    """What brackets the measured run: torch.profiler, or the CUDA profiler API range for nsys/ncu children."""
    if req.profiler == "torch" and not vllm:
        from tracer.record.torch_profiler import torch_profile
        return torch_profile(req.device)
    if req.profiler == "capture":
        import torch
        return torch.cuda.profiler.profile()  # cudaProfilerStart / cudaProfilerStop
    return None


def _move_trace(src: Path, out: Path, sampler) -> Path:
    """vLLM's profiler trace, laid out for Perfetto like ours (phase track of its steps, overlap lanes, NVML
    counters placed by the Unix clock: the engine core is another process)."""
    from tracer.record.torch_profiler import read_trace, write_trace
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
        "device": device_properties(req.device),
        "versions": library_versions(),
        "figures": figures,
    }
