"""Device peaks: datasheet figures (dense, no sparsity) matched from the trace's device name, or measured ones from
`tracer calibrate`. Analysis says which it used."""
from __future__ import annotations

import os
from pathlib import Path

import orjson

# TFLOP/s: tensor cores per input dtype (fp32 accumulate), CUDA cores fp32; HBM GB/s; L2 MB; SMs.
# fp8 and int8 (TOPS) are the dense tensor-core rates; None where the device has no such tensor path (fp8 before
# Ada/Hopper, int8 on V100) or none is published (A10G). Every figure is dense: vendors print sparsity-doubled
# numbers first, and these are those halved. Sources: NVIDIA's datasheets (H100/H800, H200, HGX B200, GB200 NVL72
# per rack / 72 GPUs, A100, L40S, L4, L20, T4, V100; the H20 product brief), the Ampere GA102 and Ada AD102
# whitepapers (RTX 3090, RTX 4090: the FP32-accumulate column), AMD's Instinct datasheets and CDNA 2/3/4
# whitepapers (clock x CUs x MFMA rate: MI300X 1307.4 = 304 CUs x 2.1 GHz x 2048 bf16 FLOP/clk/CU), and the ROCm
# GPU specifications page (CUs, L2, Infinity Cache).
# NVIDIA publishes no L2 bandwidth. The H100 and H200 (one GH100 die, the same L2 and clocks) carry the figure
# `tracer calibrate` measured on an H200 (elementwise copy through L2, 31 MB working set, 2026-12-01; ncu's
# lts__t_bytes rate of that kernel was 6.1 TB/s); elsewhere the L2 roof is drawn only once calibrated.
# AMD: `l2_mb` is the last cache level before HBM, which decides whether a kernel's output is still on chip for the
# next kernel (analysis/roofline/memory_traffic.py): the 256 MB Infinity Cache (MALL) on MI300/MI325/MI355, shared by all
# XCDs, not the 4 MB L2 private to each XCD; the 8 MB L2 of one GCD on CDNA 2. `sms` are compute units. An MI250 or
# MI250X is two GCDs that PyTorch sees as two devices, so their rows are one GCD's (half the card's datasheet); the
# MI210 is one such GCD. fp32 is the vector rate with packed FP32 (CDNA 2/3/4 count it as NVIDIA counts FMA). No
# TF32 matrix path on CDNA 2 or CDNA 4: tf32 there is the fp32 matrix rate (as on the T4).
_GH100_L2 = dict(l2_gbps=5853, l2_source="measured on an H200 by tracer calibrate (same GH100 L2)")
_MI300 = dict(bf16=1307.4, fp16=1307.4, tf32=653.7, fp32=163.4, fp8=2614.9, int8=2614.9, l2_mb=256, sms=304)
_CDNA2_GCD = dict(fp8=None, l2_mb=8)
_DATASHEET = [
    ("H100 PCIe", dict(bf16=756, fp16=756, tf32=378, fp32=51.2, fp8=1513, int8=1513, hbm_gbps=2000, l2_mb=50, sms=114,
                       **_GH100_L2)),
    ("H100 NVL", dict(bf16=835, fp16=835, tf32=418, fp32=60.0, fp8=1671, int8=1671, hbm_gbps=3900, l2_mb=50, sms=132,
                      **_GH100_L2)),
    ("H100", dict(bf16=989.4, fp16=989.4, tf32=494.7, fp32=66.9, fp8=1978.9, int8=1978.9, hbm_gbps=3350, l2_mb=50,
                  sms=132, **_GH100_L2)),  # SXM
    # H800: the H100's compute and memory, NVLink cut to 400 GB/s (and FP64 to 1 TFLOP/s)
    ("H800 PCIe", dict(bf16=756, fp16=756, tf32=378, fp32=51.2, fp8=1513, int8=1513, hbm_gbps=2000, l2_mb=50, sms=114,
                       **_GH100_L2)),
    ("H800", dict(bf16=989.4, fp16=989.4, tf32=494.7, fp32=66.9, fp8=1978.9, int8=1978.9, hbm_gbps=3350, l2_mb=50,
                  sms=132, **_GH100_L2)),  # SXM
    ("H200 NVL", dict(bf16=835, fp16=835, tf32=418, fp32=60.0, fp8=1671, int8=1671, hbm_gbps=4800, l2_mb=60, sms=132,
                      **_GH100_L2)),
    ("H200", dict(bf16=989.4, fp16=989.4, tf32=494.7, fp32=66.9, fp8=1978.9, int8=1978.9, hbm_gbps=4800, l2_mb=60,
                  sms=132, **_GH100_L2)),
    # after H200 (a substring match): a GH100 held to 148 TFLOP/s bf16 with 4.0 TB/s of HBM3
    ("H20", dict(bf16=148, fp16=148, tf32=74, fp32=44, fp8=296, int8=296, hbm_gbps=4000, l2_mb=60, sms=78)),
    # GB200 before B200 (a substring match). Per GPU of an NVL72: 360 PF bf16, 720 PF fp8/int8 sparse over 72 GPUs;
    # SMs and L2 (135,528,448 B) from ncu's device attributes on a GB200 (JAX-Toolbox's report, traces-external)
    ("GB200", dict(bf16=2500, fp16=2500, tf32=1250, fp32=80, fp8=5000, int8=5000, hbm_gbps=8000, l2_mb=129, sms=152)),
    ("B200", dict(bf16=2250, fp16=2250, tf32=1100, fp32=75, fp8=4500, int8=4500, hbm_gbps=8000, l2_mb=126, sms=148)),
    ("A100-SXM4-40GB", dict(bf16=312, fp16=312, tf32=156, fp32=19.5, fp8=None, int8=624, hbm_gbps=1555, l2_mb=40,
                            sms=108)),
    ("A100-PCIE-40GB", dict(bf16=312, fp16=312, tf32=156, fp32=19.5, fp8=None, int8=624, hbm_gbps=1555, l2_mb=40,
                            sms=108)),
    ("A100-PG509-200", dict(bf16=312, fp16=312, tf32=156, fp32=19.5, fp8=None, int8=624, hbm_gbps=1555, l2_mb=40,
                            sms=108)),
    ("A100", dict(bf16=312, fp16=312, tf32=156, fp32=19.5, fp8=None, int8=624, hbm_gbps=2039, l2_mb=40,
                  sms=108)),  # 80GB
    ("A10G", dict(bf16=70, fp16=70, tf32=35, fp32=31.2, fp8=None, int8=None, hbm_gbps=600, l2_mb=6, sms=80)),
    ("L40S", dict(bf16=362, fp16=362, tf32=183, fp32=91.6, fp8=733, int8=733, hbm_gbps=864, l2_mb=96, sms=142)),
    ("L4", dict(bf16=121, fp16=121, tf32=60, fp32=30.3, fp8=242.5, int8=242.5, hbm_gbps=300, l2_mb=48, sms=58)),
    # AD102 with fp32-accumulate at half rate (as the L40): 92 SMs x 2.52 GHz x 512
    ("L20", dict(bf16=119.5, fp16=119.5, tf32=59.8, fp32=59.8, fp8=239, int8=239, hbm_gbps=864, l2_mb=96, sms=92)),
    ("T4", dict(bf16=65, fp16=65, tf32=8.1, fp32=8.1, fp8=None, int8=130, hbm_gbps=320, l2_mb=4,
                sms=40)),  # no bf16: fp16 rate
    ("RTX 3090", dict(bf16=71, fp16=71, tf32=35.6, fp32=35.6, fp8=None, int8=284, hbm_gbps=936, l2_mb=6, sms=82)),
    ("RTX 4090", dict(bf16=165.2, fp16=165.2, tf32=82.6, fp32=82.6, fp8=330.3, int8=660.6, hbm_gbps=1008, l2_mb=72,
                      sms=128)),
    ("V100", dict(bf16=125, fp16=125, tf32=15.7, fp32=15.7, fp8=None, int8=None, hbm_gbps=900, l2_mb=6, sms=80)),
    # AMD Instinct, as ROCm names them ("AMD Instinct MI300X", "AMD Instinct MI300X VF" under SR-IOV)
    ("MI300X", dict(**_MI300, hbm_gbps=5300)),
    ("MI325X", dict(**_MI300, hbm_gbps=6000)),
    ("MI300A", dict(bf16=980.6, fp16=980.6, tf32=490.3, fp32=122.6, fp8=1961.2, int8=1961.2, hbm_gbps=5300, l2_mb=256,
                    sms=228)),
    # CDNA 4 at 2.4 GHz (MI355X) and 2.2 GHz (MI350X), 256 CUs, 4096 bf16 FLOP/clk/CU; int8 at the fp8 rate
    ("MI355X", dict(bf16=2516.6, fp16=2516.6, tf32=157.3, fp32=157.3, fp8=5033.2, int8=5033.2, hbm_gbps=8000,
                    l2_mb=256, sms=256)),
    ("MI350X", dict(bf16=2306.9, fp16=2306.9, tf32=144.2, fp32=144.2, fp8=4613.7, int8=4613.7, hbm_gbps=8000,
                    l2_mb=256, sms=256)),
    # One GCD: MI250X 110 CUs, MI250 and MI210 104 CUs, 1.7 GHz, 1024 bf16 FLOP/clk/CU, 1.64 TB/s of HBM2e each
    ("MI250X", dict(bf16=191.5, fp16=191.5, tf32=47.9, fp32=23.9, int8=191.5, hbm_gbps=1638.4, sms=110, **_CDNA2_GCD)),
    ("MI250", dict(bf16=181.0, fp16=181.0, tf32=45.3, fp32=22.6, int8=181.0, hbm_gbps=1638.4, sms=104, **_CDNA2_GCD)),
    ("MI210", dict(bf16=181.0, fp16=181.0, tf32=45.3, fp32=22.6, int8=181.0, hbm_gbps=1638.4, sms=104, **_CDNA2_GCD)),
]

