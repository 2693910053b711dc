"""`tracer open`'s server on loopback: the trace for its own Host names only (DNS rebinding), quiet aborted
downloads. Real sockets on 127.0.0.1, a real committed fixture."""
import http.client
import socket
import subprocess
import sys
import time

from tests.conftest import DATA, ROOT

TRACE = DATA / "h100_hf_gpt2_decode_b16.json.gz"   # 2.3 MB: more than socket buffers hold, so aborts break the pipe


def _get(port, host):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/" + TRACE.name, headers={"Host": host})
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, body, r.getheader("Access-Control-Allow-Origin")


def test_open_serves_loopback_hosts_refuses_others_and_survives_aborts():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "tracer.cli", "open", str(TRACE), "--port", str(port),
                             "--no-browser"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        status, body, cors = _get(port, f"127.0.0.1:{port}")
        assert status == 200 and body == TRACE.read_bytes() and cors == "https://ui.perfetto.dev"
        assert _get(port, f"localhost:{port}")[0] == 200
        assert _get(port, f"evil.example:{port}")[0] == 403     # a rebinding page's own name
        for _ in range(5):   # clients that drop the connection mid-download
            c = socket.create_connection(("127.0.0.1", port))
            c.sendall(f"GET /{TRACE.name} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            c.recv(100)
            c.close()
        assert _get(port, f"127.0.0.1:{port}")[0] == 200          # still serving
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert "Traceback" not in err, err
