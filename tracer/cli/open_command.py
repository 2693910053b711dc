"""`tracer open`: serve a trace to ui.perfetto.dev."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from tracer.cli.options import PORT


@click.command(name="open")
@click.argument("trace", type=click.Path(dir_okay=False))
@click.option("--port", default=9001, show_default=True, type=PORT, help="port on 127.0.0.1 (Perfetto's default)")
@click.option("--no-browser", is_flag=True, help="print the link only")
def open_trace(trace, port, no_browser):
    """Serve TRACE on 127.0.0.1 for ui.perfetto.dev and print (and open) the deep link; Ctrl-C stops."""
    import webbrowser

    from tracer.perfetto import make_server

    server, url, link = make_server(Path(trace), port)
    click.echo(f"serving {url}\nopen: {link}", err=False)
    sys.stdout.flush()
    if not no_browser:
        try:
            webbrowser.open(link)
        except webbrowser.Error:
            pass
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
    finally:
        server.server_close()
