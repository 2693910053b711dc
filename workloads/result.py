"""The result record every backend returns, and the figures derived from it (the sidecar's `figures`)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass
class RunResult:
    backend: str
    batch: int
    prompt_tokens: int
    output_tokens: int
    ttft_ms: float                      # start of the request(s) to the first output token (mean over requests)
    decode_step_ms: list[float]         # wall time of each decode forward pass (one output token per sequence)
    total_s: float                      # the whole measured run, prefill to last token
    prefill_tokens_computed: int        # prompt tokens that went through the model (prefix caching would cut it)
    peak_allocated_bytes: int | None = None   # torch allocator peak during the measured run (GPU)
    peak_reserved_bytes: int | None = None
    kv_cache_bytes: int | None = None   # HF: the cache tensors; vLLM: the KV blocks allocated for the run
    extra: dict = field(default_factory=dict)  # backend-specific facts (vLLM KV blocks, engine options, ...)

    def figures(self) -> dict:
        steps = np.asarray(self.decode_step_ms, dtype=float)
        out_tokens = self.batch * self.output_tokens
        fig = {
            "ttft_ms": self.ttft_ms,
            "decode_ms_per_token_mean": float(steps.mean()) if steps.size else None,
            "decode_ms_per_token_p50": float(np.percentile(steps, 50)) if steps.size else None,
            "decode_ms_per_token_p99": float(np.percentile(steps, 99)) if steps.size else None,
            "decode_steps": int(steps.size),
            "total_s": self.total_s,
            "output_tokens": out_tokens,
            "output_tokens_per_s": out_tokens / self.total_s if self.total_s > 0 else None,
            "total_tokens_per_s": self.batch * (self.prompt_tokens + self.output_tokens) / self.total_s
            if self.total_s > 0 else None,
            "prefill_tokens_computed": self.prefill_tokens_computed,
            "peak_allocated_bytes": self.peak_allocated_bytes,
            "peak_reserved_bytes": self.peak_reserved_bytes,
            "kv_cache_bytes": self.kv_cache_bytes,
        }
        fig.update(self.extra)
        return fig

    def to_dict(self) -> dict:
        return asdict(self)
