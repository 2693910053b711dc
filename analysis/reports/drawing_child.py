"""The child that draws the PNGs of `tracer analyze` and `compare` (roofline.png, breakdown.png), forked before the
parse so that it imports matplotlib on the core that the parent's table building and analysis leave idle."""
from __future__ import annotations

import contextlib

# what the child imports before it draws: about 0.6 s that otherwise lands after the analysis
DRAWING_MODULES = ("matplotlib.figure", "matplotlib.backends.backend_agg", "textalloc")

# Above this much trace on disk the child is held until the parse is done (`parsed`): imported beside a decode
# that keeps both cores busy, the imports slowed it by a third (623 MB: 2.4 -> 3.3 s), low priority or not
IMPORT_AT_ONCE_MAX_BYTES = 16 * 2**20


@contextlib.contextmanager
def output_children(trace_bytes: int = 0, traces: int = 1):
    """The drawing child of write_outputs, forked now (before any thread of the parse exists). For traces over
    IMPORT_AT_ONCE_MAX_BYTES in all it imports only once the cores are free: when the decode of a single trace
    ends (its table building runs on one core), else once released by `parsed`. Yields {"drawing": child},
    None where no child can be had."""
    from tracer.io.forked import prepared_child

    held = trace_bytes > IMPORT_AT_ONCE_MAX_BYTES
    with prepared_child(DRAWING_MODULES, held=held, until_cores_free=held and traces == 1) as drawing:
        yield {"drawing": drawing}


def parsed(children: dict) -> None:
    """The traces are parsed: a held drawing child may import now."""
    from tracer.io.forked import release

    release(children.get("drawing"))
