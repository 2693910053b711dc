"""Independent timing for #27's acceptance: HF `model.generate()` and vLLM `LLM.generate()` timed here with plain
perf_counter (none of tracer's timing code), on the same synthetic prompt ids tracer uses (workloads/prompts.py),
the same seeded model and dtype; each figure the median of 5 after one warm-up. Then one table: tracer's
unprofiled medians from the records' sidecars against these timings, and the records' profiler inflations.

    python tests/device/independent_timing.py --records traces/gpu/c10/r1 traces/gpu/c10/r2 [--model gpt2]
        [--dtype bfloat16] [--batch 16 --prompt 128 --output 64] [--repeats 5] [--json OUT.json]

Decode ms/token = (time of the whole output - time of one token) / (output tokens - 1); TTFT = one-token call, and
for vLLM also vLLM's own first-token latency (arrival to first token, mean over requests) in the whole-output
generate(), which, like tracer's, includes the step that async scheduling runs before a step's tokens come back.
vLLM is timed twice: with the engine core in this process, where generate() adds the whole batch before the first
step (tracer admits a batch the same way, pausing the core's scheduler while it adds), and with the core in its
own process, vLLM's default, where the batch may be prefilled over two steps, differently from run to run.
"""
from __future__ import annotations

import argparse
import gc
import glob
import json
import statistics
import time


def median(xs):
    return statistics.median(xs) if xs else None


def timed(fn, sync) -> float:
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t0


def figures(one_s: list[float], whole_s: list[float], batch: int, output: int) -> dict:
    """Per repeat (one token, whole output) pairs -> medians."""
    decode = [(w - o) * 1e3 / (output - 1) for o, w in zip(one_s, whole_s)]
    return {"ttft_ms": median([o * 1e3 for o in one_s]), "decode_ms_per_token": median(decode),
            "output_tokens_per_s": median([batch * output / w for w in whole_s])}


def time_hf(args, prompts) -> dict:
    import torch
    from transformers import GenerationConfig

    from workloads.models import build_model

    lm, config = build_model(args.model, None, getattr(torch, args.dtype), args.device)
    ids = torch.tensor(prompts, device=args.device)
    mask = torch.ones_like(ids)
    eos = config.eos_token_id

    def gen(n):
        cfg = GenerationConfig(max_new_tokens=n, min_new_tokens=n, do_sample=False, num_beams=1,
                               eos_token_id=eos, pad_token_id=eos if eos is not None else 0)
        with torch.inference_mode():
            out = lm.generate(input_ids=ids, attention_mask=mask, generation_config=cfg)
        assert out.shape[1] == ids.shape[1] + n, out.shape
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    timed(lambda: gen(1), sync), timed(lambda: gen(args.output), sync)   # warm-up
    one, whole = [], []
    for _ in range(args.repeats):
        one.append(timed(lambda: gen(1), sync))
        whole.append(timed(lambda: gen(args.output), sync))
    del lm
    gc.collect()
    if args.device.startswith("cuda"):
        torch.cuda.empty_cache()
    return figures(one, whole, args.batch, args.output)


