"""Work of every kernel from the model's architecture (analysis.work.layer_map, analysis.work.architecture_work) on the
committed H100 fixtures: vLLM eager and CUDA graphs, HF under torch.profiler and nsys, Nsight Compute reports."""
import numpy as np
import pandas as pd
import pytest

from analysis.work.architecture import model_shape
from analysis.reports.report import analyze, architecture_inputs
from analysis.roofline.placement import kernel_work
from tests.conftest import DATA, run_cli
from tracer.parse import load_tables
from tracer.io.sidecar import read_sidecar

VLLM_FIXTURES = sorted(DATA.glob("h100_vllm_*.json.gz"))
HF_TORCH = DATA / "h100_hf_gpt2_decode_b16_s128_o16.json.gz"
HF_NSYS = DATA / "h100_hf_gpt2_decode_b16_s128_o16_nsys.sqlite.gz"
SHARED_EAGER = "traces-gpu/h100_vllm-0.26.0_gpt2_b16_s128_o32_eager.pt.trace.json.gz"


def _analyze(path, **kw):
    tables = load_tables(path)
    return tables, analyze(tables, read_sidecar(path), **kw)


def _unmodeled_pct(k: pd.DataFrame) -> float:
    return 100 * k.loc[k["work_source"] == "unmodeled", "dur_us"].sum() / k["dur_us"].sum()


@pytest.mark.parametrize("path", VLLM_FIXTURES, ids=lambda p: p.name)
def test_vllm_fixtures_at_most_3pct_unmodeled(path):
    _, r = _analyze(path)
    k = r["kernels"]
    assert _unmodeled_pct(k) <= 3.0, k[k["work_source"] == "unmodeled"].groupby("short_name")["dur_us"].sum()
    if k["graph_launch"].fillna(False).any():   # the replayed kernels are the ones the model had to cover
        replayed = k[k["graph_launch"].fillna(False)]
        assert _unmodeled_pct(replayed) <= 3.0
        assert (replayed["work_source"] == "architecture").mean() > 0.9


@pytest.mark.parametrize("path", VLLM_FIXTURES, ids=lambda p: p.name)
def test_every_vllm_decode_step_maps_to_layers_and_operations(path):
    """Each decode step: L layers of qkv, attention, o_proj, MLP; one LM head; an attention kernel per layer."""
    _, r = _analyze(path)
    k = r["kernels"]
    layers = model_shape(read_sidecar(path)["model"]["config"], 2).layers
    decode = k[k["phase"] == "decode"]
    for step, g in decode.groupby("step"):
        ops = g["model_op"].astype(str)
        assert (ops == "lm_head").sum() == 1, step
        assert sorted(g.loc[ops == "qkv_proj", "layer"].astype(int)) == list(range(layers)), step
        attn = g[(ops == "attention") & (g["kernel_class"] == "attention")]
        assert set(attn["layer"].astype(int)) == set(range(layers)), step


def test_architecture_work_equals_recorded_shapes_on_hf():
    """Drop the launching ops of an HF trace and model every kernel from the architecture alone: the GEMM,
    attention, norm and KV-cache kernels get the same FLOPs and bytes as their ops' recorded shapes give."""
    tables = load_tables(HF_TORCH)
    side = read_sidecar(HF_TORCH)
    arch, _ = architecture_inputs(tables, side)
    with_ops = kernel_work(tables["kernels"], arch)
    blind = tables["kernels"].copy()
    blind["op_id"] = pd.array([pd.NA] * len(blind), dtype="Int64")
    without_ops = kernel_work(blind, arch)
    assert (without_ops["work_source"] == "architecture").mean() > 0.99
    both = with_ops["work_source"].eq("analytic") & without_ops["work_source"].eq("architecture")
    for cls in ("gemm", "attention", "norm"):
        sel = both & with_ops["kernel_class"].eq(cls) & ~with_ops["short_name"].astype(str).str.contains("splitK")
        assert sel.sum() > 50, cls
        np.testing.assert_allclose(without_ops.loc[sel, "flops"], with_ops.loc[sel, "flops"], rtol=1e-9, err_msg=cls)
        np.testing.assert_allclose(without_ops.loc[sel, "dram_bytes"], with_ops.loc[sel, "dram_bytes"], rtol=1e-9,
                                   err_msg=cls)
    cat = both & with_ops["short_name"].astype(str).eq("CatArrayBatchedCopy")
    np.testing.assert_allclose(without_ops.loc[cat, "dram_bytes"], with_ops.loc[cat, "dram_bytes"], rtol=1e-9)


