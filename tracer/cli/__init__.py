"""The `tracer` command line: one click group; each command, a few lines that call library functions, lives in
its own module here (tracer/cli/<command>_command.py), shared options in tracer/cli/options.py."""
from __future__ import annotations

import atexit
import os
import sys
import threading

# NumPy asks the kernel for transparent huge pages for each array of 4 MB or more. Where THP defrag is "madvise"
# (a common default) such an allocation may stall in direct compaction, and tracer's large arrays live briefly:
# on a 623 MB trace, analyze spent 0.9 s more in the kernel with them (7.4 -> 7.0 s wall without). Set before
# NumPy is imported; a user's own setting wins.
os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")

import click

from tracer.cli.analyze_command import analyze
from tracer.cli.calibrate_command import calibrate
from tracer.cli.check_command import check
from tracer.cli.compare_command import compare
from tracer.cli.load_command import load
from tracer.cli.open_command import open_trace
from tracer.cli.record_command import record
from tracer.cli.serve_command import serve
from tracer.cli.sweep_command import sweep
from tracer.cli.workloads_command import workloads
from tracer.errors import TracerError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="show the profilers' own log lines (Kineto, torch.profiler)")
def cli(verbose):
    """Profile LLM inference (HF transformers and vLLM), parse traces into tables, analyse kernels."""
    click.get_current_context().obj = {"verbose": verbose}


for command in (analyze, calibrate, check, compare, load, open_trace, record, serve, sweep, workloads):
    cli.add_command(command)


def main(args=None):
    try:
        cli.main(args=args, standalone_mode=False)
    except TracerError as e:
        click.echo(f"tracer: error: {e}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("tracer: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        click.echo(f"tracer: error: {e.format_message()}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("tracer: interrupted", err=True)
        sys.exit(130)
    except MemoryError:
        click.echo("tracer: error: out of memory; use a smaller batch, prompt or trace", err=True)
        sys.exit(2)
    except ModuleNotFoundError as e:   # an install without one of tracer's dependencies (pip install --no-deps)
        click.echo(f"tracer: error: the package {e.name!r} is not installed (pip install {e.name}); what was written "
                   "before this step is kept", err=True)
        sys.exit(2)
    except Exception as e:  # a bug of ours: one line, the traceback only on request
        if _is_oom(e):   # torch.OutOfMemoryError, or the CPU allocator's RuntimeError
            first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), "")[:200]
            click.echo(f"tracer: error: out of memory ({first}); use a smaller batch or prompt", err=True)
            sys.exit(2)
        if os.environ.get("TRACER_DEBUG"):
            raise
        first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), "")
        click.echo(f"tracer: internal error: {type(e).__name__}: {first} (TRACER_DEBUG=1 shows the traceback)",
                   err=True)
        sys.exit(3)


def _is_oom(e: Exception) -> bool:
    text = f"{type(e).__name__} {e}".lower()
    return "outofmemory" in text or "out of memory" in text or "can't allocate memory" in text


# Commands that read traces and write their outputs through tracer's own code. Once their work is written, their
# process ends without the interpreter's teardown (freeing every module's objects, Arrow's and NumPy's included):
# 0.1-0.3 s of a small trace's 1.8 s `tracer analyze`, measured on two cores.
QUICK_EXIT_COMMANDS = ("analyze", "compare", "check")


def command_line() -> None:
    """The `tracer` command and `python -m tracer.cli`: main(), then quick_exit for QUICK_EXIT_COMMANDS."""
    args = sys.argv[1:]
    try:
        main(args)
        code = 0
    except SystemExit as e:
        code = e.code
    if next((a for a in args if not a.startswith("-")), None) in QUICK_EXIT_COMMANDS:
        quick_exit(code)
    sys.exit(code)


def quick_exit(code) -> None:
    """End the process with `code` (sys.exit's) after tracer's background writes, the atexit handlers and a flush
    of stdout and stderr, skipping only the teardown of modules; returns where a thread not of tracer's still
    runs (a normal exit then waits for it)."""
    from tracer.io.forked import wait_background

    wait_background()
    if threading.active_count() > 1:
        return
    atexit._run_exitfuncs()
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):   # a closed pipe: a normal exit could not have written it either
            pass
    os._exit(code or 0)
