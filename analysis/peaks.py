"""Device peaks: datasheet figures (dense, no sparsity) matched from the trace's device name, or measured ones from
`tracer calibrate`. Analysis says which it used."""
from __future__ import annotations

import os
from pathlib import Path

import orjson

# TFLOP/s: tensor cores per input dtype (fp32 accumulate), CUDA cores fp32; HBM GB/s; L2 MB; SMs.
# NVIDIA publishes no L2 bandwidth. The H100 and H200 (one GH100 die, the same L2 and clocks) carry the figure
# `tracer calibrate` measured on an H200 (elementwise copy through L2, 31 MB working set, 2026-12-01; ncu's
# lts__t_bytes rate of that kernel was 6.1 TB/s); elsewhere the L2 roof is drawn only once calibrated.
_GH100_L2 = dict(l2_gbps=5853, l2_source="measured on an H200 by tracer calibrate (same GH100 L2)")
_DATASHEET = [
    ("H100 PCIe", dict(bf16=756, fp16=756, tf32=378, fp32=51.2, hbm_gbps=2000, l2_mb=50, sms=114, **_GH100_L2)),
    ("H100 NVL", dict(bf16=835, fp16=835, tf32=418, fp32=60.0, hbm_gbps=3900, l2_mb=50, sms=132, **_GH100_L2)),
    ("H100", dict(bf16=989.4, fp16=989.4, tf32=494.7, fp32=66.9, fp8=1978.9, int8=1978.9, hbm_gbps=3350, l2_mb=50, sms=132, **_GH100_L2)),  # SXM
    ("H200", dict(bf16=989.4, fp16=989.4, tf32=494.7, fp32=66.9, fp8=1978.9, int8=1978.9, hbm_gbps=4800, l2_mb=60, sms=132, **_GH100_L2)),
    ("B200", dict(bf16=2250, fp16=2250, tf32=1100, fp32=75, hbm_gbps=8000, l2_mb=126, sms=148)),
    ("A100-SXM4-40GB", dict(bf16=312, fp16=312, tf32=156, fp32=19.5, hbm_gbps=1555, l2_mb=40, sms=108)),
    ("A100-PCIE-40GB", dict(bf16=312, fp16=312, tf32=156, fp32=19.5, hbm_gbps=1555, l2_mb=40, sms=108)),
    ("A100-PG509-200", dict(bf16=312, fp16=312, tf32=156, fp32=19.5, hbm_gbps=1555, l2_mb=40, sms=108)),
    ("A100", dict(bf16=312, fp16=312, tf32=156, fp32=19.5, hbm_gbps=2039, l2_mb=40, sms=108)),  # 80GB
    ("A10G", dict(bf16=70, fp16=70, tf32=35, fp32=31.2, hbm_gbps=600, l2_mb=6, sms=80)),
    ("L40S", dict(bf16=362, fp16=362, tf32=183, fp32=91.6, hbm_gbps=864, l2_mb=96, sms=142)),
    ("L4", dict(bf16=121, fp16=121, tf32=60, fp32=30.3, hbm_gbps=300, l2_mb=48, sms=58)),
    ("T4", dict(bf16=65, fp16=65, tf32=8.1, fp32=8.1, hbm_gbps=320, l2_mb=4, sms=40)),  # no bf16: fp16 rate
    ("RTX 3090", dict(bf16=71, fp16=71, tf32=35.6, fp32=35.6, hbm_gbps=936, l2_mb=6, sms=82)),
    ("RTX 4090", dict(bf16=165.2, fp16=165.2, tf32=82.6, fp32=82.6, hbm_gbps=1008, l2_mb=72, sms=128)),
    ("V100", dict(bf16=125, fp16=125, tf32=15.7, fp32=15.7, hbm_gbps=900, l2_mb=6, sms=80)),
]


def datasheet_peaks(device_name: str) -> dict | None:
    name = (device_name or "").upper()
    for key, peaks in _DATASHEET:
        if key.upper() in name:
            return {"device_name": device_name, "matched": key, "source": "datasheet", **peaks}
    return None


def measured_peaks(device_name: str, path: str | Path | None = None) -> dict | None:
    """Peaks stored by `tracer calibrate` for this device (or read from `path`)."""
    if path is None:
        d = Path(os.environ.get("TRACER_PEAKS_DIR", Path.home() / ".cache" / "tracer" / "peaks"))
        path = d / ((device_name or "").replace(" ", "_") + ".json")
    path = Path(path)
    if not path.exists():
        return None
    try:
        m = orjson.loads(path.read_bytes())
        base = datasheet_peaks(m.get("device_name", device_name)) or {}
        return {**base, "device_name": m.get("device_name", device_name), "source": f"measured ({path.name})",
                "bf16": float(m["gemm_bfloat16_tflops"]), "fp16": float(m["gemm_float16_tflops"]),
                "tf32": float(m["gemm_tf32_tflops"]), "fp32": float(m["gemm_float32_tflops"]),
                "hbm_gbps": float(m["dram_gbps"]),
                **({"fp8": float(m["gemm_float8_e4m3fn_tflops"])} if m.get("gemm_float8_e4m3fn_tflops") else {}),
                **({"l2_gbps": float(m["l2_gbps"]), "l2_source": "measured"} if m.get("l2_gbps") else {})}
    except (OSError, orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError) as e:
        from tracer.errors import TracerError
        raise TracerError(f"{path}: damaged calibration ({type(e).__name__}: {e}); run `tracer calibrate` again "
                          "or delete the file") from None


def resolve_peaks(device_name: str, peaks_file: str | Path | None = None) -> dict | None:
    return measured_peaks(device_name, peaks_file) or datasheet_peaks(device_name)
