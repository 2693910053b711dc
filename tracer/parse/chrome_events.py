"""Typed decoding of Chrome trace events with msgspec: only the fields tracer reads are decoded, straight into
slot objects; op input shapes stay raw JSON bytes (they are stored as JSON text anyway)."""
from __future__ import annotations

import msgspec


class Args(msgspec.Struct):
    external_id: int | None = msgspec.field(name="External id", default=None)
    correlation: int | None = None
    device: int | None = None
    stream: int | None = None
    grid: list[int] | None = None
    block: list[int] | None = None
    registers: int | None = msgspec.field(name="registers per thread", default=None)
    shared: int | None = msgspec.field(name="shared memory", default=None)
    bytes: int | float | None = None
    input_dims: msgspec.Raw = msgspec.field(name="Input Dims", default=msgspec.Raw())
    input_type: msgspec.Raw = msgspec.field(name="Input type", default=msgspec.Raw())
    flops: int | float | None = None


class Event(msgspec.Struct):
    ph: str | None = None
    cat: str | None = None
    name: str | None = None
    pid: int | str | None = None
    tid: int | str | None = None
    ts: float | None = None
    dur: float | None = None
    args: Args = msgspec.field(default_factory=Args)


class Document(msgspec.Struct):
    traceEvents: list[Event] = []


EVENTS = msgspec.json.Decoder(list[Event])
DOCUMENT = msgspec.json.Decoder(Document)
