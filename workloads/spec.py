"""The workload grammar: `{prefill|decode|e2e}_b{batch}[_s{prompt_tokens}][_o{output_tokens}]`.

`prefill` generates one token (the prefill alone is measured), `decode` and `e2e` generate `output_tokens`;
`decode` reports decode figures first, `e2e` the whole request. All three record both phases.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from tracer.errors import TracerError

KINDS = ("prefill", "decode", "e2e")
DEFAULT_PROMPT_TOKENS = 128
DEFAULT_OUTPUT_TOKENS = 64
GRAMMAR = "{prefill|decode|e2e}_b{batch}[_s{prompt_tokens}][_o{output_tokens}]"
EXAMPLES = ("decode_b16", "prefill_b1_s512", "e2e_b8_s256_o128")
_PATTERN = re.compile(r"^(prefill|decode|e2e)_b(\d+)(?:_s(\d+))?(?:_o(\d+))?$")


@dataclass(frozen=True)
class Workload:
    kind: str
    batch: int
    prompt_tokens: int = DEFAULT_PROMPT_TOKENS
    output_tokens: int = DEFAULT_OUTPUT_TOKENS

    @property
    def name(self) -> str:
        return f"{self.kind}_b{self.batch}_s{self.prompt_tokens}_o{self.output_tokens}"

    @property
    def decode_steps(self) -> int:
        """Forward passes after the prefill: the prefill itself yields the first output token."""
        return self.output_tokens - 1

    def with_layout(self, batch: int | None = None, prompt_tokens: int | None = None,
                    output_tokens: int | None = None) -> "Workload":
        return Workload(self.kind, batch or self.batch, prompt_tokens or self.prompt_tokens,
                        output_tokens or self.output_tokens)


def parse_workload(name: str) -> Workload:
    """Parse a workload name; raise TracerError with the grammar and a close match when it is malformed."""
    m = _PATTERN.match(name.strip())
    if not m:
        raise TracerError(f"unknown workload {name!r}: expected {GRAMMAR}, e.g. {', '.join(EXAMPLES)}"
                          + _did_you_mean(name))
    kind, batch, prompt, output = m.group(1), int(m.group(2)), m.group(3), m.group(4)
    prompt_tokens = int(prompt) if prompt else DEFAULT_PROMPT_TOKENS
    if kind == "prefill":
        output_tokens = int(output) if output else 1
    else:
        output_tokens = int(output) if output else DEFAULT_OUTPUT_TOKENS
    if batch < 1 or prompt_tokens < 1 or output_tokens < 1:
        raise TracerError(f"workload {name!r}: batch, prompt and output tokens must be >= 1 ({GRAMMAR})")
    return Workload(kind, batch, prompt_tokens, output_tokens)


def _did_you_mean(name: str) -> str:
    """A repaired spelling of a near-miss (wrong kind word, missing underscore, stray case)."""
    s = name.strip().lower().replace("-", "_")
    head, _, rest = s.partition("_")
    kind = difflib.get_close_matches(head, KINDS, n=1, cutoff=0.5)
    if kind:
        candidate = f"{kind[0]}_{rest}" if rest else f"{kind[0]}_b1"
        candidate = re.sub(r"_(b|s|o)_?(\d+)", r"_\1\2", candidate)
        if _PATTERN.match(candidate):
            return f"; did you mean {candidate!r}?"
    return ""
