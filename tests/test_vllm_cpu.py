"""vLLM's CPU build, end to end: record under its own torch profiler, then analyse the trace."""
import orjson
import pytest

from tests.conftest import run_cli

pytest.importorskip("vllm")


def test_record_vllm_cpu_and_phase_attribution(tmp_path):
    out = tmp_path / "v.json.gz"
    proc = run_cli("record", "--backend", "vllm", "--device", "cpu", "--workload", "decode_b4_s64_o16",
                   "--out", out, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    meta = orjson.loads((tmp_path / "v.meta.json").read_bytes())
    f = meta["figures"]
    assert meta["vllm_options"]["prefix_caching"] is False
    assert f["prefill_tokens_computed"] == 4 * 64  # no prompt token skipped by a prefix cache
    assert f["ttft_ms"] > 0 and f["decode_ms_per_token_mean"] > 0 and f["kv_blocks_allocated"] > 0
    a = run_cli("analyze", out, "--out", tmp_path / "an", "--json")
    assert a.returncode == 0, a.stderr
    ops = __import__("pandas").read_parquet(tmp_path / "an" / "ops.parquet")
    model_ops = ops[ops["name"].str.startswith(("aten::", "vllm::", "_C::"))]
    inside = model_ops.loc[model_ops["phase"].isin(["prefill", "decode", "mixed"]), "dur_us"].sum()
    assert inside / model_ops["dur_us"].sum() >= 0.99
    assert set(model_ops["phase"]) >= {"prefill", "decode"}
