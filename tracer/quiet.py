"""Hide the profilers' own chatter (Kineto's `USDT:` and `gpuGetDeviceCount failed` lines, torch.profiler's
"Profiler clears events" warning) unless -v: they print from C++ straight to file descriptor 2, so stderr is
passed through a filtering thread that drops only those lines."""
from __future__ import annotations

import atexit
import os
import re
import sys
import threading
import warnings

NOISE = re.compile(rb"^(USDT:|.*gpuGetDeviceCount failed|.*libkineto|.*CUDA is not available, disabling CUDA "
                   rb"profiling|\s+self\.profiler = prof\.profile\()")
_installed = False


def quiet_profilers() -> None:
    global _installed
    warnings.filterwarnings("ignore", message=".*Profiler clears events.*")
    warnings.filterwarnings("ignore", message=".*CUDA is not available, disabling CUDA profiling.*")
    if _installed:
        return
    try:
        sys.stderr.flush()
        real = os.dup(2)
        r, w = os.pipe()
        os.dup2(w, 2)
        os.close(w)
    except OSError:
        return
    _installed = True

    def pump():
        with os.fdopen(r, "rb") as src:
            for line in src:
                if not NOISE.match(line):
                    os.write(real, line)

    t = threading.Thread(target=pump, daemon=True)
    t.start()

    def restore():   # at exit: the last lines (an error message) reach the terminal before we go
        try:
            sys.stderr.flush()
            os.dup2(real, 2)
        except OSError:
            return
        t.join(timeout=2)

    atexit.register(restore)
