"""Synthetic prompts: token ids of exactly the requested lengths, the same for every backend."""
from __future__ import annotations

import numpy as np

PROMPT_SEED = 1234


def synthetic_prompt_ids(batch: int, prompt_tokens: int, vocab_size: int, seed: int = PROMPT_SEED) -> list[list[int]]:
    """`batch` distinct prompts of `prompt_tokens` ids each. Ids avoid the lowest 1000 (special tokens in most
    vocabularies) so no prompt holds an EOS; distinct prompts keep prefix caches from sharing blocks."""
    rng = np.random.default_rng(seed)
    low = min(1000, vocab_size // 2)
    return rng.integers(low, vocab_size, size=(batch, prompt_tokens)).tolist()
