"""Serving: an HF server with a dynamic batcher, vLLM's API server, and profiled windows of either."""

# torch's scaled-dot-product attention backends `tracer serve --sdpa-backend` chooses from (tracer.serve.batcher).
# Here, so the CLI's options are built without importing the batcher (asyncio) on every command.
SDPA_BACKENDS = ("auto", "flash", "efficient", "cudnn", "math")
