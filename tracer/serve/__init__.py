"""Serving: an HF server with a dynamic batcher, vLLM's API server, and profiled windows of either."""
