"""End-to-end CPU recordings: real models (shortened), real torch.profiler traces."""
import gzip
from collections import Counter

import orjson
import pytest

from tests.conftest import run_cli


@pytest.mark.parametrize("model", ["gpt2", "opt-125m"])
def test_record_hf_cpu(tmp_path, model):
    out = tmp_path / "x.json.gz"
    proc = run_cli("record", "--workload", "decode_b2_s32_o8", "--device", "cpu", "--model", model,
                   "--layers", "2", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("wrote ")
    trace = orjson.loads(gzip.decompress(out.read_bytes()))
    ann = Counter(e["name"] for e in trace["traceEvents"] if e.get("cat") == "user_annotation")
    track = Counter(e["name"] for e in trace["traceEvents"] if e.get("cat") == "tracer_phase")
    assert track == ann  # the same phases again on their own Perfetto track
    # the prefill yields the first of the 8 output tokens; each decode step one more
    assert ann["prefill"] == 1 and ann["decode"] == 1 and ann["decode_step"] == 7
    meta = orjson.loads((tmp_path / "x.meta.json").read_bytes())
    f = meta["figures"]
    assert meta["workload"]["name"] == "decode_b2_s32_o8" and meta["model"]["layers_override"] == 2
    assert f["ttft_ms"] > 0 and f["decode_steps"] == 7 and f["output_tokens"] == 16
    assert f["decode_ms_per_token_p50"] <= f["decode_ms_per_token_p99"]
    assert f["output_tokens_per_s"] == pytest.approx(16 / f["total_s"])
    assert f["prefill_tokens_computed"] == 64 and f["kv_cache_bytes"] > 0

    # the trace analyses: no kernels on a CPU, the op tables still work
    a = run_cli("analyze", out, "--out", tmp_path / "an", "--json")
    assert a.returncode == 0, a.stderr
    summary = orjson.loads(a.stdout)
    assert summary["totals"]["kernels"] == 0 and summary["totals"]["ops"] > 100
    assert any("no GPU kernels" in n for n in summary["notices"])


def test_profiler_none_writes_sidecar_only(tmp_path):
    out = tmp_path / "n.json.gz"
    proc = run_cli("record", "--workload", "prefill_b1_s16", "--device", "cpu", "--layers", "1",
                   "--profiler", "none", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert not out.exists() and (tmp_path / "n.meta.json").exists()


def test_out_may_name_an_existing_folder(tmp_path):
    """`--out DIR` with one workload writes the default file name inside DIR (it once tried to replace DIR)."""
    proc = run_cli("record", "-w", "decode_b1_s8_o2", "--device", "cpu", "--layers", "1", "--profiler", "none",
                   "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [p.name for p in tmp_path.iterdir()] == ["hf_gpt2_L1_decode_b1_s8_o2_cpu.meta.json"]