def time_vllm(args, prompts, in_process: bool) -> dict:
    """vLLM's LLM.generate() timed as users run it. `in_process`: the engine core in this process
    (VLLM_ENABLE_V1_MULTIPROCESSING=0), where generate() adds every request before the first step, so the batch is
    prefilled in one step; with the core in its own process (the default) it starts stepping on the first request
    and may prefill the batch over two steps, differently from run to run."""
    import os

    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0" if in_process else "1"
    from vllm import LLM, SamplingParams

    from workloads.models import saved_checkpoint

    # stats on: vLLM's own per-request first-token latency (arrival to the first token the frontend sees)
    llm = LLM(model=saved_checkpoint(args.model, None, args.dtype), skip_tokenizer_init=True, dtype=args.dtype,
              seed=0, gpu_memory_utilization=0.3, enable_prefix_caching=False, max_num_seqs=256,
              disable_log_stats=False)
    token_prompts = [{"prompt_token_ids": p} for p in prompts]
    first_token_ms, prefill_steps = [], []

    def gen(n):
        params = SamplingParams(max_tokens=n, temperature=0.0, ignore_eos=True, detokenize=False)
        outs = llm.generate(token_prompts, params, use_tqdm=False)
        assert all(len(o.outputs[0].token_ids) == n for o in outs)
        if n > 1 and all(getattr(o, "metrics", None) is not None for o in outs):
            first_token_ms.append(1e3 * statistics.mean(o.metrics.first_token_latency for o in outs))
            # the steps that first scheduled a request: 1 when the batch was prefilled together
            prefill_steps.append(len({round(o.metrics.scheduled_ts, 6) for o in outs}))
    sync = lambda: None   # noqa: E731  (LLM.generate returns when every output is back on the host)
    timed(lambda: gen(1), sync), timed(lambda: gen(args.output), sync)
    one, whole = [], []
    first_token_ms.clear(), prefill_steps.clear()
    for _ in range(args.repeats):
        one.append(timed(lambda: gen(1), sync))
        whole.append(timed(lambda: gen(args.output), sync))
    try:
        llm.llm_engine.engine_core.shutdown()
    except Exception:
        pass
    del llm
    gc.collect()
    return figures(one, whole, args.batch, args.output) | {"first_token_latency_ms": median(first_token_ms),
                                                           "prefill_steps_per_run": prefill_steps}


def sidecars(folder: str) -> dict:
    """{backend: figures} of the records in a folder."""
    out = {}
    # `--backend hf,vllm` writes a folder; one backend writes <folder>.json.gz beside <folder>.meta.json
    for path in sorted(glob.glob(f"{folder}/**/*.meta.json", recursive=True)) + glob.glob(f"{folder}.meta.json"):
        side = json.load(open(path))
        out[side["backend"]] = side["figures"]
    return out


def pct(a, b):
    return f"{100 * (a - b) / b:+.1f}%" if a is not None and b else "-"


def fmt(v, spread=None):
    if v is None:
        return "-"
    return f"{v:.4g}" + (f" ±{spread:.0f}%" if spread is not None else "")


