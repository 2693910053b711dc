"""PyTorch's profiler writes some names without escaping the quotes in them (a Python function named after a string
literal, in a vLLM trace: `"name": "torch/_inductor/kernel_template_choice.py(0): "pre_grad"",`), and such a
trace is not JSON. Where tracer.parse.chrome fails to decode a trace, it decodes it once more with those quotes
escaped, and says so."""
from __future__ import annotations

import re

from tracer.errors import TracerError

NOTICES = "tracer_notices"   # in a decoded document: what tracer mended, in words


class NotJSON(Exception):
    """A Chrome trace's text is not JSON (orjson's message)."""


# Kineto writes each event's "pid" right after its name (on the same line or the next, spaced or compact): a name
# with bare quotes runs from `"name": "` to the `", "pid":` after it, and a quote inside it is one that no JSON
# structure follows (a comma, colon or bracket), which keeps the names of other events out.
_END_OF_NAME = rb'"\s*,\s*"pid"\s*:'
_INNER_QUOTE = rb'"(?!\s*[,:}\]])'
_NAME_WITH_BARE_QUOTE = re.compile(rb'("name":\s*")((?:[^"\\\n]|\\.)*' + _INNER_QUOTE + rb'(?:(?!' + _END_OF_NAME
                                   + rb')(?:[^"\n]|' + _INNER_QUOTE + rb'))*?)(' + _END_OF_NAME + rb')')
_BARE_QUOTE = re.compile(rb'(?<!\\)"')


def name_quotes_escaped(data) -> tuple[bytes, int] | None:
    """(the trace with the bare quotes inside event names escaped, how many names had them), or None where no
    name has one."""
    count = 0

    def escape(m):
        nonlocal count
        count += 1
        return m.group(1) + _BARE_QUOTE.sub(lambda _: b'\\"', m.group(2)) + m.group(3)

    fixed = _NAME_WITH_BARE_QUOTE.sub(escape, data)
    return (fixed, count) if count else None


def decoded_with_name_quotes_escaped(decode, data, source: str, error: NotJSON) -> tuple:
    """decode(data, source) of the trace with its names' bare quotes escaped, a notice in its document; the
    one-line error of `error` where no name has bare quotes or the mended trace is still not JSON."""
    escaped = name_quotes_escaped(data)
    try:
        if escaped is None:
            raise error
        doc, *rest = decode(escaped[0], source)
    except NotJSON:
        raise TracerError(f"{source}: not valid JSON ({error}); is the file complete?") from None
    doc[NOTICES] = [f"{escaped[1]} event names held unescaped quotes (a PyTorch profiler bug: the file is not JSON "
                    "as written); read with those quotes escaped"]
    return (doc, *rest)