def test_hf_llama_rotary_and_rms_norm_kernels_modeled_from_architecture_as_their_recorded_shapes():
    """HF Llama's apply_rotary_pos_emb (mul, neg, cat, mul, add for q, then k) maps to rotary.q / rotary.k, one cat
    of each a layer (one step's q or k, not the KV cache), its unfused RMSNorm to the norm operations (layer 0's
    too) and its angle kernels to rotary_emb. Without their ops, every one of those kernels gets the bytes and FLOPs
    its op's shapes give, but the angles' cat(freqs, freqs): the profiler lists freqs twice, the kernel reads it
    from DRAM once (ncu: 71 KB at 512 tokens for a 64 KB freqs)."""
    path = DATA / "h100_hf_llama-1b_prefill_b1_s512.json.gz"
    tables = load_tables(path)
    arch, _ = architecture_inputs(tables, read_sidecar(path))
    with_ops = kernel_work(tables["kernels"], arch)
    blind = tables["kernels"].copy()
    blind["op_id"] = pd.array([pd.NA] * len(blind), dtype="Int64")
    without_ops = kernel_work(blind, arch)
    layers = arch[0].layers
    ops = without_ops["model_op"].astype(str)
    for which in ("rotary.q", "rotary.k"):
        cats = without_ops[(ops == which) & (without_ops["kernel_class"] == "copy")]
        assert (cats.groupby(["step", "layer"]).size() == 1).all() and cats["layer"].nunique() == layers, which
        assert (ops == which).sum() == 5 * len(cats), which
    means = without_ops[without_ops["kernel_class"].eq("reduction") & ops.isin(["input_norm", "post_attention_norm"])]
    assert sorted(means.loc[ops == "input_norm", "layer"].astype(int)) == list(range(layers))
    covered = ops.str.startswith("rotary") | ops.isin(["input_norm", "post_attention_norm", "final_norm"])
    covered &= ~(ops.eq("rotary_emb") & without_ops["short_name"].astype(str).str.startswith("CatArray"))
    assert covered.sum() > 25 * layers
    assert (with_ops.loc[covered, "work_source"] == "analytic").all()
    assert (without_ops.loc[covered, "work_source"] == "architecture").all()
    for col in ("dram_bytes", "written_bytes", "flops"):
        np.testing.assert_allclose(without_ops.loc[covered, col], with_ops.loc[covered, col], rtol=1e-9, err_msg=col)


def test_nsys_export_modeled_like_the_torch_trace_of_the_same_workload():
    _, torch_r = _analyze(HF_TORCH)
    _, nsys_r = _analyze(HF_NSYS)
    assert _unmodeled_pct(nsys_r["kernels"]) <= 5.0
    per_class = {name: r["kernels"].groupby(["phase", "kernel_class"], observed=True)[["flops", "l2_bytes"]].sum()
                 for name, r in (("torch", torch_r), ("nsys", nsys_r))}
    joined = per_class["nsys"].join(per_class["torch"].add_suffix("_torch"))
    for col in ("flops", "l2_bytes"):
        has = joined[f"{col}_torch"] > 0
        ratio = joined.loc[has, col] / joined.loc[has, f"{col}_torch"]
        assert ((ratio - 1).abs() <= 0.05).all(), ratio
    # DRAM bytes depend on each kernel's stream predecessor (analysis.roofline.memory_traffic), which differs where one
    # trace has a kernel or memcpy the other lacks; per phase they agree
    dram = {name: r["kernels"].groupby("phase", observed=True)["dram_bytes"].sum()
            for name, r in (("torch", torch_r), ("nsys", nsys_r))}
    ratio = (dram["nsys"] / dram["torch"]).dropna()
    assert len(ratio) and ((ratio - 1).abs() <= 0.05).all(), ratio


