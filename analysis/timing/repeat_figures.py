"""Timing figures repeated over runs (the sidecar's `figures.unprofiled` and `figures.profiled`: medians with
`<figure>_spread_pct`, the interquartile range as % of the median), written as text: "4.13 ms/token ±3%", a
warning where a spread is above 10%, and HF's generate() figures beside its annotated loop.

Which HF figure a comparison uses: generate(), the way HF users run it, where the sidecar has it; the annotated
loop's figure is shown beside it."""
from __future__ import annotations

from analysis.numbers import absent, count, sig3

# a spread above this many percent of the median: the figure would move that much on a second record
SPREAD_WARN_PCT = 10.0   # the warning says "a tenth"
GENERATE = "hf_generate_"
# (label, key in the repeated block) of the figures reports show with their spread
SHOWN = (("output tokens/s", "output_tokens_per_s"), ("TTFT (ms)", "ttft_ms"),
         ("decode ms/token, mean", "decode_ms_per_token_mean"), ("decode ms/token, p99", "decode_ms_per_token_p99"))
# HF generate() figures: (label, key without the hf_generate_ prefix, the loop's key they stand beside)
GENERATE_SHOWN = (("output tokens/s", "output_tokens_per_s", "output_tokens_per_s"),
                  ("TTFT (ms)", "ttft_ms", "ttft_ms"),
                  ("decode ms/token", "decode_ms_per_token", "decode_ms_per_token_mean"))


def spread_text(pct) -> str:
    """A spread as table cells and sentences write it: whole percent from 1% up ("3"), else one decimal ("0.4")."""
    if absent(pct):
        return "-"
    return f"{float(pct):.0f}" if float(pct) >= 1 else f"{float(pct):.1f}"


def with_spread(value, pct, unit: str = "") -> str:
    """4.1321, 3.1 -> "4.13 ±3%" (with `unit`: "4.13 ms/token ±3%")."""
    text = sig3(value) + (f" {unit}" if unit else "")
    return text if absent(pct) else f"{text} ±{spread_text(pct)}%"


def unprofiled(figures: dict | None) -> dict:
    return (figures or {}).get("unprofiled") or {}


def profiled(figures: dict | None) -> dict:
    return (figures or {}).get("profiled") or {}


def spread(block: dict, key: str):
    return block.get(f"{key}_spread_pct")


def has_generate(figures: dict | None) -> bool:
    return unprofiled(figures).get(f"{GENERATE}runs") is not None


def hf_comparable(figures: dict | None, loop_key: str):
    """(value, spread, which) of an unprofiled figure for comparing backends: HF's generate() figure where the
    sidecar has it ("generate()"), else the run's own ("loop" for HF, "" for others)."""
    un = unprofiled(figures)
    for _, gkey, lkey in GENERATE_SHOWN:
        if lkey == loop_key and un.get(GENERATE + gkey) is not None:
            return un[GENERATE + gkey], un.get(f"{GENERATE}{gkey}_spread_pct"), "generate()"
    return un.get(loop_key), spread(un, loop_key), ""


def spread_warnings(label: str, figures: dict | None) -> list[str]:
    """One sentence naming every shown figure whose spread is above SPREAD_WARN_PCT (none: an empty list)."""
    un, pr = unprofiled(figures), profiled(figures)
    blocks = ((f"without the profiler ({count(un.get('runs'))} runs)", un, SHOWN),
              (f"under the profiler ({count(pr.get('runs'))} runs)", pr, SHOWN[2:3]),
              (f"HF generate() ({count(un.get(GENERATE + 'runs'))} runs)", un,
               tuple((lab, GENERATE + g) for lab, g, _ in GENERATE_SHOWN)))
    parts = []
    for where, block, shown in blocks:
        wide = [f"{lab} ±{spread_text(s)}%" for lab, key in shown
                if not absent(s := spread(block, key)) and float(s) > SPREAD_WARN_PCT]
        if wide:
            parts.append(f"{where}: " + ", ".join(wide))
    if not parts:
        return []
    return [f"warning: {label}'s figures vary by more than a tenth between runs (interquartile range over the "
            f"median), {'; '.join(parts)}: record it again on a quieter machine or with more --repeat"]


def record_lines(label: str, figures: dict) -> list[str]:
    """What `tracer record` says of one run: its medians with their spreads, generate()'s, the profiler's
    inflation with both sides' spreads, the attention backend, and warnings."""
    un, pr = unprofiled(figures), profiled(figures)
    lines = []
    if un:
        lines.append(f"{label}: without a profiler, median of {count(un.get('runs'))} runs: "
                     f"TTFT {with_spread(un.get('ttft_ms'), spread(un, 'ttft_ms'), 'ms')}, "
                     f"decode {with_spread(un.get('decode_ms_per_token_mean'), spread(un, 'decode_ms_per_token_mean'), 'ms/token')} "
                     f"(p50 {with_spread(un.get('decode_ms_per_token_p50'), spread(un, 'decode_ms_per_token_p50'))}, "
                     f"p99 {with_spread(un.get('decode_ms_per_token_p99'), spread(un, 'decode_ms_per_token_p99'))}), "
                     f"{with_spread(un.get('output_tokens_per_s'), spread(un, 'output_tokens_per_s'), 'output tokens/s')}")
    if has_generate(figures):
        g = {key: (un.get(GENERATE + key), un.get(f"{GENERATE}{key}_spread_pct")) for _, key, _ in GENERATE_SHOWN}
        lines.append(f"{label}: HF generate(), median of {count(un.get(GENERATE + 'runs'))} runs: "
                     f"TTFT {with_spread(*g['ttft_ms'], 'ms')}, decode {with_spread(*g['decode_ms_per_token'], 'ms/token')}, "
                     f"{with_spread(*g['output_tokens_per_s'], 'output tokens/s')}")
    if pr and figures.get("profiler_inflation"):
        key = "decode_ms_per_token_mean"
        lines.append(f"{label}: profiler inflation {sig3(figures['profiler_inflation'])}x (decode ms/token, median "
                     f"of {count(pr.get('runs'))} profiled runs {with_spread(pr.get(key), spread(pr, key))} over median "
                     f"of {count(un.get('runs'))} unprofiled {with_spread(un.get(key), spread(un, key))})")
    if figures.get("sdpa_backend_used"):
        lines.append(f"{label}: {attention_text(figures)}")
    return lines + spread_warnings(label, figures)


def attention_text(figures: dict) -> str:
    return (f"torch SDPA backend {figures['sdpa_backend_used']} (asked: {figures.get('sdpa_backend') or 'auto'}); "
            f"generate(): {figures.get('sdpa_backend_used_generate') or '-'}")
