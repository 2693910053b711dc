"""Trace readers: every format into the tables of tracer.schema."""
from tracer.parse.load import load_tables

__all__ = ["load_tables"]
