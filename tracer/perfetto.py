"""Perfetto helpers: serve a trace to ui.perfetto.dev (`tracer open`) and check what its JSON importer would
mis-draw (`tracer check`)."""
from __future__ import annotations

import http.server
import threading
import urllib.parse
from collections import defaultdict
from pathlib import Path

from tracer.errors import TracerError

PERFETTO_ORIGIN = "https://ui.perfetto.dev"
ALLOWED_HOSTS = {"127.0.0.1", "localhost", "[::1]"}


def make_server(trace: Path, port: int = 9001):
    """An HTTP server on 127.0.0.1 that serves this one file with the CORS header Perfetto's UI needs (as
    Perfetto's own open_trace_in_ui script does)."""
    trace = Path(trace)
    if not trace.is_file():
        raise TracerError(f"{trace}: no such file")
    from tracer.io.inputs import check_regular_file
    check_regular_file(trace)
    data = trace.read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            # DNS rebinding: a page on another name that resolves to 127.0.0.1 sends its own Host header
            if _host_name(self.headers.get("Host") or "") not in ALLOWED_HOSTS:
                self.send_error(403, "Host not allowed")
                return
            if urllib.parse.unquote(self.path.lstrip("/")) != trace.name:
                self.send_error(404)
                return
            try:
                self.send_response(200)
                self.send_header("Access-Control-Allow-Origin", PERFETTO_ORIGIN)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):   # the browser gave up on the download
                self.close_connection = True

        def handle(self):
            try:
                super().handle()
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args):  # quiet: the CLI prints the one line that matters
            pass

    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    except OSError as e:
        raise TracerError(f"cannot listen on 127.0.0.1:{port} ({e.strerror}); use --port") from None
    url = f"http://127.0.0.1:{server.server_address[1]}/{urllib.parse.quote(trace.name)}"
    return server, url, f"{PERFETTO_ORIGIN}/#!/?url={urllib.parse.quote(url, safe='')}"


def _host_name(host: str) -> str:
    """The name of a Host header without its port: `[::1]:9001` -> `[::1]`, `localhost:9001` -> `localhost`."""
    if host.startswith("["):
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0]


def serve_forever_in_thread(server) -> threading.Thread:
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    return t


def slice_ns(e: dict) -> tuple[int, int]:
    """A complete slice's [start, end) in integer nanoseconds, as Perfetto's JSON importer sees it: nesting is
    decided on these, so a 1 ns overlap (a PDL kernel starting 0.001 us before its predecessor ends) counts, and
    float noise in microsecond timestamps of 4.5e12 does not."""
    start = round(float(e["ts"]) * 1000)
    return start, start + round(float(e["dur"]) * 1000)


def check_chrome_trace(events: list) -> list[str]:
    """Problems Perfetto's JSON importer would draw wrongly: partially overlapping complete slices on one track
    (it needs proper nesting), unmatched B/E events, negative or missing durations, non-numeric timestamps."""
    problems = []
    tracks = defaultdict(list)
    open_b = defaultdict(int)
    for e in events:
        if not isinstance(e, dict):
            continue
        ph = e.get("ph")
        if ph in ("X", "B", "E") and not isinstance(e.get("ts"), (int, float)):
            problems.append(f"event {e.get('name')!r}: timestamp {e.get('ts')!r} is not a number (microseconds)")
            continue
        key = (e.get("pid"), e.get("tid"))
        if ph == "X":
            dur = e.get("dur")
            if not isinstance(dur, (int, float)) or dur < 0:
                problems.append(f"slice {e.get('name')!r} on track {key}: duration {dur!r} is not >= 0")
                continue
            tracks[key].append(slice_ns(e) + (e.get("name"),))
        elif ph == "B":
            open_b[key] += 1
        elif ph == "E":
            open_b[key] -= 1
            if open_b[key] < 0:
                problems.append(f"track {key}: an end (E) event without a begin (B)")
                open_b[key] = 0
    problems += [f"track {k}: {n} begin (B) events never ended" for k, n in open_b.items() if n > 0]
    for key, slices in tracks.items():
        slices.sort(key=lambda s: (s[0], -s[1]))
        stack: list = []
        for s, e, name in slices:
            while stack and stack[-1][1] <= s:
                stack.pop()
            if stack and e > stack[-1][1]:
                problems.append(f"track {key}: slice {name!r} [{s / 1e3:.3f}, {e / 1e3:.3f}] us overlaps "
                                f"{stack[-1][2]!r} [{stack[-1][0] / 1e3:.3f}, {stack[-1][1] / 1e3:.3f}] without nesting")
                if len(problems) > 50:
                    return problems
                continue
            stack.append((s, e, name))
    return problems
