"""Typed decoding of Chrome trace events with msgspec: only the fields tracer reads are decoded, straight into
slot objects. Text that repeats (names, shapes, type lists, launch dims) stays raw JSON bytes: chrome.py joins
them into one Arrow buffer, dictionary-encodes it and decodes each distinct value once. gc=False: the objects
hold no cycles, so the collector need not track millions of them."""
from __future__ import annotations

from typing import Union

import msgspec


class Args(msgspec.Struct, gc=False):
    external_id: int | None = msgspec.field(name="External id", default=None)
    correlation: int | None = None
    device: int | None = None
    stream: int | None = None
    grid: msgspec.Raw = msgspec.Raw()
    block: msgspec.Raw = msgspec.Raw()
    registers: int | None = msgspec.field(name="registers per thread", default=None)
    shared: int | None = msgspec.field(name="shared memory", default=None)
    bytes: int | float | str | None = None   # ROCm writes its runtime calls' byte counts as text ("1")
    input_dims: msgspec.Raw = msgspec.field(name="Input Dims", default=msgspec.Raw())
    input_type: msgspec.Raw = msgspec.field(name="Input type", default=msgspec.Raw())
    flops: int | float | None = None


class Complete(msgspec.Struct, gc=False, tag="X", tag_field="ph"):
    """A complete event (ph "X"): the only kind with a start and a duration, so the only one tracer keeps."""
    cat: str | None = None
    name: msgspec.Raw = msgspec.Raw()
    pid: int | str | None = None
    tid: int | str | None = None
    ts: float | None = None
    dur: float | None = None
    args: Args = msgspec.field(default_factory=Args)


# Every other phase of the Trace Event Format decodes to its category alone (counted where it is one of tracer's,
# as dropped): its other fields are skipped, not built. Kineto writes a flow event ("s", "f") for each kernel
# launch, a third of a trace's events. An event with no ph or a phase the format does not define fails the
# typed decoding, and the trace takes the generic path (chrome.py).
OTHER_PHASES = tuple(msgspec.defstruct(f"Phase{i}", [("cat", "str | None", None)], gc=False, tag=ph, tag_field="ph")
                     for i, ph in enumerate("BEiICbneSTpFstfPONDMRc(),"))
Event = Union[(Complete,) + OTHER_PHASES]


class Document(msgspec.Struct):
    traceEvents: list[Event] = []
    # keys a writer may put after traceEvents: read from the last piece of a large trace (chrome.py)
    deviceProperties: msgspec.Raw = msgspec.Raw()
    distributedInfo: msgspec.Raw = msgspec.Raw()
    schemaVersion: msgspec.Raw = msgspec.Raw()


EVENTS = msgspec.json.Decoder(list[Event])
DOCUMENT = msgspec.json.Decoder(Document)
