"""Quantized and Mixture-of-Experts vLLM deployments on the committed H200 fixtures (vLLM 0.26, CUDA graphs):
llama-1b with quantization="fp8" (and an FP8 KV cache), a Mixtral-8x7B-shaped model cut to 2 layers in bf16 and
FP8, under torch.profiler and under Nsight Compute (graph nodes profiled)."""
import shutil

import pandas as pd
import pytest

from analysis.reports.report import analyze
from tests.conftest import DATA, assert_one_line_error, run_cli
from tracer.io.sidecar import read_sidecar
from tracer.parse import load_tables
from tracer.parse.classify import classify_kernel

LLAMA_FP8 = DATA / "h200_vllm_llama-1b_fp8_decode_b16_s128_o16_graphs.json.gz"
LLAMA_FP8_KV = DATA / "h200_vllm_llama-1b_fp8_kvfp8_decode_b16_s128_o16_graphs.json.gz"
LLAMA_BF16 = DATA / "h200_vllm_llama-1b_decode_b16_s128_o16_graphs.json.gz"
MIXTRAL = DATA / "h200_vllm_mixtral-8x7b_L2_decode_b16_s128_o16_graphs.json.gz"
MIXTRAL_FP8 = DATA / "h200_vllm_mixtral-8x7b_L2_fp8_decode_b16_s128_o16_graphs.json.gz"
TORCH_FIXTURES = sorted(DATA.glob("h200_vllm_*fp8*_graphs.json.gz")) + sorted(DATA.glob("h200_vllm_mixtral*_graphs.json.gz"))
NCU_FIXTURES = sorted(set(DATA.glob("h200_vllm_*fp8*_ncu.ncu.csv.gz")) | set(DATA.glob("h200_vllm_mixtral*_ncu.ncu.csv.gz")))
# recorded with `--moe-routing`: vLLM returned each token's experts, so the analysis knows each step's routing
MIXTRAL_ROUTED = DATA / "h200_vllm_mixtral-8x7b_L2_routed_decode_b16_s128_o16_graphs.json.gz"
ROUTED_NCU = sorted(DATA.glob("h200_vllm_mixtral*_routed_*_ncu.ncu.csv.gz"))


def _analyze(path, **kw):
    tables = load_tables(path)
    return analyze(tables, read_sidecar(path), **kw)


def _unmodeled_pct(k: pd.DataFrame) -> float:
    return 100 * k.loc[k["work_source"] == "unmodeled", "dur_us"].sum() / k["dur_us"].sum()


@pytest.mark.parametrize("path", sorted(set(TORCH_FIXTURES)), ids=lambda p: p.name)
def test_quantized_and_moe_traces_are_modeled(path):
    r = _analyze(path)
    k = r["kernels"]
    assert _unmodeled_pct(k) < 0.5, k[k["work_source"] == "unmodeled"].groupby("short_name")["dur_us"].sum()
    above = k[(k["roof_pct"] > 100) & (k["roof_flag"] == "")]
    assert above.empty, above[["short_name", "roof", "roof_pct"]]


def test_inductor_quantization_kernels_are_not_gemms():
    """Inductor names a kernel after the ops it fused and their neighbours (`cutlass_scaled_mm`): the fused
    RMSNorm + FP8 quantization is a norm, the quantization alone `quantize`; each layer keeps its 4 FP8 GEMMs."""
    k = load_tables(LLAMA_FP8)["kernels"]
    names = k["name"].astype(str)
    fused = k[names.str.startswith("triton_") & names.str.contains("scaled_mm")]
    assert len(fused) and not (fused["kernel_class"] == "gemm").any()
    assert set(fused.loc[fused["name"].astype(str).str.contains("rms_norm"), "kernel_class"]) == {"norm"}
    r = _analyze(LLAMA_FP8)["kernels"]
    step = r[(r["phase"] == "decode") & (r["step"] == r.loc[r["phase"] == "decode", "step"].min())]
    fp8 = step[step["precision"].astype(str) == "fp8"]
    assert sorted(fp8["model_op"].astype(str).unique()) == ["mlp.down_proj", "mlp.gate_up_proj", "o_proj",
                                                             "qkv_proj"]
    assert len(fp8) == 16 * 4   # llama-1b: 16 layers
    assert set(step.loc[step["model_op"] == "lm_head", "precision"].astype(str)) == {""}   # the LM head stays bf16
    assert set(step.loc[step["kernel_class"] == "quantize", "model_op"].astype(str)) == {"o_proj.quant"}


def test_fp8_gemms_move_fp8_weights_and_meet_the_fp8_roof():
    r = _analyze(LLAMA_FP8)
    assert r["summary"]["quantization"]["method"] == "fp8"
    assert r["summary"]["quantization"]["source"] == "sidecar"
    k = r["kernels"]
    gate_up = k[(k["model_op"] == "mlp.gate_up_proj") & (k["phase"] == "decode")].iloc[0]
    # 16 tokens x 2048 fp8 in, 2048 x 16384 fp8 weights, 16 x 16384 bf16 out
    assert gate_up["l2_bytes"] == 16 * 2048 + 2048 * 16384 + 16 * 16384 * 2
    assert gate_up["peak_tflops"] == pytest.approx(1978.9)
    bf16 = _analyze(LLAMA_BF16)["kernels"]
    assert bf16.loc[bf16["model_op"] == "mlp.gate_up_proj", "peak_tflops"].iloc[0] == pytest.approx(989.4)


