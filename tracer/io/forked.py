"""Work done beside the main line, on a second core that is usually idle: outputs written by a forked child while the
parent writes the others (the figures of an analysis, a comparison's report.html too: its slowest outputs),
children forked early that import their libraries while the parent parses, a job in a child of its own
(kernels.parquet, encoded while the analysis runs), and work on a background thread (the parse cache, written
while the analysis runs; Arrow encodes and compresses without the GIL). Every fork waits for the background
threads first: a child forked while a thread holds a lock (the allocator's, Arrow's) could wait on it for ever."""
from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import os
import threading
from concurrent.futures import Future
from dataclasses import dataclass

_BACKGROUND: list[threading.Thread] = []
_HELD: list = []   # prepared children waiting for cores_free or their release


def in_background(fn, *args) -> Future:
    """Run fn(*args) on a thread and return at once, with a Future of its result (or error). The thread is not a
    daemon: the interpreter waits for it at exit, so what it writes is complete."""
    done: Future = Future()

    def run():
        try:
            done.set_result(fn(*args))
        except BaseException as e:
            done.set_exception(e)

    t = threading.Thread(target=run, name=f"tracer-{getattr(fn, '__name__', 'background')}")
    t.start()
    _BACKGROUND.append(t)
    return done


class ChildJob:
    """fn(*args) running in a child (forked by in_child, or a prepared child it was sent to); result() waits for it,
    and runs fn here where the child failed or there was none, so its error is raised as it would be inline."""

    def __init__(self, fn, args, process: multiprocessing.process.BaseProcess | None):
        self.fn, self.args, self.process = fn, args, process
        if process is not None:
            _CHILD_JOBS.append(self)

    def result(self) -> None:
        if self.process is not None:
            self.process.join()
            self._forget()
            if self.process.exitcode == 0:
                return
        self.fn(*self.args)

    def stop(self) -> None:
        """End the child without its result (an error path)."""
        if self.process is not None:
            self.process.terminate()
            self.process.join()
            self._forget()

    def _forget(self) -> None:
        if self in _CHILD_JOBS:
            _CHILD_JOBS.remove(self)


_CHILD_JOBS: list[ChildJob] = []


def in_child(fn, *args) -> ChildJob:
    """fn(*args) in a child forked now, for work that holds the GIL too much to run on a thread beside this
    process's own (a Parquet table encoded from pandas while the analysis runs): no thread is left running, so a
    later fork need not wait for it."""
    forked = _forked(_quiet_exit, fn, args)
    return ChildJob(fn, args, forked.process if forked is not None else None)


def stop_child_jobs() -> None:
    """Stop the children of in_child whose result nobody will ask for (an error path, before their output folder
    is removed)."""
    while _CHILD_JOBS:
        _CHILD_JOBS[-1].stop()


def wait_background() -> None:
    """Wait for every thread in_background started: before a fork, or before reading what one writes."""
    while _BACKGROUND:
        _BACKGROUND.pop().join()


@contextlib.contextmanager
def prepared_child(modules: tuple[str, ...], held: bool = False, until_cores_free: bool = False):
    """A child forked now that imports `modules` at a low priority and then waits for one job from `alongside`:
    the imports (matplotlib's: about half a second) take the core that the parse's table building and the
    analysis leave idle, instead of delaying the outputs. `held`: the child imports only once `release`d (forked
    now, before the parse starts its threads, it would otherwise take cores from a decode on every core);
    `until_cores_free`: released by `cores_free` too. Yields None where there is no fork or no second core; a
    child that got no job is stopped when the block ends."""
    child = _forked(_prepared_main, modules, held)
    if child is not None:
        child.held = held
        if held and until_cores_free:
            _HELD.append(child)
    try:
        yield child
    finally:
        if child in _HELD:
            _HELD.remove(child)
        if child is not None and not child.busy:
            _send(child, ("none",))   # no job (an error, or not used): the child exits
            child.process.join(timeout=10)
            if child.process.is_alive():
                child.process.terminate()
                child.process.join()


