"""One output written by a forked child while the parent writes the others: drawing a figure is the slowest
output of a small trace's analysis (matplotlib's text layout), and a second core is usually idle."""
from __future__ import annotations

import contextlib
import multiprocessing
import os


@contextlib.contextmanager
def alongside(fn, *args):
    """Run fn(*args) in a forked child while the block runs, and wait for it when the block ends. Where the
    child failed, or there is no fork or no second core, fn runs here instead, so its error is raised as it would
    be inline and the output is the same either way. An error inside the block stops the child."""
    child = None
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