def test_quantization_from_the_kernels_when_nothing_else_says(tmp_path):
    """vLLM's online quantization="fp8" leaves the HF config unquantized: without the sidecar, the FP8 GEMM kernels
    tell it."""
    trace = tmp_path / "no_sidecar.json.gz"
    shutil.copy(LLAMA_FP8, trace)
    from tracer.api import load
    a = load(trace).analyze(model="llama-1b")
    assert a.summary["quantization"]["source"] == "kernels"
    assert a.summary["quantization"]["method"] == "fp8"
    assert a.summary["totals"]["unmodeled_pct"] < 0.5


def test_fp8_kv_cache_halves_cache_bytes_and_attention_runs_fp8():
    kv = _analyze(LLAMA_FP8_KV)
    base = _analyze(LLAMA_FP8)["kernels"]
    k = kv["kernels"]
    assert kv["summary"]["quantization"]["kv_cache_bytes"] == 1.0

    def cache_write(df):
        w = df[df["name"].astype(str).str.contains("reshape_and_cache") & (df["phase"] == "decode")]
        return w["written_bytes"].iloc[0]
    assert cache_write(k) == pytest.approx(cache_write(base) / 2)
    attn = k[(k["kernel_class"] == "attention") & k["name"].astype(str).str.contains("FlashAttnFwdSm90")]
    assert set(attn["precision"].astype(str)) == {"fp8"}


def test_moe_layers_map_to_router_routing_experts_and_sum():
    r = _analyze(MIXTRAL)
    k = r["kernels"]
    decode = k[k["phase"] == "decode"]
    step = decode[decode["step"] == decode["step"].min()]
    ops = step["model_op"].astype(str)
    for op in ("moe.router", "moe.routing", "moe.experts.gate_up", "moe.experts.act", "moe.experts.down", "moe.sum"):
        assert set(step.loc[ops == op, "layer"].dropna().astype(int)) == {0, 1}, op
    experts = step[ops == "moe.experts.gate_up"]
    assert set(experts["short_name"].astype(str)) == {"fused_moe_kernel"}
    # useful FLOPs: 16 tokens x top-2 rows; executed: whole 16-row blocks per expert (bf16 grid 4480 -> BLOCK_M 16)
    assert experts["flops"].iloc[0] == 2 * 16 * 2 * (2 * 14336) * 4096
    assert experts["executed_flops"].iloc[0] / experts["flops"].iloc[0] == pytest.approx(126.7 / 32, rel=0.01)
    rows = {d["phase"]: d for d in r["summary"]["deployment"]}
    assert rows["decode"]["moe_pct"] > 50 and rows["decode"]["moe_experts_pct"] > 40
    assert r["summary"]["moe"]["experts"] == 8 and r["summary"]["moe"]["experts_per_token"] == 2
    assert any("uniform routing" in n for n in r["summary"]["notices"])


def _ncu_by_class(path) -> pd.DataFrame:
    from tracer.api import analysis_of, load
    return analysis_of(load(path))[1]["ncu"].set_index("kernel_class")


@pytest.mark.parametrize("path", NCU_FIXTURES, ids=lambda p: p.name)
def test_against_ncu_gemm_flops_and_dram(path):
    """GEMM FLOPs (FP8: from ncu's tensor-pipe instructions; MoE: executed row blocks, expected under uniform
    routing) and DRAM bytes per class against Nsight Compute."""
    c = _ncu_by_class(path)
    gemm = c.loc["gemm"]
    ratio = gemm["executed_ratio"] if gemm["executed_ratio"] == gemm["executed_ratio"] else gemm["flops_ratio"]
    unrouted_moe = "mixtral" in path.name and "_routed_" not in path.name
    # dense FP8 GEMMs are exact, and so are the MoE's padded rows where the run recorded its routing; without it
    # they are an expectation under uniform routing
    assert abs(ratio - 1) < (0.06 if unrouted_moe else 0.03), ratio
    for cls, row in c.iterrows():
        if row["ncu_dram_bytes"] >= 2e6:
            assert 0.75 <= row["dram_ratio"] <= 1.25, (cls, row["dram_ratio"])


def test_compare_says_what_fp8_changed(tmp_path):
    proc = run_cli("compare", LLAMA_BF16, LLAMA_FP8, "--out", tmp_path / "cmp")
    assert proc.returncode == 0, proc.stderr
    report = (tmp_path / "cmp" / "report.md").read_text()
    assert "(fp8) against" in report and "GEMM DRAM bytes" in report
    assert "Quantization and Mixture of Experts per phase" in report


