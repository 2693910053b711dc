"""`tracer check`: what Perfetto's JSON importer would mis-draw in a trace."""
from __future__ import annotations

from pathlib import Path

import click

from tracer.errors import TracerError


@click.command()
@click.argument("trace")
def check(trace):
    """Report what Perfetto's JSON importer would mis-draw: overlapping slices, unmatched begin/end, bad units."""
    import orjson

    from tracer.parse.load import read_bytes
    from tracer.perfetto import check_chrome_trace

    try:
        doc = orjson.loads(read_bytes(Path(trace)))
    except orjson.JSONDecodeError as e:
        raise TracerError(f"{trace}: not valid JSON ({e})") from None
    events = doc.get("traceEvents", []) if isinstance(doc, dict) else doc
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise TracerError(f"{trace}: not a Chrome trace (traceEvents must be a list of event objects)")
    problems = check_chrome_trace(events)
    for p in problems:
        click.echo(p)
    if problems:
        raise TracerError(f"{trace}: {len(problems)} problem(s) Perfetto would draw wrongly")
    click.echo(f"{trace}: {len(events)} events, nothing Perfetto would mis-draw")
