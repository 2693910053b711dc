"""The Python API: load a trace, analyse it, compare runs, record a workload. `tracer analyze`, `compare` and
`record` are thin layers over these functions; results are frozen dataclasses whose tables are pandas DataFrames.

pandas, torch and the analysis modules are imported inside the functions, so `import tracer` stays cheap.
Bad input raises `tracer.TracerError` with a one-line message (the CLI prints it as `tracer: error: ...`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from tracer.errors import TracerError
from tracer.results import Analysis, Comparison

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Trace", "Analysis", "Comparison", "load", "compare", "record", "work_model_inputs"]


@dataclass(frozen=True, eq=False, repr=False)
class Trace:
    """One trace's tables (columns and units in tracer/schema.py and docs/files.md) and its sidecar.

    >>> import tracer
    >>> t = tracer.load("tests/data/h100_hf_gpt2_decode_b16.json.gz")
    >>> t.kernels.groupby("phase", observed=True)["dur_us"].count().to_dict()
    {'decode': 15687, 'prefill': 237}
    """
    path: Path | None
    tables: Mapping[str, Any]
    sidecar: dict | None = None

    @property
    def kernels(self) -> pd.DataFrame:
        return self.tables["kernels"]

    @property
    def ops(self) -> pd.DataFrame:
        return self.tables["ops"]

    @property
    def ranges(self) -> pd.DataFrame:
        return self.tables["ranges"]

    @property
    def memops(self) -> pd.DataFrame:
        return self.tables["memops"]

    @property
    def meta(self) -> dict:
        """The trace's own metadata: source path and format, device properties, ..."""
        return self.tables["meta"]

    @property
    def name(self) -> str:
        return self.path.name if self.path else "trace"

    def __repr__(self) -> str:
        return (f"Trace({self.name!r}, format={self.meta.get('source_format')!r}, kernels={len(self.kernels)}, "
                f"ops={len(self.ops)}, sidecar={'yes' if self.sidecar else 'no'})")

    def analyze(self, peaks: str | Path | None = None, model: str | dict | None = None,
                workload: str | dict | None = None, dtype: str | None = None, layers: int | None = None,
                ncu: str | Path | None = None, ncu_phase: str | None = None, quantization: str | None = None,
                kv_cache_dtype: str | None = None, tp: int | None = None) -> Analysis:
        """Work, roofline and bounds per kernel, and the per-phase, per-class and top-kernel summaries.

        peaks: a peaks JSON from `tracer calibrate` (default: the stored calibration, else the datasheet).
        model, layers, workload, dtype: for traces without our sidecar, the model (a preset name, a local
        checkpoint folder, a config.json path or a config dict) and the workload (a name such as
        decode_b16_s128_o64) that give shape-less kernels their work. ncu, ncu_phase: an Nsight Compute CSV of
        the same workload whose counters are set against the analytic work. tp: the tensor-parallel degree (each
        rank's work is its shard; default: the sidecar's, else the trace's distributedInfo.world_size).

        >>> import tracer
        >>> a = tracer.load("tests/data/h100_hf_gpt2_decode_b16.json.gz").analyze()
        >>> a.phases.set_index("phase")["memory_bound_pct"].round(1).to_dict()
        {'decode': 42.5, 'prefill': 17.2}
        """
        return _analyze(self, peaks, ncu, ncu_phase,
                        work_model_inputs(model, layers, workload, dtype, quantization, kv_cache_dtype, tp=tp))


def load(path: str | Path, cache: bool = True) -> Trace:
    """Parse a trace (Chrome/Kineto JSON, plain or gzip; nsys .sqlite or .nsys-rep; Nsight Compute raw CSV) into
    tables, with the sidecar `<stem>.meta.json` beside it when there is one. `cache`: read and write the Parquet
    cache beside the trace (`<trace>.tracer-cache/`).

    >>> import tracer
    >>> t = tracer.load("tests/data/h100_hf_gpt2_decode_b16.json.gz")
    >>> t.sidecar["workload"]["name"], t.meta["source_format"]
    ('decode_b16_s128_o64', 'chrome')
    """
    from tracer.io.sidecar import read_sidecar

    path = Path(path)
    side = read_sidecar(path)
    if path.name.endswith((".ncu.csv", ".ncu.csv.gz")):
        from tracer.parse.ncu import tables_from_ncu
        s = side or {}
        phase = ((s.get("figures") or {}).get("measured_step") or {}).get("phase") or (
            "prefill" if (s.get("workload") or {}).get("kind") == "prefill" else "decode")
        tables = tables_from_ncu(path, phase)
        tables["meta"]["device_properties"] = [s["device"]] if s.get("device") else []
        return Trace(path, tables, side or None)
    from tracer.parse import load_tables
    return Trace(path, load_tables(path, use_cache=cache), side)