# ROCm may record no marketing name ("" in vLLM's ROCm traces, "AMD Radeon Graphics" on some MI250 hosts): the
# device properties Kineto records still tell the part. (gfx major, minor, CUs) -> datasheet key; memory in GiB
# tells the MI300X from the MI325X. gfx950 (MI350X or MI355X: one die, different clocks) is not told apart.
_BY_PROPERTIES = {(9, 4, 304): lambda gib: "MI325X" if gib > 200 else "MI300X", (9, 4, 228): lambda gib: "MI300A",
                  (9, 0, 110): lambda gib: "MI250X", (9, 0, 104): lambda gib: "MI250"}


def key_from_properties(props: dict | None) -> str | None:
    """The datasheet key of an AMD device told by its recorded properties (warp size 64, gfx version, CU count)."""
    if not isinstance(props, dict) or props.get("warpSize") != 64:
        return None
    try:
        key = (int(props["computeMajor"]), int(props["computeMinor"]), int(props["numSms"]))
        gib = float(props.get("totalGlobalMem") or 0) / 2**30
    except (KeyError, TypeError, ValueError):
        return None
    pick = _BY_PROPERTIES.get(key)
    return pick(gib) if pick else None


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


def resolve_peaks(device_name: str, peaks_file: str | Path | None = None, properties: dict | None = None) -> dict | None:
    """Measured, else datasheet by name, else datasheet by the recorded device properties (AMD without a name)."""
    found = measured_peaks(device_name, peaks_file) or datasheet_peaks(device_name)
    if found is None and (key := key_from_properties(properties)):
        found = {**datasheet_peaks(key), "device_name": device_name,
                 "source": f"datasheet ({key}, told by its recorded properties: compute "
                           f"{properties['computeMajor']}.{properties['computeMinor']}, {properties['numSms']} CUs)"}
    return found