def test_nsys_export_without_model_says_which_option_models_it(tmp_path):
    """No sidecar beside the export: one notice names --model; with --model and --workload it is modeled."""
    lone = tmp_path / "export.sqlite.gz"
    lone.write_bytes(HF_NSYS.read_bytes())
    bare = run_cli("analyze", lone, "--out", tmp_path / "bare", "--json")
    assert bare.returncode == 0, bare.stderr
    assert "--model" in bare.stdout and "unmodeled" in bare.stdout
    named = run_cli("analyze", lone, "--out", tmp_path / "named", "--json", "--model", "gpt2",
                    "--workload", "decode_b16_s128_o16", "--dtype", "bfloat16")
    assert named.returncode == 0, named.stderr
    import orjson
    assert orjson.loads(named.stdout)["totals"]["unmodeled_pct"] <= 5.0


def test_shared_vllm_trace_modeled_when_the_model_is_named(shared_dir, tmp_path):
    trace = shared_dir / SHARED_EAGER
    if not trace.exists():
        pytest.skip(f"{trace} not found")
    proc = run_cli("analyze", trace, "--model", "gpt2", "--out", tmp_path / "a", "--json")
    assert proc.returncode == 0, proc.stderr
    import orjson
    assert orjson.loads(proc.stdout)["totals"]["unmodeled_pct"] <= 3.0


def test_hf_against_vllm_graphs_both_on_the_roofline():
    results = {p.name: _analyze(p)[1] for p in (DATA / "h100_hf_gpt2_decode_b16.json.gz",
                                                  DATA / "h100_vllm_gpt2_decode_b16_graphs.json.gz")}
    for name, r in results.items():
        decode = next(p for p in r["summary"]["phases"] if p["phase"] == "decode")
        shares = sum(decode[f"{b}_bound_pct"] for b in ("memory", "l2", "compute", "latency"))
        assert shares >= 97.0, (name, decode)
        assert r["kernels"]["roof_pct"].notna().mean() > 0.97


def test_ncu_report_read_as_one_step_against_the_architecture():
    """An ncu report of HF gpt2's first decode step, read alone: GEMM FLOPs and bytes within 2%, attention's DRAM
    bytes within 25% of the counters; attention's executed FLOPs (tile padding) are reported beside its useful ones."""
    from tracer.commands import analyze_one
    _, r = analyze_one(str(DATA / "h100_hf_gpt2_decode_b16_s128_o4_ncu.ncu.csv.gz"))
    by_class = pd.DataFrame(r["summary"]["ncu"]).set_index("kernel_class")
    assert abs(by_class.loc["gemm", "flops_ratio"] - 1) <= 0.02
    assert abs(by_class.loc["gemm", "dram_ratio"] - 1) <= 0.25
    assert abs(by_class.loc["attention", "dram_ratio"] - 1) <= 0.25
    assert by_class.loc["attention", "executed_over_useful"] > 1   # a 1-token query padded to a tile


# the dense bf16 ones (quantized and MoE ncu fixtures: tests/test_quantized_moe.py)
VLLM_NCU = sorted(p for p in DATA.glob("h200_vllm_*_graphs_ncu.ncu.csv.gz")
                  if "fp8" not in p.name and "mixtral" not in p.name)


@pytest.mark.parametrize("path", VLLM_NCU, ids=lambda p: p.name)
def test_vllm_graph_nodes_against_ncu(path):
    """vLLM CUDA graphs (gpt2, llama-1b; decode_b16 step and prefill_b1_s512), graph nodes measured by ncu, read
    against the architecture model: every kernel modeled; GEMM FLOPs within 2%; GEMM and attention DRAM bytes
    within 25%; FA3's executed FLOPs (its tiles' padding, from the kernel's name) within 10% of the tensor pipe's,
    while the useful FLOPs stay apart (a decode query of one token executes a 64-row tile)."""
    from tracer.commands import analyze_one
    _, r = analyze_one(str(path))
    by_class = pd.DataFrame(r["summary"]["ncu"]).set_index("kernel_class")
    assert by_class["unmodeled_kernels"].sum() == 0
    assert abs(by_class.loc["gemm", "flops_ratio"] - 1) <= 0.02
    for cls in ("gemm", "attention"):
        assert abs(by_class.loc[cls, "dram_ratio"] - 1) <= 0.25, cls
    assert abs(by_class.loc["attention", "executed_ratio"] - 1) <= 0.10
    padding = by_class.loc["attention", "executed_over_useful"]
    assert padding > (10 if "decode" in path.name else 1.2)