def compare(traces: Iterable[str | Path | Trace | Analysis], peaks: str | Path | None = None,
            model: str | dict | None = None, workload: str | dict | None = None, dtype: str | None = None,
            layers: int | None = None, labels: Iterable[str] | None = None, quantization: str | None = None,
            kv_cache_dtype: str | None = None) -> Comparison:
    """Analyse each trace (paths and Traces are analysed with these options; Analyses are taken as they are) and
    set them side by side, the first as the base of the ratios. Labels: `labels`, else `backend:workload` from
    the sidecar, else the file's stem; repeated ones get #2, #3.

    >>> import tracer
    >>> c = tracer.compare(["tests/data/h100_hf_gpt2_decode_b16.json.gz",
    ...                     "tests/data/h100_vllm_gpt2_decode_b16_graphs.json.gz"], labels=["hf", "vllm"])
    >>> c.table.loc["decode_gpu_busy_ms"].astype(float).round(2).to_dict()
    {'hf': 66.46, 'vllm': 36.07, 'vllm / hf': 0.54}
    """
    from analysis.reports.compare import compare_results

    items = list(traces)
    if len(items) < 2:
        raise TracerError("a comparison needs at least two traces")
    wm = work_model_inputs(model, layers, workload, dtype, quantization, kv_cache_dtype)
    analyses = []
    for item in items:
        if isinstance(item, Analysis):
            analyses.append(item)
            continue
        t = item if isinstance(item, Trace) else load(item)
        analyses.append(_analyze(t, peaks, None, None, wm))
    names = list(labels) if labels is not None else [_label(a.trace) for a in analyses]
    if len(names) != len(analyses):
        raise TracerError(f"{len(names)} labels for {len(analyses)} traces")
    runs = tuple(zip(_unique(names), analyses))
    return Comparison(runs, compare_results([(label, dict(a.result)) for label, a in runs]))


def record(workload: str | Iterable[str], backend: str = "hf", model: str = "gpt2", *, layers: int | None = None,
           device: str = "auto", dtype: str | None = None, profiler: str = "torch", out: str | Path | None = None,
           warmup: int = 1, vllm: Any = None, ncu_range: str | None = None,
           ncu_launch_count: int = 400, tool_path: str | None = None, repeat: int = 5, profiled_repeats: int = 3,
           sdpa_backend: str = "auto") -> list[Path]:
    """Run a named workload (several: a list or comma-separated, on one loaded model or engine) on one backend
    under one profiler, like `tracer record`; return the files written, for each workload its trace files first
    and its sidecar last. `vllm`: a VllmOptions or a dict of its fields (enforce_eager, gpu_memory_utilization,
    max_num_batched_tokens, max_num_seqs, prefix_caching). `repeat`: timed runs without a profiler (medians with
    their spread in the sidecar's figures.unprofiled); `profiled_repeats`: profiled runs; `sdpa_backend` (HF):
    torch's attention backend. Load the trace with `tracer.load(paths[0])`.

    >>> import tracer
    >>> paths = tracer.record("decode_b1_s16_o3", model="gpt2", layers=1, device="cpu", out="tiny.json.gz")
    >>> [p.name for p in paths]
    ['tiny.json.gz', 'tiny.meta.json']
    """
    from tracer.recording.run import RecordRequest, record as run_record
    from workloads.spec import parse_workload
    from workloads.vllm_start import VllmOptions

    names = workload.split(",") if isinstance(workload, str) else list(workload)
    wls = [parse_workload(w.strip()) for w in names if w.strip()]
    if not wls:
        raise TracerError("record needs a workload, e.g. decode_b16")
    try:
        opts = vllm if isinstance(vllm, VllmOptions) else VllmOptions(**(vllm or {}))
    except TypeError as e:
        raise TracerError(f"vllm options: {e}") from None
    req = RecordRequest(workload=wls[0], backend=backend, model=model, layers=layers, device=device, dtype=dtype,
                        profiler=profiler, out=str(out) if out is not None else None, warmup=warmup, vllm=opts,
                        ncu_range=ncu_range, ncu_launch_count=ncu_launch_count, tool_path=tool_path, repeat=repeat,
                        profiled_repeats=profiled_repeats, sdpa_backend=sdpa_backend)
    return run_record(req, tuple(wls[1:]))


