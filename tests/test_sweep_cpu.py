import pandas as pd
import pytest

from tests.conftest import DATA, run_cli


def test_small_sweep_both_backends(tmp_path):
    pytest.importorskip("vllm")
    proc = run_cli("sweep", "--backend", "hf,vllm", "--layers", "1", "--batch", "1,4", "--prompt", "16",
                   "--output", "4", "--repeats", "2", "--device", "cpu", "--enforce-eager", "--out", tmp_path,
                   timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    df = pd.read_parquet(tmp_path / "sweep.parquet")
    assert set(df.backend) == {"hf", "vllm"} and len(df) == 8 and (df.status == "ok").all()
    assert (df.output_tokens_per_s > 0).all()
    # each point's repeats as one figure: the median of its runs with its spread (#27)
    sweep = __import__("json").loads((tmp_path / "sweep.json").read_text())
    points = sweep["points"]
    # vLLM's options reach the engine and are recorded with the plan (eager: no torch.compile warm-up here)
    assert sweep["meta"]["plan"]["vllm"]["enforce_eager"] is True
    assert len(points) == 4 and all(p["runs"] == 2 for p in points)
    for p in points:
        runs = df[(df.backend == p["backend"]) & (df.batch == p["batch"])]["decode_ms_per_token_mean"]
        assert runs.min() <= p["decode_ms_per_token_mean"] <= runs.max()
        assert 0 <= p["decode_ms_per_token_mean_spread_pct"] < float("inf")
    assert "decode_ms_per_token_mean ±%" in proc.stdout
    for png in ("throughput_latency.png", "memory.png"):
        assert (tmp_path / png).stat().st_size > 10_000
    page = (tmp_path / "report.html").read_text()
    assert len(page) > 2e5 and "<script src" not in page   # Chart.js inlined: the page opens from disk
    # stderr is a pipe here: one line per finished point (2 backends x 2 batches x 2 repeats), no bar redraws
    assert "\r" not in proc.stderr
    assert len([ln for ln in proc.stderr.splitlines() if ln.startswith("tracer sweep: ")]) == 8


def test_h100_sweep_fixture_plots(tmp_path):
    import shutil

    from analysis.reports.sweep_plots import plot_sweep
    for name in ("h100_sweep_batch", "h100_sweep_requests", "h100_sweep_prompt"):
        shutil.copytree(DATA / name, tmp_path / name)
        written = plot_sweep(tmp_path / name)
        assert {p.name for p in written} == {"throughput_latency.png", "memory.png", "gpu_utilization.png"}
    batch = pd.read_parquet(DATA / "h100_sweep_batch" / "sweep.parquet")
    assert set(batch.backend) == {"hf", "vllm"} and (batch.status == "ok").all() and len(batch) == 2 * 7 * 3
    tps = batch.groupby(["backend", "batch"])["output_tokens_per_s"].median().unstack(0)
    # decode is launch-bound for both on the H100 (gpt2): batching is nearly free, throughput grows with it
    assert tps["hf"].is_monotonic_increasing and tps["vllm"].is_monotonic_increasing
    assert (tps["vllm"] > tps["hf"]).all()
    req = pd.read_parquet(DATA / "h100_sweep_requests" / "sweep.parquet")
    med = req.groupby(["backend", "requests"])[["output_tokens_per_s", "ttft_ms"]].median().unstack(0)
    # continuous batching: vLLM's throughput keeps growing with the request count; HF's static batches of 16
    # saturate, and a request's wait for its batch dominates HF's TTFT
    assert med["output_tokens_per_s"]["vllm"].is_monotonic_increasing
    assert med["output_tokens_per_s"]["vllm"].iloc[-1] > 10 * med["output_tokens_per_s"]["hf"].iloc[-1]
    assert med["ttft_ms"]["hf"].iloc[-1] > 10 * med["ttft_ms"]["vllm"].iloc[-1]
    # vLLM holds at most max_num_seqs (256) requests: blocks used stop growing there while blocks needed go on
    v = req[req.backend == "vllm"].groupby("requests")[["kv_blocks_used_peak", "kv_blocks_needed"]].max()
    assert (v.loc[[10, 50, 100, 200], "kv_blocks_used_peak"] == v.loc[[10, 50, 100, 200], "kv_blocks_needed"]).all()
    assert v.loc[500, "kv_blocks_used_peak"] < v.loc[500, "kv_blocks_needed"]


def test_sweep_memory_series_show_vllm_reserve_and_use():
    from analysis.reports.sweep_plots import _memory_series
    df = pd.read_parquet(DATA / "h100_sweep_batch" / "sweep.parquet")
    mem = _memory_series(df[df.status == "ok"], "batch")
    reserved, used = mem[("vllm", "KV cache reserved")], mem[("vllm", "KV cache used")]
    assert (used < reserved / 40).all()     # at batch 64, 768 of ~70,800 blocks
    hf_kv = mem[("hf", "KV cache used")]
    # same model, prompts and lengths: vLLM's used blocks hold what HF's cache tensors hold, within a block
    assert ((used - hf_kv).abs() / hf_kv < 0.15).all()


def test_h100_prompt_sweep_fixture():
    """Prompt lengths 32..960 at batch 16 (960 + 64 output tokens fill gpt2's 1024 positions)."""
    df = pd.read_parquet(DATA / "h100_sweep_prompt" / "sweep.parquet")
    assert (df.status == "ok").all() and sorted(df.prompt_tokens.unique()) == [32, 64, 128, 256, 512, 960]
    med = df.groupby(["backend", "prompt_tokens"])["decode_ms_per_token_mean"].median().unstack(0)
    assert (med["vllm"] < med["hf"]).all()   # paged KV writes one token; HF's torch.cat copies the whole cache
    total = df.groupby(["backend", "prompt_tokens"])["total_tokens_per_s"].median().unstack(0)
    assert total["vllm"].iloc[-1] > 2 * total["vllm"].iloc[0]   # longer prompts: more prefill tokens per second