def release(child: PreparedChild | None) -> None:
    """Let a held prepared_child start its imports."""
    if child is not None and child.held and not child.busy:
        child.held = False
        _send(child, ("import",))


def cores_free() -> None:
    """The cores are free for the held children's imports (a parse's decode workers are done: the table
    building after them runs on one core)."""
    while _HELD:
        release(_HELD.pop())


@dataclass
class PreparedChild:
    process: multiprocessing.process.BaseProcess
    jobs: object   # the sending end of the job pipe
    busy: bool = False
    held: bool = False   # waiting for `release` before it imports


def started_alongside(fn, *args, child: PreparedChild | None = None) -> ChildJob:
    """fn(*args) begun in a child (a `prepared_child` when given, else one forked now); `joined` waits for it.
    Where there is no fork or no second core, fn runs here when `joined` waits for it."""
    if child is not None and not child.busy and child.process.is_alive():
        # sent from a thread: a big trace's tables take the child a few tenths of a second to read, time the
        # caller's own work goes on meanwhile
        child.busy = True
        in_background(_send, child, ("run", fn, args))
        return ChildJob(fn, args, child.process)
    return in_child(fn, *args)


@contextlib.contextmanager
def joined(job: ChildJob):
    """Wait for a started_alongside job when the block ends; where its child failed, run it here, so that its error
    is raised as it would be inline and the output is the same either way. An error inside the block stops it."""
    try:
        yield
    except BaseException:
        job.stop()
        raise
    if job.process is not None:
        wait_background()   # the job sent (or found unsendable: the child then exits without one)
    job.result()


def alongside(fn, *args, child: PreparedChild | None = None):
    """Run fn(*args) in a child while the block runs (started_alongside), and wait for it when the block ends
    (joined)."""
    return joined(started_alongside(fn, *args, child=child))


def _forked(target, *args) -> PreparedChild | None:
    """A forked child running target(*args, <receiving end of a job pipe>), or None where none can be had."""
    if (os.cpu_count() or 1) < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return None
    wait_background()
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    try:
        process = ctx.Process(target=target, args=(*args, receive), daemon=True)
        process.start()
    except (AssertionError, OSError):   # inside a daemonic pool worker, or out of processes
        return None
    finally:
        receive.close()
    return PreparedChild(process, send)


def _send(child: PreparedChild, message: tuple) -> None:
    """("run", fn, args), ("none",) or ("failed",). Not an end of file: forks made later hold the pipe too."""
    try:
        child.jobs.send(message)
    except Exception:   # the job cannot be pickled (nothing of it was written), or the child is gone
        if message[0] == "run":
            _send(child, ("failed",))


def _prepared_main(modules, held, receive) -> None:
    try:
        os.nice(10)   # the parent's own work first: this child should only take a core left idle
    except OSError:
        pass
    if held:   # wait for the release (or a job, run with its imports on its way; or a stop)
        try:
            first = receive.recv()
        except (EOFError, OSError):
            first = ("failed",)
        if first[0] == "run":
            _quiet_exit(*first[1:], None)
            return
        if first[0] != "import":
            os._exit(0 if first[0] == "none" else 1)
    # the job is read on a thread from the start: a large one (a big trace's kernel table) would otherwise hold
    # the parent in send() until these imports are done
    message: list = [("failed",)]
    reader = threading.Thread(target=_receive, args=(receive, message))
    reader.start()
    for name in modules:
        try:
            importlib.import_module(name)
        except BaseException:   # the job's own import then fails and the parent runs it itself
            break
    reader.join()
    kind, *job = message[0]
    if kind != "run":
        os._exit(0 if kind == "none" else 1)
    _quiet_exit(*job, None)


def _receive(receive, message: list) -> None:
    try:
        message[0] = receive.recv()
    except (EOFError, OSError):
        pass
    if message[0][0] == "none":
        os._exit(0)   # at once, imports unfinished: the parent is waiting for this child to end (an error path)


def _quiet_exit(fn, args, _receive) -> None:
    # A failure is reported by the parent's own run of fn, not by a second traceback from the child.
    try:
        fn(*args)
    except BaseException:
        os._exit(1)