def work_model_inputs(model: str | dict | None, layers: int | None = None, workload: str | dict | None = None,
                      dtype: str | None = None, quantization: str | None = None,
                      kv_cache_dtype: str | None = None, tp: int | None = None) -> dict:
    """What the user named of a trace's model and workload, as plain data for the analysis layer: a preset name,
    checkpoint folder or config.json path becomes a config dict; a workload name its batch and token counts;
    a quantization method name is checked against those the work model knows."""
    out: dict = {"dtype": dtype, **({"tp": int(tp)} if tp else {})}
    if quantization:
        from analysis.work.architecture import quantization_named
        if quantization_named(quantization, "option") is None:
            from analysis.work.architecture import known_quantization_methods
            raise TracerError(f"--quantization {quantization!r}: the work model knows "
                              f"{', '.join(known_quantization_methods())}")
        out["quantization"] = quantization
    if kv_cache_dtype and kv_cache_dtype != "auto":
        out["kv_cache_dtype"] = kv_cache_dtype
    if isinstance(model, Mapping):
        out["model_config"] = dict(model)
    elif model:
        model = str(model)
        if model.endswith(".json") and Path(model).is_file():
            import orjson
            try:
                out["model_config"] = orjson.loads(Path(model).read_bytes())
            except orjson.JSONDecodeError as e:
                raise TracerError(f"--model {model}: not a JSON config ({e})") from None
        else:
            from workloads.models import config_dict
            out["model_config"] = config_dict(model, layers)
    if isinstance(workload, Mapping):
        out["workload"] = dict(workload)
    elif workload:
        from workloads.spec import parse_workload
        w = parse_workload(workload)
        out["workload"] = {"name": w.name, "batch": w.batch, "prompt_tokens": w.prompt_tokens,
                           "output_tokens": w.output_tokens}
    return out


def _analyze(trace: Trace, peaks, ncu, ncu_phase, work_model: dict) -> Analysis:
    return Analysis(trace, analysis_of(trace, peaks, ncu, ncu_phase, work_model)[1])


def analysis_of(trace: Trace, peaks=None, ncu=None, ncu_phase=None, work_model: dict | None = None,
                on_early_result=None):
    """(tables, result) of one loaded trace: analysis.reports.report.analyze (`on_early_result`: its hook for the
    parts final before the summaries), the parser's notices first, and the communication summary where the trace
    has communication kernels. The one way in for `tracer analyze`, `tracer compare` and `Trace.analyze`."""
    from analysis.reports.report import analyze

    ncu_table = None
    if ncu:
        from tracer.parse.ncu import ncu_kernels
        from tracer.io.sidecar import read_sidecar
        ncu_table = ncu_kernels(ncu)
        ncu_phase = ncu_phase or (read_sidecar(ncu) or {}).get("ncu_range") or "decode"
    tables = dict(trace.tables)
    result = analyze(tables, trace.sidecar, peaks, ncu_table, ncu_phase, **(work_model or {}),
                     on_early_result=on_early_result)
    result["summary"]["notices"][:0] = tables["meta"].get("notices", [])   # dropped invalid events first
    _add_communication(trace, tables, result)
    return tables, result


def _add_communication(trace: Trace, tables: dict, result: dict) -> None:
    """summary.json's `communication` for a trace with communication kernels (analysis/timing/communication.py)."""
    k = tables["kernels"]
    if trace.path is None or k.empty or not (k["kernel_class"] == "communication").any():
        return
    import pandas as pd

    from analysis.timing.communication import collectives, communication_summary, step_times
    from tracer.parse.comms import trace_comms
    tables["comms"] = trace_comms(str(trace.path), tables)
    tensor_parallel = result["summary"].get("tensor_parallel") or {}
    result["summary"]["communication"] = communication_summary(collectives(tables), step_times(tables),
                                                               pd.DataFrame(), [tensor_parallel.get("predicted")])


def _label(trace: Trace) -> str:
    side = trace.sidecar or {}
    if side.get("backend"):
        eager = "-eager" if (side.get("vllm_options") or {}).get("enforce_eager") else ""
        return f"{side['backend']}{eager}:{side.get('workload', {}).get('name', '')}"
    if trace.path is None:
        return "trace"
    from tracer.io.sidecar import trace_stem
    return trace_stem(trace.path).name


def _unique(labels: list[str]) -> list[str]:
    # Two runs of one workload (or one file given twice) share a label; the comparison table needs distinct ones.
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label}#{seen[label]}")
    return out
