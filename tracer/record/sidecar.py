"""The metadata sidecar: moved to tracer.io.sidecar (and atomic writes to tracer.io.atomic) so that parsing and
analysis need not import the recording layer; these names stay for callers of the old place."""
from tracer.io.atomic import write_atomic  # noqa: F401
from tracer.io.sidecar import (TRACE_SUFFIXES, read_sidecar, sidecar_path, trace_stem,  # noqa: F401
                               write_sidecar)
