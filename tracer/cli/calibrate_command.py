"""`tracer calibrate`: this GPU's measured peaks, for the roofline."""
from __future__ import annotations

import click


@click.command()
@click.option("--out", help="where to store the peaks (default ~/.cache/tracer/peaks/<device>.json)")
def calibrate(out):
    """Measure this GPU's achievable GEMM FLOP/s per dtype and copy bandwidth, for the roofline."""
    from tracer.recording.calibrate import calibrate as measure, save_calibration

    result = measure()
    for key, value in result.items():
        click.echo(f"{key}: {value:.1f}" if isinstance(value, float) else f"{key}: {value}")
    click.echo(f"wrote {save_calibration(result, out)}", err=True)
