import gzip
import socket
import subprocess
import sys
import time
import urllib.request

import orjson

from tests.conftest import DATA, ROOT, run_cli
from tracer.perfetto import check_chrome_trace


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


def test_check_passes_on_our_cpu_trace_and_flags_overlaps(tmp_path):
    out = tmp_path / "c.json.gz"
    assert run_cli("record", "--workload", "decode_b1_s8_o3", "--device", "cpu", "--layers", "1",
                   "--out", out).returncode == 0
    ok = run_cli("check", out)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = {"traceEvents": [{"ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": 0, "dur": 10},
                           {"ph": "X", "name": "b", "pid": 1, "tid": 1, "ts": 5, "dur": 10}]}
    p = tmp_path / "bad.json"
    p.write_bytes(orjson.dumps(bad))
    r = run_cli("check", p)
    assert r.returncode != 0 and "overlaps" in r.stdout
    assert check_chrome_trace(bad["traceEvents"][:1]) == []


def test_gpu_fixture_pdl_overlaps_are_reported():
    """H100 kernels launched with programmatic dependent launch start before their predecessor on the same
    stream ends; Perfetto's JSON importer cannot nest them, and the check says so."""
    events = orjson.loads(gzip.decompress((DATA / "h100_hf_gpt2_decode_b16.json.gz").read_bytes()))["traceEvents"]
    problems = check_chrome_trace(events)
    assert problems and all("overlaps" in p for p in problems)