def table(records: list[dict], independent: dict) -> list[str]:
    """Rows: figure, each record's unprofiled median (± spread), the independent median, each record against it,
    the second record against the first; then each backend's profiler inflation in each record."""
    rows = []
    names = [f"record {i + 1}" for i in range(len(records))]
    between = lambda vals: pct(vals[1], vals[0]) if len(vals) > 1 else "-"   # noqa: E731
    # (label, the record's backend, its unprofiled figure, the independent timing, its figure)
    items = (("HF generate() TTFT ms", "hf", "hf_generate_ttft_ms", "hf", "ttft_ms"),
             ("HF generate() decode ms/token", "hf", "hf_generate_decode_ms_per_token", "hf", "decode_ms_per_token"),
             ("HF generate() output tok/s", "hf", "hf_generate_output_tokens_per_s", "hf", "output_tokens_per_s"),
             ("HF annotated loop TTFT ms (vs generate)", "hf", "ttft_ms", "hf", "ttft_ms"),
             ("HF annotated loop decode ms/token (vs generate)", "hf", "decode_ms_per_token_mean", "hf",
              "decode_ms_per_token"),
             ("vLLM TTFT ms (vs one-token generate(), in-process)", "vllm", "ttft_ms", "vllm", "ttft_ms"),
             ("vLLM TTFT ms (vs vLLM's first_token_latency, in-process)", "vllm", "ttft_ms", "vllm",
              "first_token_latency_ms"),
             ("vLLM decode ms/token (vs in-process)", "vllm", "decode_ms_per_token_mean", "vllm", "decode_ms_per_token"),
             ("vLLM output tok/s (vs in-process)", "vllm", "output_tokens_per_s", "vllm", "output_tokens_per_s"),
             ("vLLM TTFT ms (vs one-token generate(), multiprocess)", "vllm", "ttft_ms", "vllm-mp", "ttft_ms"),
             ("vLLM TTFT ms (vs first_token_latency, multiprocess)", "vllm", "ttft_ms", "vllm-mp",
              "first_token_latency_ms"),
             ("vLLM decode ms/token (vs multiprocess)", "vllm", "decode_ms_per_token_mean", "vllm-mp",
              "decode_ms_per_token"),
             ("vLLM output tok/s (vs multiprocess)", "vllm", "output_tokens_per_s", "vllm-mp", "output_tokens_per_s"))
    for label, backend, key, ref_backend, ikey in items:
        if ref_backend not in independent:
            continue
        unp = [((r.get(backend) or {}).get("unprofiled") or {}) for r in records]
        vals = [u.get(key) for u in unp]
        ref = independent[ref_backend].get(ikey)
        rows.append([label] + [fmt(v, u.get(f"{key}_spread_pct")) for v, u in zip(vals, unp)] + [fmt(ref)]
                    + [pct(v, ref) for v in vals] + [between(vals)])
    for backend in ("hf", "vllm"):
        infl = [(r.get(backend) or {}).get("profiler_inflation") for r in records]
        spread = [(((r.get(backend) or {}).get("profiled") or {}).get("decode_ms_per_token_mean_spread_pct"))
                  for r in records]
        rows.append([f"{backend} profiler inflation (x; profiled spread)"]
                    + [fmt(i) + (f" (±{s:.0f}%)" if s is not None else "") for i, s in zip(infl, spread)]
                    + ["-"] + ["" for _ in records] + [between(infl) if None not in infl else "-"])
    attention = [(r.get("hf") or {}).get("sdpa_backend_used") for r in records]
    header = ["figure"] + names + ["independent"] + [f"{n} vs indep." for n in names] + ["rec 2 vs rec 1"]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    admission = [((r.get("vllm") or {}).get("batch_admission"), (r.get("vllm") or {}).get("first_token_steps"))
                 for r in records]
    split = {b: (independent.get(b) or {}).get("prefill_steps_per_run") for b in ("vllm", "vllm-mp")}
    return [line(header)] + [line(r) for r in rows] + [f"HF SDPA backend used per record: {attention}",
            f"vLLM batch admission, steps bringing first tokens (profiled run) per record: {admission}",
            f"independent vLLM: steps that first scheduled a request, per timed run: {split}"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", nargs="+", required=True, help="folders of `tracer record --backend hf,vllm`")
    ap.add_argument("--model", default="gpt2")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--output", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--backends", default="hf,vllm,vllm-mp")
    ap.add_argument("--device", default="cuda", help="cuda (the acceptance run); cpu only to try the script")
    ap.add_argument("--json", help="write the figures here too")
    args = ap.parse_args()

    from workloads.models import model_config
    from workloads.prompts import synthetic_prompt_ids

    prompts = synthetic_prompt_ids(args.batch, args.prompt, model_config(args.model).vocab_size)
    independent = {}
    for backend in args.backends.split(","):
        t0 = time.perf_counter()
        if backend == "hf":
            independent[backend] = time_hf(args, prompts)
        else:   # "vllm": in-process engine (the whole batch in its first step); "vllm-mp": the core in its own process
            independent[backend] = time_vllm(args, prompts, in_process=backend == "vllm")
        print(f"independent {backend}: {independent[backend]} ({time.perf_counter() - t0:.0f} s)", flush=True)
    records = [sidecars(f) for f in args.records]
    print("\n".join(table(records, independent)))
    if args.json:
        json.dump({"independent": independent, "records": records}, open(args.json, "w"), indent=1, default=str)


if __name__ == "__main__":
    main()
