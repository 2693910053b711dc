"""The tensor precision each kernel's math runs at, so that it is held against the compute roof of that precision
(an FP8 GEMM against the FP8 peak, twice the bf16 one on Hopper) and never against another.

A GEMM or attention kernel names its element type where the library spells it (CUTLASS `float_e4m3_t`, vLLM's
`cutlass_3x_gemm_sm90_fp8`, `int8` GEMMs); a kernel that does not (vLLM's Triton fused_moe) takes the precision of
the projection it computes in a quantized model. Other kernels run on CUDA cores: "".
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from analysis.work.architecture import ModelShape
from analysis.work.architecture_work import QUANTIZED_PROJECTIONS

_FP8 = re.compile(r"e4m3|e5m2|_fp8|fp8_|Float8", re.I)
_INT8 = re.compile(r"int8|_s8|s8s8|i8i8", re.I)
# kernels that dequantize 4-bit weights and multiply in 16 bits
_W4A16 = re.compile(r"marlin|machete|awq|gptq|wna16", re.I)
TENSOR_CLASSES = ("gemm", "attention")


def kernel_precision(names: pd.Series, classes: pd.Series, model_ops: pd.Categorical,
                     shape: ModelShape | None) -> pd.Categorical:
    """fp8, int8 or "" (the model's dtype, or CUDA cores) per kernel; worked out once per distinct kernel. The
    kernels table's name and class columns and the kernels' model operations, categoricals: their codes are their
    distinct values, where an array of a string per kernel would be hashed string by string."""
    from tracer.schema import categorical_of, distinct_combinations
    if not len(names):
        return pd.Categorical(np.zeros(0, dtype=object))
    (u_names, u_classes, u_ops), inverse = distinct_combinations(names.reset_index(drop=True),
                                                                classes.reset_index(drop=True),
                                                                pd.Series(model_ops))
    return categorical_of(_precision_of(u_names, u_classes, u_ops, shape), inverse)


def _precision_of(names, classes, model_ops, shape: ModelShape | None) -> np.ndarray:
    out = np.full(len(names), "", dtype=object)
    quant = shape.quant.precision if shape is not None else ""
    for i, (name, cls, op) in enumerate(zip(names, classes, model_ops)):
        if cls not in TENSOR_CLASSES:
            continue
        name = str(name)
        if _W4A16.search(name):
            continue
        if _FP8.search(name):
            out[i] = "fp8"
        elif _INT8.search(name):
            out[i] = "int8"
        elif quant and cls == "gemm" and str(op) in QUANTIZED_PROJECTIONS:
            out[i] = quant
    return out


_CUTLASS_TILE = re.compile(r"cute::tuple<\s*cute::C<(\d+)>,\s*cute::C<(\d+)>,\s*cute::C<(\d+)>\s*>")


def cutlass_tile_n(names: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """The N of a CUTLASS 3.x GEMM's tile (its first cute::tuple), which is its wgmma instruction's N; NaN else."""
    out = np.full(len(names), np.nan)
    for i, (name, cls) in enumerate(zip(names, classes)):
        if cls == "gemm" and "cutlass" in str(name):
            m = _CUTLASS_TILE.search(str(name))
            if m:
                out[i] = float(m.group(2))
    return out
