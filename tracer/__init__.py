"""tracer: profile LLM inference (HF transformers and vLLM), parse traces into tables, analyse kernels."""
__version__ = "0.1.0"
