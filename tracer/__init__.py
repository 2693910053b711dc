"""tracer: profile LLM inference (HF transformers and vLLM), parse traces into tables, analyse kernels.

The Python API (see the README's "Python API" section):

    import tracer
    t = tracer.load("tests/data/h100_hf_gpt2_decode_b16.json.gz")   # Trace: .kernels, .ops, .ranges, ...
    a = t.analyze()                                                  # Analysis: .kernels, .phases, .top, ...
    c = tracer.compare([path_a, path_b])                             # Comparison: .table, .write(out)
    paths = tracer.record("decode_b16", backend="hf")               # trace and sidecar paths
"""
import sys
import types

from tracer.api import Analysis, Comparison, Trace, compare, load, record
from tracer.errors import TracerError

__version__ = "0.1.0"
__all__ = ["Analysis", "Comparison", "Trace", "TracerError", "compare", "load", "record"]


class _Package(types.ModuleType):
    """`tracer.load` and `tracer.record` are the API's functions, and also the names of subpackages (the load
    tester, the recorders). Importing a submodule binds it as an attribute of its parent, which would replace
    the function; this keeps the function. The subpackages stay importable as usual
    (`from tracer.record.run import RecordRequest`, `import tracer.load.runner`); only attribute chains such as
    `tracer.record.run` after `import tracer.record.run` do not reach them."""

    def __setattr__(self, name, value):
        if name in ("load", "record") and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
