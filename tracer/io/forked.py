"""Work done beside the main line, on a second core that is usually idle: outputs written by a forked child
while the parent writes the others (drawing figures is the slowest output of a small trace's analysis), and work
on a background thread (the parse cache, written while the analysis runs; Arrow encodes and compresses without
the GIL). Every fork waits for the background threads first: a child forked while a thread holds a lock (the
allocator's, Arrow's) could wait on it for ever."""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading

_BACKGROUND: list[threading.Thread] = []


def in_background(fn, *args) -> None:
    """Run fn(*args) on a thread and return at once. The thread is not a daemon: the interpreter waits for it at
    exit, so what it writes is complete."""
    t = threading.Thread(target=fn, args=args, name=f"tracer-{getattr(fn, '__name__', 'background')}")
    t.start()
    _BACKGROUND.append(t)


def wait_background() -> None:
    """Wait for every thread in_background started: before a fork, or before reading what one writes."""
    while _BACKGROUND:
        _BACKGROUND.pop().join()


@contextlib.contextmanager
def alongside(fn, *args):
    """Run fn(*args) in a forked child while the block runs, and wait for it when the block ends. Where the
    child failed, or there is no fork or no second core, fn runs here instead, so its error is raised as it would
    be inline and the output is the same either way. An error inside the block stops the child."""
    child = None
    wait_background()
    if (os.cpu_count() or 1) > 1 and "fork" in multiprocessing.get_all_start_methods():
        try:
            child = multiprocessing.get_context("fork").Process(target=_quiet_exit, args=(fn, args), daemon=True)
            child.start()
        except (AssertionError, OSError):   # inside a daemonic pool worker, or out of processes
            child = None
    try:
        yield
    except BaseException:
        if child is not None:
            child.terminate()
            child.join()
        raise
    if child is not None:
        child.join()
    if child is None or child.exitcode != 0:
        fn(*args)


def _quiet_exit(fn, args) -> None:
    # A failure is reported by the parent's own run of fn, not by a second traceback from the child.
    try:
        fn(*args)
    except BaseException:
        os._exit(1)
