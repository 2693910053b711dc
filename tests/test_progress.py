"""Progress output: a tqdm bar on a terminal (a real pty), plain lines on a pipe: no carriage-return redraws in
a log, one line per finished stage."""
import os
import pty

from tracer.progress import LineProgress, progress


def _drain(fd) -> str:
    os.set_blocking(fd, False)
    chunks = []
    while True:
        try:
            b = os.read(fd, 65536)
        except (BlockingIOError, OSError):
            break
        if not b:
            break
        chunks.append(b)
    return b"".join(chunks).decode()


def test_on_a_pipe_one_line_per_stage_and_no_redraws():
    r, w = os.pipe()
    with os.fdopen(w, "w") as f:
        for i in range(3):   # three load runs of 50 requests
            with progress(50, "req", f"load rate {2 ** i}/s", file=f) as bar:
                for _ in range(50):
                    bar.update(1)
        sweep = progress(4, "runs", "tracer sweep", file=f, each=True)   # a sweep: each point is a stage
        for point in range(4):
            sweep.set_postfix_str(f"hf b={2 ** point} ok")
            sweep.update(1)
        sweep.close()
    out = os.fdopen(r).read()
    assert "\r" not in out
    lines = out.splitlines()
    assert len(lines) == 7, lines
    assert lines[0].startswith("load rate 1/s: 50/50 req in ") and lines[2].startswith("load rate 4/s: 50/50 req")
    assert lines[3].startswith("tracer sweep: 1/4 runs") and lines[6].endswith("(hf b=8 ok)")


def test_on_a_terminal_a_tqdm_bar():
    master, slave = pty.openpty()
    with os.fdopen(slave, "w") as f:
        bar = progress(10, "req", "load", file=f)
        assert not isinstance(bar, LineProgress)
        for _ in range(10):
            bar.update(1)
        bar.close()
        f.flush()
        out = _drain(master)
    os.close(master)
    assert "\r" in out and "10/10" in out
