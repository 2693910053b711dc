"""`python -m tracer.cli`: the same as the `tracer` command."""
from tracer.cli import command_line

command_line()
