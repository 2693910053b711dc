"""Nsight Compute CSV (`ncu --csv --page raw`, one row per kernel, a units row under the header) into a table of
measured work: duration, DRAM bytes, FLOPs from the tensor path and the fp16/fp32/fp64 pipes."""
from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd

from tracer.errors import TracerError
from tracer.parse.load import read_bytes


_TIME_US = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3, "second": 1e6}
_PREFIX = {"K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}


def _unit_factor(unit: str) -> float:
    """ncu scales values to readable units (usecond, Mbyte, Kinst): factor back to us, bytes, counts."""
    unit = (unit or "").strip()
    if unit in _TIME_US:
        return _TIME_US[unit]
    return _PREFIX.get(unit[:1], 1.0) if len(unit) > 1 and unit[1:2].islower() else 1.0


def _col(df: pd.DataFrame, units: dict, name: str) -> pd.Series:
    if name not in df.columns:
        return pd.Series(0.0, index=df.index)
    values = pd.to_numeric(df[name].astype(str).str.replace(",", ""), errors="coerce").fillna(0.0)
    return values * _unit_factor(units.get(name, ""))


_TENSOR = re.compile(r"^sm__ops_path_tensor_src_[a-z0-9]+_dst_[a-z0-9]+\.sum$")


def ncu_kernels(path: str | Path) -> pd.DataFrame:
    """Columns: ncu_id, name, dur_us, dram_bytes, l2_bytes (lts__t_bytes: all L2 traffic), flops, tensor_flops, fp32_flops, fp16_flops, fp64_flops."""
    path = Path(path)
    text = read_bytes(path).decode("utf-8", errors="replace")
    lines = [ln for ln in text.splitlines() if not ln.startswith("==")]  # ncu's own log lines
    try:
        df = pd.read_csv(io.StringIO("\n".join(lines)), dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise TracerError(f"{path}: not an ncu CSV ({e})") from None
    if "Kernel Name" not in df.columns:
        raise TracerError(f"{path}: not an ncu raw-page CSV (no 'Kernel Name' column); export with "
                          "`ncu --import REPORT --csv --page raw`")
    units: dict = {}
    if len(df) and pd.isna(df.iloc[0].get("ID")):  # the units row under the header
        units = {c: ("" if pd.isna(v) else str(v)) for c, v in df.iloc[0].items()}
        df = df.iloc[1:]
    df = df.reset_index(drop=True)

    def col(name):
        return _col(df, units, name)

    dur = col("gpu__time_duration.sum")
    sass = "sm__sass_thread_inst_executed_op_{}_pred_on.sum"
    fp32 = col(sass.format("fadd")) + col(sass.format("fmul")) + 2 * col(sass.format("ffma"))
    fp16 = col(sass.format("hadd")) + col(sass.format("hmul")) + 2 * col(sass.format("hfma"))
    fp64 = col(sass.format("dadd")) + col(sass.format("dmul")) + 2 * col(sass.format("dfma"))
    # tensor path counters count FLOPs (a bf16 2048x4096x1024 GEMM read 2*m*n*k on the H100)
    tensor = sum((col(c) for c in df.columns if _TENSOR.match(c)), pd.Series(0.0, index=df.index))
    return pd.DataFrame({"ncu_id": pd.to_numeric(df.get("ID"), errors="coerce"), "name": df["Kernel Name"],
                         "dur_us": dur, "dram_bytes": col("dram__bytes_read.sum")
                         + col("dram__bytes_write.sum"), "l2_bytes": col("lts__t_bytes.sum"), "tensor_flops": tensor, "fp32_flops": fp32,
                         "fp16_flops": fp16, "fp64_flops": fp64, "flops": tensor + fp32 + fp16 + fp64,
                         "tensor_inst": col("sm__inst_executed_pipe_tensor.sum"),
                         "grid": df.get("Grid Size", pd.Series("", index=df.index)).fillna("").astype(str)
                         .str.strip("()").str.replace(" ", "")})


def tables_from_ncu(path: str | Path, phase: str) -> dict:
    """An ncu report of one step as trace tables: its kernels in launch order on one back-to-back timeline
    (ncu serialises and replays kernels, so only order and durations are real), all in step 0 of `phase`;
    the measured counters ride along as `ncu_*` columns of the same rows."""
    from tracer.parse.classify import classify_kernels, short_kernel_name
    from tracer.schema import conform, empty

    measured = ncu_kernels(path).sort_values("ncu_id", kind="stable").reset_index(drop=True)
    dur = measured["dur_us"].to_numpy()
    names = measured["name"].astype(str)
    kernels = conform(pd.DataFrame({
        "name": names, "short_name": names.map(short_kernel_name),
        "kernel_class": classify_kernels(names, pd.Series([""] * len(names))),
        "start_us": dur.cumsum() - dur, "dur_us": dur, "device": 0, "stream": 0, "grid": measured["grid"],
        "phase": phase, "step": 0, "range_name": phase}), "kernels")
    for col in ("flops", "tensor_flops", "tensor_inst", "dram_bytes", "l2_bytes"):
        kernels[f"ncu_{col}"] = measured[col].to_numpy()
    return {"kernels": kernels, "memops": empty("memops"), "ops": empty("ops"), "ranges": empty("ranges"),
            "runtime": empty("runtime"), "meta": {"source_path": str(path), "source_format": "ncu", "device_properties": []}}
