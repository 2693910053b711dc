"""AMD Instinct / ROCm traces recorded by others (tests/data/external-rocm, HTA's MI250 trace when shared): kernel
classes, HIP launches and graph replays, peaks from the device name or its recorded properties, the roofline."""
import json

import orjson
import pytest

import tracer
from analysis.roofline.peaks import _DATASHEET, datasheet_peaks, measured_peaks, resolve_peaks
from tests.conftest import DATA, EXTERNAL, run_cli

ROCM = DATA / "external-rocm"
MI250 = EXTERNAL / "hta" / "amd_trace_mi250_minitoy_train_ROCm6_2_kineto.json.gz"
HF_MI300X = ROCM / "tracelens_mi300_Qwen_Qwen1.5-0.5B-Chat__1016005.redacted.json.gz"
HF_H100 = EXTERNAL / "tracelens" / "h100_Qwen_Qwen1.5-0.5B-Chat__1016005.redacted.json.gz"
SGLANG_GRAPHS = ROCM / "tracelens_inference_sglang_decode_sglang_Qwen3-8B_decode.json.gz"
VLLM_UNNAMED = ROCM / "tracelens_inference_vllm_decode_full_graph_execution.json.gz"


def rocm_traces():
    return sorted(ROCM.glob("*.json.gz")) + ([MI250] if MI250.exists() else [])


@pytest.mark.parametrize("path", rocm_traces(), ids=lambda p: p.name[:48])
def test_rocm_kernel_time_is_classified(path):
    """At least 90% of kernel time in a class other than "other", by the kernel and its op and by the kernel
    name alone (graph replays and Inductor regions leave only the name)."""
    from tracer.parse.classify import classify_kernel
    k = tracer.load(path).kernels
    assert len(k) > 0
    total = k["dur_us"].sum()
    other = k.loc[k["kernel_class"].astype(str) == "other", "dur_us"].sum()
    assert other / total <= 0.10, k[k["kernel_class"] == "other"].groupby("short_name", observed=True)["dur_us"].sum()
    by_name = k["name"].astype(str).map(classify_kernel)
    assert k.loc[by_name == "other", "dur_us"].sum() / total <= 0.10


@pytest.mark.parametrize("path", rocm_traces(), ids=lambda p: p.name[:48])
def test_rocm_device_has_peaks(path):
    """Every ROCm trace finds datasheet peaks: by its name (MI300X, MI300X VF, MI210) or, where ROCm recorded
    none ("" in vLLM's, "AMD Radeon Graphics" on the MI250 host), by its recorded properties."""
    t = tracer.load(path)
    props = (t.meta.get("device_properties") or [None])[0]
    p = resolve_peaks(props["name"], None, props)
    assert p is not None and p["bf16"] > 100 and p["hbm_gbps"] > 1000
    if not props["name"] or props["name"] == "AMD Radeon Graphics":
        assert "told by its recorded properties" in p["source"]


def test_mi300x_roofline_drawn_and_work_as_on_the_h100(tmp_path):
    """The same HF Qwen1.5-0.5B forward on an MI300X and an H100: the ROCm trace's shapes are read (ROCm writes
    runtime byte counts as text, which once sent it down a path that garbled them), so its GEMM FLOPs equal the
    H100's, and analyze draws the MI300X roofline with its datasheet peaks."""
    proc = run_cli("analyze", HF_MI300X, "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = orjson.loads((tmp_path / "summary.json").read_bytes())
    peaks = summary["source"]["peaks"]
    assert peaks["matched"] == "MI300X" and peaks["source"] == "datasheet"
    assert (tmp_path / "roofline.png").stat().st_size > 10_000
    assert not any("no peaks known" in n for n in summary["notices"])
    k = tracer.load(HF_MI300X).analyze().kernels
    placed = k["roof_pct"].notna()
    assert placed.sum() > 1000 and (k.loc[placed, "kernel_class"] == "gemm").any()
    if not HF_H100.exists():
        pytest.skip(f"the H100 twin is not shared here ({HF_H100})")
    h = tracer.load(HF_H100).analyze().kernels
    gemm_flops = [x.loc[x["kernel_class"] == "gemm", "flops"].sum() for x in (k, h)]
    assert gemm_flops[0] == pytest.approx(gemm_flops[1], rel=1e-9) and gemm_flops[0] > 1e12


def test_hip_graph_replays_and_launches():
    """hipGraphLaunch is a graph replay (graph_launch), its kernels classed by name, not by the launch;
    hipExtModuleLaunchKernel and hipModuleLaunchKernel launches are kernel launches in the host breakdown."""
    from analysis.timing.walltime import _LAUNCH
    k = tracer.load(SGLANG_GRAPHS).kernels
    replay = k["launch_api"].astype(str) == "hipGraphLaunch"
    assert replay.sum() > 500 and k.loc[replay, "graph_launch"].all() and not k.loc[~replay, "graph_launch"].any()
    assert set(k.loc[replay, "kernel_class"].astype(str)) >= {"gemm", "attention", "norm"}
    launches = {str(a) for a in tracer.load(HF_MI300X).kernels["launch_api"].unique()} - {""}
    assert launches and launches <= set(_LAUNCH)


def test_rocm_short_names():
    """Tensile names keep layout, types, macro tile and MFMA; unmangled aiter/CK names their kernel."""
    names = set(tracer.load(SGLANG_GRAPHS).kernels["short_name"].astype(str))
    assert "Cijk_Alik_Bljk_BBS_BH_MT256x32x64_MI16x16x1" in names
    assert "add_rmsnorm_quant_kernel" in names and "act_and_mul_kernel" in names
    assert "Rmsnorm2dFwd" in set(tracer.load(VLLM_UNNAMED).kernels["short_name"].astype(str))


def test_peaks_table_has_fp8_and_int8_everywhere():
    """Every device row says its dense fp8 and int8 rates, None where it has no such tensor path; fp8 is twice
    bf16 wherever both exist (Hopper, Ada with FP32 accumulate, Blackwell, CDNA 3/4)."""
    for key, row in _DATASHEET:
        assert "fp8" in row and "int8" in row, key
        if row["fp8"] is not None:
            assert row["fp8"] == pytest.approx(2 * row["bf16"], rel=0.03), key
    for name, key in [("NVIDIA H800", "H800"), ("NVIDIA H800 PCIe", "H800 PCIe"), ("NVIDIA H20", "H20"),
                      ("NVIDIA H200", "H200"), ("NVIDIA GB200", "GB200"), ("NVIDIA B200", "B200"),
                      ("NVIDIA L20", "L20"), ("AMD Instinct MI300X VF", "MI300X"),
                      ("AMD Instinct MI325X", "MI325X"), ("AMD Instinct MI355X", "MI355X")]:
        assert datasheet_peaks(name)["matched"] == key, name
    assert datasheet_peaks("NVIDIA A100-SXM4-80GB")["fp8"] is None


def test_measured_fp8_read_from_calibration(tmp_path):
    cal = orjson.loads((DATA / "h100_peaks.json").read_bytes())
    assert measured_peaks("x", DATA / "h100_peaks.json")["fp8"] == 1978.9   # none measured: the datasheet's
    cal["gemm_float8_e4m3fn_tflops"] = 1234.5
    (tmp_path / "p.json").write_text(json.dumps(cal))
    assert measured_peaks("x", tmp_path / "p.json")["fp8"] == 1234.5
