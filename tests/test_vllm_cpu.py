"""vLLM's CPU build, end to end: record under its own torch profiler, then analyse the trace."""
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.conftest import CPU_RECORDINGS, assert_one_line_error, run_cli

pytest.importorskip("vllm")


@pytest.mark.xdist_group(CPU_RECORDINGS)
def test_record_vllm_cpu_and_phase_attribution(cpu_recordings, tmp_path):
    """The suite's shared recording (tests/conftest.py): vLLM-CPU under its own profiler, gpt2 cut to 2 layers,
    decode_b4_s64_o8."""
    out = cpu_recordings.trace("vllm", "decode_b4_s64_o8")
    meta = cpu_recordings.sidecar("vllm", "decode_b4_s64_o8")
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


def test_engine_that_fails_to_start_says_why_in_one_line(tmp_path):
    """vLLM's engine core logs the root cause in its own process and the parent only hears "see root cause
    above"; tracer holds the start-up log back and names the cause (here: more KV cache than the RAM)."""
    pytest.importorskip("vllm")
    temp = Path(tempfile.mkdtemp(prefix="tracer-test-"))   # short: a socket's path holds 107 bytes at most
    # eager: the failure comes after the model loads; no torch.compile warm-up before it (13 s less)
    proc = run_cli("record", "--backend", "vllm", "-w", "decode_b1_s8_o2", "--device", "cpu", "--layers", "1",
                   "--enforce-eager", "--out", tmp_path / "t.json.gz",
                   env={"VLLM_CPU_KVCACHE_SPACE": "100000", "TMPDIR": str(temp)}, timeout=600)
    line = assert_one_line_error(proc)
    assert "kv cache" in line.lower() and "100000" in line and "see root cause above" not in line
    log = line.rsplit("vLLM's log: ", 1)[1].rstrip(")")
    assert "Traceback" in open(log).read()   # the whole story is kept, out of the user's way
    assert list(tmp_path.iterdir()) == []   # no trace, no half-written file
    # vLLM's engine processes leave their ZeroMQ sockets where they name them: in a folder of tracer's, removed
    sockets = [p.name for p in temp.rglob("*") if p.is_socket()]
    shutil.rmtree(temp)
    assert sockets == []
