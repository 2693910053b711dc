"""tracer: profile LLM inference (HF transformers and vLLM), parse traces into tables, analyse kernels.

The Python API (see docs/python-api.md):

    import tracer
    t = tracer.load("tests/data/h100_hf_gpt2_decode_b16.json.gz")   # Trace: .kernels, .ops, .ranges, ...
    a = t.analyze()                                                  # Analysis: .kernels, .phases, .top, ...
    c = tracer.compare([path_a, path_b])                             # Comparison: .table, .write(out)
    paths = tracer.record("decode_b16", backend="hf")               # trace and sidecar paths
"""
from tracer.api import Analysis, Comparison, Trace, compare, load, record
from tracer.errors import TracerError

__version__ = "0.1.0"
__all__ = ["Analysis", "Comparison", "Trace", "TracerError", "compare", "load", "record"]
