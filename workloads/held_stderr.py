"""What this process and the processes it starts write to file descriptor 2, held back while vLLM's engine
starts. The engine core runs in a spawned process and logs why it failed to start there (with tracebacks); the
exception the parent sees only says "see root cause above". Held back, a failed start becomes one line naming
the root cause plus a log file; a good start releases the held lines and passes everything through from then on."""
from __future__ import annotations

import contextlib
import os
import re
import tempfile
import threading


class HeldStderr:
    def __init__(self, out_fd: int, live: bool):
        self.out_fd = out_fd
        self.lines: list[str] = []
        self._held: list[bytes] = []
        self._lock = threading.Lock()
        self._live = live
        self._partial = b""   # a line the last read cut off

    def feed(self, chunk: bytes) -> None:
        with self._lock:
            if self._live:
                _write(self.out_fd, chunk)
            else:
                self._held.append(chunk)
        *complete, self._partial = (self._partial + chunk).split(b"\n")
        self.lines.extend(line.decode("utf-8", "replace") for line in complete)
        del self.lines[:-2000]

    def release(self) -> None:
        """Show what was held and pass everything through from now on."""
        with self._lock:
            for chunk in self._held:
                _write(self.out_fd, chunk)
            self._held.clear()
            self._live = True

    def save(self) -> str:
        fd, path = tempfile.mkstemp(prefix="tracer-vllm-start-", suffix=".log")
        with self._lock, os.fdopen(fd, "wb") as f:
            f.write(b"".join(self._held))
        return path


def _write(fd: int, data: bytes) -> None:
    try:
        os.write(fd, data)
    except OSError:
        pass


@contextlib.contextmanager
def held_stderr(live: bool = False):
    """Route fd 2 through a pipe for the block (children started inside inherit it and keep it; the pump thread
    forwards their output for as long as they live). Yields a HeldStderr."""
    try:
        saved = os.dup(2)
        read_end, write_end = os.pipe()
    except OSError:  # no usable fd 2: nothing to hold
        yield HeldStderr(2, live=True)
        return
    held = HeldStderr(os.dup(saved), live)
    os.dup2(write_end, 2)
    os.close(write_end)
    threading.Thread(target=_pump, args=(read_end, held), daemon=True).start()
    try:
        yield held
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _pump(read_end: int, held: HeldStderr) -> None:
    while True:
        try:
            chunk = os.read(read_end, 65536)
        except OSError:
            return
        if not chunk:
            return
        held.feed(chunk)


_ERROR_LINE = re.compile(r"^(?:\(\w+ pid=\d+\)\s*)?([A-Za-z_.]*(?:Error|Exception)): (.+)$")
_GENERIC = re.compile(r"see root cause above|Engine core initialization failed", re.I)


def root_cause(lines) -> str | None:
    """The last `SomeError: message` line that is not vLLM's generic "see root cause above"."""
    for line in reversed(list(lines)):
        m = _ERROR_LINE.match(line.strip())
        if m and not _GENERIC.search(m[2]):
            message = re.sub(r",?\s*please check the stack trace above for the root cause\.?$", "", m[2])
            return f"{m[1].rsplit('.', 1)[-1]}: {message.strip()}"
    return None
