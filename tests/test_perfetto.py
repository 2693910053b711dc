import gzip
import socket
import subprocess
import sys
import time
import urllib.request

import orjson
import pandas as pd
import pytest

from tests.conftest import CPU_RECORDINGS, DATA, ROOT, SHARED, run_cli
from tracer.parse.load import load_tables
from tracer.perfetto import check_chrome_trace
from tracer.recording.perfetto_layout import perfetto_ready


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_open_serves_the_trace_with_cors():
    trace = DATA / "h100_hf_gpt2_prefill_b1_s512.json.gz"
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tracer.cli", "open", str(trace), "--no-browser", "--port",
                             str(port)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        link = proc.stdout.readline() + proc.stdout.readline()
        assert "ui.perfetto.dev/#!/?url=" in link
        url = f"http://127.0.0.1:{port}/{trace.name}"
        for _ in range(50):
            try:
                resp = urllib.request.urlopen(url, timeout=5)
                break
            except OSError:
                time.sleep(0.1)
        assert resp.headers["Access-Control-Allow-Origin"] == "https://ui.perfetto.dev"
        assert resp.read() == trace.read_bytes()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.xdist_group(CPU_RECORDINGS)
def test_check_passes_on_our_cpu_traces_and_flags_overlaps(cpu_recordings, tmp_path):
    """Our HF and vLLM CPU traces (the suite's shared recording, tests/conftest.py) pass; overlaps do not."""
    for backend in ("hf", "vllm"):
        ok = run_cli("check", cpu_recordings.trace(backend, "decode_b2_s16_o4"))
        assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = {"traceEvents": [{"ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": 0, "dur": 10},
                           {"ph": "X", "name": "b", "pid": 1, "tid": 1, "ts": 5, "dur": 10}]}
    p = tmp_path / "bad.json"
    p.write_bytes(orjson.dumps(bad))
    r = run_cli("check", p)
    assert r.returncode != 0 and "overlaps" in r.stdout
    assert check_chrome_trace(bad["traceEvents"][:1]) == []


def _events(path):
    trace = orjson.loads(gzip.decompress(path.read_bytes()))
    return trace["traceEvents"] if isinstance(trace, dict) else trace


@pytest.mark.parametrize("path,moved_cat", [
    (SHARED / "traces-gpu" / "h100_vllm-0.26.0_gpt2_b16_s128_o32_eager.pt.trace.json.gz", "python_function"),
    (DATA / "h100_vllm_gpt2_decode_b16_graphs.json.gz", "kernel")], ids=lambda p: getattr(p, "name", p)[:30])
def test_overlap_lanes_make_h100_traces_drawable_and_keep_the_tables(path, moved_cat, tmp_path):
    """On the H100, kernels launched with programmatic dependent launch (cuBLAS split-K reduce, FA3 combine)
    start before their predecessor on the same stream ends. The raw profiler output (vLLM's own trace here)
    has such overlaps (and vLLM's Python-stack slices cross its step annotations); the lanes we add remove every
    one, moving the kernel or the Python slice and never the annotation, and the parsed tables do not change."""
    if not path.is_file():
        pytest.skip(f"shared trace not found: {path} (set TRACER_SHARED to the shared folder)")
    raw = _events(path)
    if path.parent == DATA:   # our fixture has its lanes already: fold them back onto their streams
        raw = [dict(e, tid=e["args"]["stream"]) if e.get("cat") == "kernel" and e["tid"] >= 1_000_000_000 else e
               for e in raw if e.get("cat") != "tracer_phase"]
    assert any("overlaps" in p for p in check_chrome_trace(raw))
    ready = perfetto_ready(raw)
    assert check_chrome_trace(ready) == []
    moved = [e for e in ready if e.get("ph") == "X" and isinstance(e.get("tid"), int) and e["tid"] >= 1_000_000_000]
    assert moved and {e.get("cat") for e in moved} == {moved_cat}
    names = {e["name"] for e in ready if e.get("ph") == "M" and e.get("name") == "thread_name"}
    assert names  # metadata kept
    out = tmp_path / path.name
    out.write_bytes(gzip.compress(orjson.dumps({"traceEvents": ready})))
    folded = tmp_path / f"raw_{path.name}"
    folded.write_bytes(gzip.compress(orjson.dumps({"traceEvents": raw})))
    before = load_tables(folded, use_cache=False)["kernels"]
    after = load_tables(out, use_cache=False)["kernels"]
    pd.testing.assert_frame_equal(before.reset_index(drop=True), after.reset_index(drop=True))
    phases = [e["name"] for e in ready if e.get("cat") == "tracer_phase"]
    assert phases and (path.parent == DATA or any(n.startswith("decode step") for n in phases))


def test_check_passes_on_every_committed_gpu_trace():
    """Every Chrome trace `tracer record` wrote on the H100 (HF and vLLM, fixtures) passes `tracer check`."""
    traces = sorted(DATA.glob("h100_*.json.gz"))
    assert len(traces) >= 6
    for path in traces:
        r = run_cli("check", path)
        assert r.returncode == 0, f"{path.name}: {r.stdout}"
        assert any(e.get("cat") == "tracer_phase" for e in _events(path)), path.name


@pytest.mark.parametrize("name", ["h100_hf_gpt2_decode_b16.json.gz", "h100_vllm_gpt2_decode_b16_graphs.json.gz"])
def test_nvml_counters_sit_on_the_traces_clock(name):
    """NVML samples are placed by the Unix clock through Kineto's baseTimeNanoseconds (vLLM's engine core is
    another process). Placed right, they cover the recorded run and no more: samples start within one sampling
    period before the first slice and end by the last one, and GPU memory is non-zero throughout."""
    events = _events(DATA / name)
    slices = [e for e in events if e.get("ph") == "X" and isinstance(e.get("dur"), (int, float))]
    first, last = min(e["ts"] for e in slices), max(e["ts"] + e["dur"] for e in slices)
    mem = sorted((e["ts"], e["args"]["MiB"]) for e in events if e.get("ph") == "C" and "MiB" in e["args"])
    util = [e for e in events if e.get("ph") == "C" and "util" in e["args"]]
    assert len(mem) >= 20 and len(util) == len(mem)
    assert first - 50_000 <= mem[0][0] <= first and mem[1][0] >= first   # one sample just before, 10 ms apart
    assert mem[-1][0] <= last and last - mem[-1][0] < 50_000
    assert all(mib > 100 for _, mib in mem)


@pytest.mark.parametrize("text", ['"abc"', '{"traceEvents":"abc"}', '[1, 2]'])
def test_check_refuses_what_is_no_event_list(tmp_path, text):
    from tests.conftest import assert_one_line_error
    (tmp_path / "t.json").write_text(text)
    proc = run_cli("check", tmp_path / "t.json")
    assert proc.returncode == 2
    assert_one_line_error(proc)
