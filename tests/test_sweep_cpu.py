import pandas as pd
import pytest

from tests.conftest import DATA, run_cli


def test_small_sweep_both_backends(tmp_path):
    pytest.importorskip("vllm")
    proc = run_cli("sweep", "--backend", "hf,vllm", "--layers", "1", "--batch", "1,4", "--prompt", "16",
                   "--output", "4", "--repeats", "2", "--device", "cpu", "--out", tmp_path, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    df = pd.read_parquet(tmp_path / "sweep.parquet")
    assert set(df.backend) == {"hf", "vllm"} and len(df) == 8 and (df.status == "ok").all()
    assert (df.output_tokens_per_s > 0).all()
    for png in ("throughput_latency.png", "memory.png"):
        assert (tmp_path / png).stat().st_size > 10_000


def test_h100_sweep_fixture_plots(tmp_path):
    import shutil

    from analysis.sweep_plots import plot_sweep
    for name in ("h100_sweep_batch", "h100_sweep_requests"):
        shutil.copytree(DATA / name, tmp_path / name)
        written = plot_sweep(tmp_path / name)
        assert {p.name for p in written} == {"throughput_latency.png", "memory.png", "gpu_utilization.png"}
    df = pd.read_parquet(DATA / "h100_sweep_batch" / "sweep.parquet")
    tps = df.groupby("batch")["output_tokens_per_s"].median()
    assert tps.is_monotonic_increasing  # HF decode on the H100 is launch-bound: batching is nearly free
