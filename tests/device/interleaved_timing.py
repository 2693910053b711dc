"""Device experiment (#27): are tracer's unprofiled figures and the users' own calls apart by method or by the
machine's drift? Two `tracer record` runs minutes apart on one H200 differed by 13% (HF annotated loop) and 25%
(vLLM decode), each with a spread of 1-3% inside the record. Here each round runs, back to back in one process,
tracer's measured loop and the call users make (HF generate(); vLLM LLM.generate()), so a drift of the host moves
both alike. Each round also times a fixed pure-Python probe and reads the host's CPU steal and the other
processes' busy time from /proc/stat, to show the drift on the host side.

Usage: PYTHONPATH=. python3 tests/device/interleaved_timing.py --rounds 7 [--backends hf,vllm,vllm-indep]
"vllm": tracer's engine settings; "vllm-indep": the settings of tests/device/independent_timing.py (vLLM's
default max_model_len, 0.3 of the memory)."""
import argparse
import gc
import json
import statistics
import sys
import time


def probe_ms() -> float:
    t0 = time.perf_counter()
    s = 0
    for i in range(1_000_000):
        s += i & 7
    return (time.perf_counter() - t0) * 1e3


def cpu_times() -> list[int]:
    with open("/proc/stat") as f:
        return [int(x) for x in f.readline().split()[1:]]


def host_share(before: list[int], after: list[int]) -> dict:
    """Steal and busy shares of all CPUs over an interval (busy includes this process)."""
    d = [a - b for a, b in zip(after, before)]
    total = sum(d) or 1
    idle = d[3] + d[4]
    steal = d[7] if len(d) > 7 else 0
    return {"steal_pct": 100 * steal / total, "busy_pct": 100 * (total - idle - steal) / total}


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def hf_rounds(args, wl):
    import torch

    from workloads.hf import run_hf
    from workloads.hf_generate import generate_runs
    from workloads.models import build_model

    lm, config = build_model(args.model, None, getattr(torch, args.dtype), args.device)
    run_hf(lm, config, wl, args.device, warmup=2)
    generate_runs(lm, config, wl, args.device, repeats=0, warmup=2)
    rows = []
    for r in range(args.rounds):
        c0, p = cpu_times(), probe_ms()
        loop = run_hf(lm, config, wl, args.device, warmup=0)
        gen = generate_runs(lm, config, wl, args.device, repeats=1, warmup=0)[0]
        rows.append({"round": r, "probe_ms": p, **host_share(c0, cpu_times()),
                     "loop_ttft_ms": loop.ttft_ms, "loop_decode_ms": statistics.mean(loop.decode_step_ms),
                     "gen_ttft_ms": gen["ttft_ms"], "gen_decode_ms": gen["decode_ms_per_token"]})
        print("hf", json.dumps({k: round(v, 3) for k, v in rows[-1].items()}), flush=True)
    del lm
    gc.collect()
    torch.cuda.empty_cache() if args.device == "cuda" else None
    return rows


def vllm_rounds(args, wl, indep: bool):
    from vllm import SamplingParams

    from workloads.models import model_config, saved_checkpoint
    from tracer.recording.run import shutdown_engine
    from workloads.vllm_engine import run_vllm
    from workloads.vllm_start import VllmOptions, build_engine, engine_max_len

    config = model_config(args.model, None)
    model_dir = saved_checkpoint(args.model, None, args.dtype)
    if indep:
        from vllm import LLM
        llm = LLM(model=model_dir, skip_tokenizer_init=True, dtype=args.dtype, seed=0, gpu_memory_utilization=0.3,
                  enable_prefix_caching=False, max_num_seqs=256, disable_log_stats=False)
    else:
        opts = VllmOptions(max_num_seqs=256)
        llm = build_engine(model_dir, args.device, args.dtype, opts, engine_max_len(config, wl.prompt_tokens + wl.output_tokens))
    from workloads.prompts import synthetic_prompt_ids
    prompts = [{"prompt_token_ids": p} for p in synthetic_prompt_ids(wl.batch, wl.prompt_tokens, config.vocab_size)]

    def gen(n):
        params = SamplingParams(max_tokens=n, temperature=0.0, ignore_eos=True, detokenize=False)
        t0 = time.perf_counter()
        outs = llm.generate(prompts, params, use_tqdm=False)
        dt = time.perf_counter() - t0
        assert all(len(o.outputs[0].token_ids) == n for o in outs)
        return dt
    run_vllm(llm, config, wl, warmup=2)
    gen(1), gen(wl.output_tokens), gen(1), gen(wl.output_tokens)
    rows = []
    for r in range(args.rounds):
        c0, p = cpu_times(), probe_ms()
        loop = run_vllm(llm, config, wl, warmup=0, kv_usage_peak=0.0)
        one, whole = gen(1), gen(wl.output_tokens)
        rows.append({"round": r, "probe_ms": p, **host_share(c0, cpu_times()),
                     "loop_ttft_ms": loop.ttft_ms, "loop_decode_ms": statistics.mean(loop.decode_step_ms),
                     "loop_total_ms": loop.total_s * 1e3,
                     "gen_ttft_ms": one * 1e3, "gen_decode_ms": (whole - one) * 1e3 / (wl.output_tokens - 1),
                     "gen_total_ms": whole * 1e3})
        print("vllm-indep" if indep else "vllm", json.dumps({k: round(v, 3) for k, v in rows[-1].items()}), flush=True)
    shutdown_engine(llm)
    del llm
    gc.collect()
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="gpt2")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--workload", default="decode_b16")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--backends", default="hf,vllm,vllm-indep")
    ap.add_argument("--json")
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    from workloads.spec import parse_workload
    wl = parse_workload(args.workload)
    out = {}
    for b in args.backends.split(","):
        t0 = time.perf_counter()
        out[b] = hf_rounds(args, wl) if b == "hf" else vllm_rounds(args, wl, indep=b == "vllm-indep")
        rows = out[b]
        keys = [k for k in rows[0] if k != "round"]
        print(f"== {b} ({time.perf_counter() - t0:.0f} s): medians " +
              ", ".join(f"{k} {med([r[k] for r in rows]):.3f}" for k in keys), flush=True)
        if "gen_decode_ms" in rows[0]:
            ratio = [r["loop_decode_ms"] / r["gen_decode_ms"] for r in rows]
            print(f"   loop/generate decode per round: {[round(x, 3) for x in ratio]}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
