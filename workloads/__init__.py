"""Workloads: the name grammar, model presets, the phase marker, and the HF and vLLM backends that run them."""