def test_bad_quantization_input_is_one_line(tmp_path):
    line = assert_one_line_error(run_cli("analyze", LLAMA_FP8, "--quantization", "fp9", "--out", tmp_path / "a"))
    assert "fp9" in line
    line = assert_one_line_error(run_cli("record", "-w", "decode_b1_s8_o2", "--backend", "hf", "--quantization",
                                         "fp8", "--device", "cpu", "--out", tmp_path / "x.json.gz"))
    assert "vLLM" in line


def test_experts_that_do_not_match_the_trace_are_a_notice():
    r = _analyze(MIXTRAL, model_config=read_sidecar(LLAMA_BF16)["model"]["config"])
    assert any("fit no layout" in n for n in r["summary"]["notices"])


@pytest.mark.parametrize("name,cls", [
    ("fused_moe_kernel", "gemm"),
    ("void vllm::moe::topkGating<8, 8, 4, 16, 32, int, __nv_bfloat16, (vllm::moe::ScoringFunc)0>", "moe"),
    ("void vllm::moe::moe_align_block_size_small_batch_expert_kernel<int, 256>", "moe"),
    ("void vllm::segmented_max_reduction_strided<c10::BFloat16, c10::Float8_e4m3fn>", "quantize"),
    ("triton_red_fused__to_copy_abs_clamp_cutlass_scaled_mm_div_max_mul_reciprocal_silu_slice_unsqueeze_2",
     "elementwise"),
    ("triton_per_fused_add_native_layer_norm_0", "norm"),
])
def test_kernel_classes_of_quantized_and_moe_kernels(name, cls):
    assert classify_kernel(name) == cls


def test_four_routed_ncu_fixtures_exist():
    assert len(ROUTED_NCU) == 4, ROUTED_NCU   # Mixtral bf16 and FP8, one decode and one prefill step each


@pytest.mark.parametrize("path", ROUTED_NCU, ids=lambda p: p.name)
def test_recorded_routing_gives_expert_gemm_flops_of_ncu(path):
    """With the routing recorded, every fused_moe launch's executed FLOPs (whole row blocks per expert that got
    tokens) match ncu's tensor-pipe count per kernel, not only per class."""
    from tracer.api import analysis_of, load
    r = analysis_of(load(path))[1]
    k = r["kernels"]
    experts = k[k["model_op"].astype(str).str.startswith("moe.experts.") & (k["kernel_class"] == "gemm")]
    assert len(experts) == 4   # gate_up and down of two layers
    # bf16: ncu's FLOP counters; FP8 (Hopper has no FP8 FLOP counter): a wgmma m64nNk32 per warpgroup instruction
    measured = (experts["ncu_tensor_inst"] * 2 * 64 * experts["mma_n"] * 32 / 4 if "fp8" in path.name
                else experts["ncu_flops"])
    assert (experts["executed_flops"] / measured).between(0.99, 1.01).all(), experts["executed_flops"] / measured
    assert r["summary"]["moe"]["steps_with_recorded_routing"] == 1
    assert not any("uniform routing" in n for n in r["summary"]["notices"])


def test_recorded_routing_follows_a_prefill_split_over_two_steps():
    """vLLM prefilled this batch of 16 over two steps (3, then 13 beside the first 3's decode), so the two groups
    decode one position apart; each step's routing is the sum of its groups' at their own positions."""
    side = read_sidecar(MIXTRAL_ROUTED)
    groups = side["figures"]["moe_routing"]["groups"]
    assert [g["requests"] for g in groups] == [3, 13]
    r = _analyze(MIXTRAL_ROUTED)
    k = r["kernels"]
    assert r["summary"]["moe"]["steps_with_recorded_routing"] == 17   # every step that ran the model
    ops = k["model_op"].astype(str)
    gate_up = k[(ops == "moe.experts.gate_up") & (k["phase"] == "decode")]
    # useful FLOPs stay T x k rows (16 tokens; 13 in the last step, after the first 3 requests finished)
    assert set(gate_up["flops"]) == {2 * t * 2 * (2 * 14336) * 4096 for t in (16, 13)}
    gate_up = gate_up[gate_up["flops"] == 2 * 16 * 2 * (2 * 14336) * 4096]
    # the weights read are those of the experts the step's tokens really went to
    weight_bytes = 2 * 14336 * 4096 * 2
    touched = (gate_up["l2_bytes"] - 16 * 4096 * 2 - 32 * 2 * 14336 * 2) / weight_bytes   # inputs, weights, out
    assert touched.round(6).isin(range(1, 9)).all(), touched   # whole experts, not the uniform 7.92
    assert touched.min() < 8

    uniform = analyze(load_tables(MIXTRAL_ROUTED), {**side, "figures": {**side["figures"], "moe_routing": None}})
    u = uniform["kernels"]
    u_gate_up = u[(u["model_op"].astype(str) == "moe.experts.gate_up") & (u["phase"] == "decode")]
    u_gate_up = u_gate_up[u_gate_up["flops"] == 2 * 16 * 2 * (2 * 14336) * 4096]
    assert not (u_gate_up["l2_bytes"].to_numpy() == gate_up["l2_bytes"].to_numpy()).all()
    assert any("uniform routing" in n for n in uniform["summary"]["notices"])
