"""Tensor parallelism: one rank's shard of the model's shape, and its work on a real trace."""
import pytest

import tracer
from analysis.work.architecture import model_shape
from analysis.work.tensor_parallel import gemm_flops, shard_shape, tp_degree
from tests.conftest import DATA
from workloads.models import model_config

VLLM = DATA / "h100_vllm_gpt2_decode_b16_graphs.json.gz"


def shape(preset):
    return model_shape(model_config(preset).to_dict(), 2)


def test_shard_shape_splits_heads_mlp_and_vocab():
    llama = shape("llama-1b")   # 32 query heads, 8 KV heads, MLP 8192, vocab 128,256
    s = shard_shape(llama, 4)
    assert (s.heads, s.kv_heads, s.intermediate, s.vocab) == (8, 2, 2048, 32064)
    assert (s.hidden, s.head_dim, s.layers) == (llama.hidden, llama.head_dim, llama.layers)
    assert shard_shape(llama, 16).kv_heads == 1   # fewer KV heads than ranks: one, replicated
    assert shard_shape(llama, 1) is llama
    for preset in ("gpt2", "llama-1b", "qwen2.5-7b"):
        whole = shape(preset)
        for tokens, seqs in ((16, 16), (512, 1)):
            assert gemm_flops(shard_shape(whole, 2), tokens, seqs) == pytest.approx(
                gemm_flops(whole, tokens, seqs) / 2, rel=1e-4)   # an odd vocabulary: one row over


def test_tp_degree_sources():
    assert tp_degree(None, None, {"distributed": {"world_size": 4}}) == (4, "world_size")
    assert tp_degree(1, None, {"distributed": {"world_size": 4}}) == (1, "option")
    assert tp_degree(None, None, {}) == (1, None)


def test_tp_option_halves_the_architecture_work():
    """--tp 2 on a vLLM trace with CUDA graphs: the kernels the model's architecture gives work to (graph
    replays) compute half the GEMM and attention FLOPs; ops with recorded shapes keep theirs (a real rank's
    shapes are already its shard's); the sampler reads the whole vocabulary either way."""
    t = tracer.load(VLLM)
    one, two = t.analyze(), t.analyze(tp=2)
    k1, k2 = one.kernels, two.kernels
    arch = (k1["work_source"] == "architecture") & (k1["kernel_class"].isin(["gemm", "attention"]))
    assert arch.sum() > 100
    assert k2.loc[arch, "flops"].sum() == pytest.approx(k1.loc[arch, "flops"].sum() / 2, rel=1e-3)
    sampler = (k1["model_op"] == "sampler").to_numpy()
    assert sampler.any() and (k2.loc[sampler, "dram_bytes"] == k1.loc[sampler, "dram_bytes"]).all()
    tp = two.summary["tensor_parallel"]
    assert tp["tp"] == 2 and tp["source"] == "option" and tp["predicted"]["calls"] > 0
    assert one.summary["tensor_parallel"] is None
