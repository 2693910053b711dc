"""The `tracer` command line: click commands only, each a few lines that call library functions."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from tracer.errors import TracerError
from workloads.sdpa import SDPA_BACKENDS   # light: torch is imported when a backend is set


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="show the profilers' own log lines (Kineto, torch.profiler)")
def cli(verbose):
    """Profile LLM inference (HF transformers and vLLM), parse traces into tables, analyse kernels."""
    click.get_current_context().obj = {"verbose": verbose}


def _quiet() -> None:
    ctx = click.get_current_context()
    if not (ctx.find_root().obj or {}).get("verbose"):
        from tracer.quiet import quiet_profilers
        quiet_profilers()


def _nonempty_list(value: str, flag: str) -> list[str]:
    items = [x.strip() for x in value.split(",") if x.strip()]
    if not items:
        raise TracerError(f"{flag} {value!r}: expected at least one name")
    return items


def _backends(value: str) -> list[str]:
    items = _nonempty_list(value, "--backend")
    bad = [b for b in items if b not in ("hf", "vllm")]
    if bad:
        raise TracerError(f"--backend {value!r}: expected hf, vllm or hf,vllm (not {', '.join(bad)})")
    return list(dict.fromkeys(items))


_FORCE = click.option("--force", is_flag=True, help="replace files in the output place that tracer did not write")
_PORT = click.IntRange(0, 65535)


@cli.command()
def workloads():
    """List the workload grammar, its defaults and the model presets."""
    from workloads.models import DEFAULT_MODEL, PRESETS
    from workloads.spec import DEFAULT_OUTPUT_TOKENS, DEFAULT_PROMPT_TOKENS, EXAMPLES, GRAMMAR

    click.echo(f"workload names: {GRAMMAR}")
    click.echo(f"  defaults: prompt {DEFAULT_PROMPT_TOKENS} tokens; output {DEFAULT_OUTPUT_TOKENS} tokens "
               "(prefill_*: 1 output token, the prefill alone)")
    click.echo(f"  examples: {', '.join(EXAMPLES)}")
    click.echo("  phases recorded: prefill, decode, and one decode_step per decode forward pass")
    click.echo("models (seeded random weights from the published config; --model PATH loads a local checkpoint):")
    for name, (_, desc) in PRESETS.items():
        click.echo(f"  {name:<11} {desc}{'  [default]' if name == DEFAULT_MODEL else ''}")


def _vllm_options(f):
    f = click.option("--enforce-eager", is_flag=True, help="vLLM: no CUDA graphs, no torch.compile")(f)
    f = click.option("--gpu-memory-utilization", type=float, help="vLLM: share of device memory (CPU: RAM)")(f)
    f = click.option("--max-num-batched-tokens", type=int, help="vLLM: tokens per scheduler step")(f)
    f = click.option("--max-num-seqs", type=int, help="vLLM: sequences per scheduler step")(f)
    f = click.option("--enable-prefix-caching", is_flag=True,
                     help="vLLM: keep prefix caching on (off by default: it skips repeated prefills)")(f)
    f = click.option("--cudagraph-capture-sizes", help="vLLM: token counts to capture CUDA graphs for, e.g. 16,512 "
                     "(default vLLM's; under ncu: the measured step's)")(f)
    f = click.option("--quantization", help="vLLM: quantization method, e.g. fp8 (online, from a bf16 model), "
                     "or the checkpoint's (awq, gptq, compressed-tensors, ...)")(f)
    f = click.option("--kv-cache-dtype", type=click.Choice(["auto", "fp8", "fp8_e4m3", "fp8_e5m2"]),
                     help="vLLM: KV-cache element type (fp8 halves the cache)")(f)
    f = click.option("--moe-routing", is_flag=True,
                     help="vLLM, MoE models: record which experts each token was routed to, so that analysis uses "
                     "the true expert counts (costs a copy kernel per MoE layer; vLLM 0.26 then uses its V1 model "
                     "runner)")(f)
    return f


def _vllm_opts(kw):
    from workloads.vllm_engine import VllmOptions
    return VllmOptions(enforce_eager=kw["enforce_eager"], gpu_memory_utilization=kw["gpu_memory_utilization"],
                       max_num_batched_tokens=kw["max_num_batched_tokens"], max_num_seqs=kw["max_num_seqs"],
                       prefix_caching=kw["enable_prefix_caching"],
                       cudagraph_capture_sizes=_int_list(kw["cudagraph_capture_sizes"], "--cudagraph-capture-sizes"),
                       quantization=kw["quantization"] or None,
                       kv_cache_dtype=None if kw["kv_cache_dtype"] in (None, "auto") else kw["kv_cache_dtype"],
                       moe_routing=kw["moe_routing"])


def _int_list(text: str | None, option: str) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise click.UsageError(f"{option} {text!r}: expected positive integers, comma-separated") from None
    if not values or min(values) < 1:
        raise click.UsageError(f"{option} {text!r}: expected positive integers, comma-separated")
    return values


@cli.command()
@click.option("--workload", "-w", required=True,
              help="e.g. decode_b16, prefill_b1_s512 (see `tracer workloads`); several, comma-separated, share "
                   "one loaded model or engine")
@click.option("--backend", default="hf", show_default=True, help="hf, vllm, or both: hf,vllm (then compared)")
@click.option("--model", default="gpt2", show_default=True, help="preset name or local checkpoint folder")
@click.option("--layers", type=int, help="shorten the preset to N layers (recorded in the sidecar)")
@click.option("--device", default="auto", show_default=True, help="auto (GPU if present), cuda[:N] or cpu")
@click.option("--dtype", type=click.Choice(["bfloat16", "float16", "float32"]),
              help="default: bfloat16 on GPU, float32 on CPU")
@click.option("--profiler", default="torch", show_default=True,
              type=click.Choice(["torch", "nsys", "ncu", "none", "capture"]),
              help="none: timing only, no profiler overhead")
@click.option("--out", help="trace path (default traces/<backend>_<model>_<workload>_<device>.json.gz); "
                           "with several workloads, a folder")
@click.option("--warmup", default=1, show_default=True, type=click.IntRange(min=0),
              help="warm-up runs before the measured run")
@click.option("--ncu-range", type=click.Choice(["prefill", "decode"]), help="ncu: the phase to measure")
@click.option("--ncu-launch-count", default=400, show_default=True, type=click.IntRange(min=1),
              help="ncu: kernels at most")
@click.option("--tool-path", help="nsys/ncu executable when not on PATH (or TRACER_NSYS / TRACER_NCU)")
@click.option("--repeat", default=5, show_default=True, type=click.IntRange(min=1),
              help="timed runs without a profiler after the warm-ups: each figure their median, with its spread")
@click.option("--profiled-repeats", default=3, show_default=True, type=click.IntRange(min=1),
              help="--profiler torch: profiled runs (the last one's trace is written)")
@click.option("--sdpa-backend", type=click.Choice(SDPA_BACKENDS), default="auto", show_default=True,
              help="HF: torch's attention backend (auto: torch's choice); the one used is in the sidecar")
@_FORCE
@_vllm_options
def record(**kw):
    """Run a named workload and write a trace under traces/ plus a <name>.meta.json sidecar."""
    from tracer.io.outputs import check_record_out
    from tracer.record.run import RecordRequest, record as do_record
    from workloads.spec import parse_workload

    backends = _backends(kw["backend"])
    wls = [parse_workload(w) for w in _nonempty_list(kw["workload"], "--workload")]
    out = check_record_out(kw["out"], len(backends) * len(wls), kw["force"])
    _quiet()
    req = RecordRequest(workload=wls[0], backend=backends[0], model=kw["model"],
                        layers=kw["layers"], device=kw["device"], dtype=kw["dtype"], profiler=kw["profiler"],
                        out=kw["out"], warmup=kw["warmup"], vllm=_vllm_opts(kw), ncu_range=kw["ncu_range"],
                        ncu_launch_count=kw["ncu_launch_count"], tool_path=kw["tool_path"], repeat=kw["repeat"],
                        profiled_repeats=kw["profiled_repeats"], sdpa_backend=kw["sdpa_backend"])
    if len(backends) == 1:
        written = do_record(req, tuple(wls[1:]))
        _echo_repeated_figures(written)
        click.echo("wrote " + " ".join(str(p) for p in written), err=True)
        return
    from dataclasses import replace
    traces: dict[str, list[str]] = {w.name: [] for w in wls}
    for backend in backends:   # every workload on each backend, into --out when given
        written = do_record(replace(req, backend=backend), tuple(wls[1:]))
        _echo_repeated_figures(written)
        click.echo("wrote " + " ".join(str(p) for p in written), err=True)
        firsts = [p for i, p in enumerate(written) if i == 0 or str(written[i - 1]).endswith(".meta.json")]
        for w, trace in zip(wls, firsts):
            traces[w.name].append(str(trace))
    from tracer.commands import compare_paths
    for name, paths in traces.items():
        where = Path(out) / f"compare_{name}" if out else Path("traces") / f"compare_{name}"
        compare_paths(paths, out_dir=str(where), as_json=False, force=kw["force"])


def _echo_repeated_figures(written) -> None:
    """Each sidecar's repeated figures: medians with their spreads, generate()'s, inflation, warnings."""
    import orjson

    from analysis.repeat_figures import record_lines
    for p in written:
        if str(p).endswith(".meta.json"):
            side = orjson.loads(Path(p).read_bytes())
            label = f"{side['backend']}:{side['workload']['name']}"
            for line in record_lines(label, side.get("figures") or {}):
                click.echo(line)


def _work_model_options(f):
    """The model and workload of a trace recorded without our sidecar (vLLM's own profiler output, an nsys export),
    so that kernels without recorded shapes get their work from the model's architecture."""
    f = click.option("--dtype", type=click.Choice(["bfloat16", "float16", "float32"]),
                     help="the model's dtype (default: the sidecar's, else the ops' inputs')")(f)
    f = click.option("--workload", "-w", help="the run's workload, e.g. decode_b16_s128_o64 (HF traces without "
                     "a sidecar; vLLM's step annotations carry their own token counts)")(f)
    f = click.option("--layers", type=int, help="the preset cut to N layers")(f)
    f = click.option("--quantization", help="how the traced model's projections were quantized (fp8, fp8_block, "
                     "int8, awq, gptq, ...); default: the sidecar's, the config's, else what the kernels show")(f)
    f = click.option("--kv-cache-dtype", type=click.Choice(["auto", "fp8", "fp8_e4m3", "fp8_e5m2"]),
                     help="the traced KV cache's element type; default: the sidecar's, else what the kernels show")(f)
    return click.option("--model", help="the traced model: a preset (gpt2, llama-1b, ...), a local checkpoint "
                        "folder or config.json; default: the sidecar's")(f)


@cli.command()
@click.argument("trace", nargs=-1, required=True)
@click.option("--out", help="output folder (default <trace stem>_analysis beside the trace; several traces: "
                           "ranks_analysis in their folder)")
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None,
              help="several traces: parse them as tasks on the Ray cluster at ADDRESS (a local one when none "
                   "is given; put --ray after the traces)")
@click.option("--json", "as_json", is_flag=True, help="print summary.json to stdout")
@click.option("--peaks", type=click.Path(exists=True, dir_okay=False), help="peaks JSON from `tracer calibrate`")
@click.option("--ncu", "ncu_file", type=click.Path(exists=True, dir_okay=False),
              help="Nsight Compute CSV of the same workload: measured against analytic work")
@click.option("--ncu-phase", type=click.Choice(["prefill", "decode"]), help="phase the ncu CSV measured")
@_work_model_options
@click.option("--tp", type=click.IntRange(min=1), help="tensor-parallel degree: each rank's work is its 1/N shard "
              "of the model (default: the trace's distributedInfo.world_size)")
@_FORCE
def analyze(trace, out, ray_address, as_json, peaks, ncu_file, ncu_phase, model, layers, workload, dtype,
            quantization, kv_cache_dtype, tp, force):
    """Per-kernel tables, roofline and memory/compute/latency breakdowns of a trace (Chrome/Kineto JSON,
    nsys .sqlite or .nsys-rep); several traces (files, a folder, a glob): one per rank, with a rank column,
    communication, overlap and stragglers."""
    from tracer.commands import analyze_path, work_model_inputs
    if len(trace) > 1 or ray_address is not None or Path(trace[0]).is_dir() or any(c in trace[0] for c in "*?["):
        from tracer.analyze_ranks import analyze_ranks
        analyze_ranks(list(trace), out, as_json, peaks,
                      work_model_inputs(model, layers, workload, dtype, quantization, kv_cache_dtype, tp=tp),
                      ray_address)
        return
    trace = trace[0]
    analyze_path(trace, out, as_json, peaks, ncu_file, ncu_phase,
                 work_model=work_model_inputs(model, layers, workload, dtype, quantization, kv_cache_dtype, tp=tp),
                 force=force)


@cli.command()
@click.argument("traces", nargs=-1, required=True)
@click.option("--out", help="output folder (default traces/compare)")
@click.option("--json", "as_json", is_flag=True)
@click.option("--peaks", type=click.Path(exists=True, dir_okay=False))
@click.option("--fail-if", "fail_if", multiple=True, metavar="COND",
              help="regression gate, e.g. 'decode_ms_per_token>+5%' (change of each run against the first) or "
                   "'unmodeled_pct>3' (a run's value); repeatable; exit 1 with one line per broken condition")
@_work_model_options
@_FORCE
def compare(traces, out, as_json, peaks, fail_if, model, layers, workload, dtype, quantization, kv_cache_dtype,
            force):
    """Side by side: headline, throughput and latency, wall time per step, host time, classes, bound shares,
    memory."""
    from tracer.commands import compare_paths, work_model_inputs
    compare_paths(list(traces), out, as_json, peaks, work_model=work_model_inputs(model, layers, workload, dtype, quantization, kv_cache_dtype),
                  fail_if=fail_if, force=force)


@cli.command(name="open")
@click.argument("trace", type=click.Path(dir_okay=False))
@click.option("--port", default=9001, show_default=True, type=_PORT, help="port on 127.0.0.1 (Perfetto's default)")
@click.option("--no-browser", is_flag=True, help="print the link only")
def open_trace(trace, port, no_browser):
    """Serve TRACE on 127.0.0.1 for ui.perfetto.dev and print (and open) the deep link; Ctrl-C stops."""
    import webbrowser

    from tracer.perfetto import make_server

    server, url, link = make_server(Path(trace), port)
    click.echo(f"serving {url}\nopen: {link}", err=False)
    sys.stdout.flush()
    if not no_browser:
        try:
            webbrowser.open(link)
        except webbrowser.Error:
            pass
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
    finally:
        server.server_close()


@cli.command()
@click.argument("trace")
def check(trace):
    """Report what Perfetto's JSON importer would mis-draw: overlapping slices, unmatched begin/end, bad units."""
    import orjson

    from tracer.parse.load import read_bytes
    from tracer.perfetto import check_chrome_trace

    try:
        doc = orjson.loads(read_bytes(Path(trace)))
    except orjson.JSONDecodeError as e:
        raise TracerError(f"{trace}: not valid JSON ({e})") from None
    events = doc.get("traceEvents", []) if isinstance(doc, dict) else doc
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise TracerError(f"{trace}: not a Chrome trace (traceEvents must be a list of event objects)")
    problems = check_chrome_trace(events)
    for p in problems:
        click.echo(p)
    if problems:
        raise TracerError(f"{trace}: {len(problems)} problem(s) Perfetto would draw wrongly")
    click.echo(f"{trace}: {len(events)} events, nothing Perfetto would mis-draw")


@cli.command()
@click.option("--out", help="where to store the peaks (default ~/.cache/tracer/peaks/<device>.json)")
def calibrate(out):
    """Measure this GPU's achievable GEMM FLOP/s per dtype and copy bandwidth, for the roofline."""
    from tracer.record.calibrate import calibrate as measure, save_calibration

    result = measure()
    for key, value in result.items():
        click.echo(f"{key}: {value:.1f}" if isinstance(value, float) else f"{key}: {value}")
    click.echo(f"wrote {save_calibration(result, out)}", err=True)


@cli.command()
@click.option("--backend", default="hf", show_default=True, help="hf, vllm or hf,vllm")
@click.option("--model", default="gpt2", show_default=True)
@click.option("--layers", type=click.IntRange(min=1))
@click.option("--batch", default="1", show_default=True, help="batch sizes, e.g. 1,2,4,8,16,32,64")
@click.option("--prompt", default="128", show_default=True, help="prompt lengths, e.g. 32,64,128,256,512,1024")
@click.option("--output", default="64", show_default=True, help="output lengths")
@click.option("--requests", default=None, help="request counts (request-count mode), e.g. 10,50,100,200,500")
@click.option("--hf-batch", default=16, show_default=True, type=click.IntRange(min=1),
              help="HF static batch size in request-count mode")
@click.option("--repeats", default=5, show_default=True, type=click.IntRange(min=1),
              help="timed runs per point: medians with their spread (IQR % of median)")
@click.option("--device", default="auto", show_default=True)
@click.option("--dtype", type=click.Choice(["bfloat16", "float16", "float32"]))
@click.option("--trace", "keep_traces", is_flag=True, help="keep a torch.profiler trace per point")
@click.option("--out", default="traces/sweep", show_default=True, help="output folder")
@click.option("--no-plots", is_flag=True)
@_FORCE
def sweep(**kw):
    """Latency, throughput, memory and GPU utilisation over batch size, prompt length or request count."""
    from tracer.progress import progress
    from tracer.record.sweep import SweepPlan, parse_int_list, run_sweep

    from tracer.io.outputs import SWEEP_FILES, check_out_dir

    out = kw["out"]
    lists = {k: parse_int_list(kw[k], k) for k in ("batch", "prompt", "output")}
    for k, v in lists.items():
        if not v:
            raise TracerError(f"--{k} {kw[k]!r}: expected comma-separated whole numbers, e.g. 1,2,4,8")
    if kw["requests"] is not None and not parse_int_list(kw["requests"], "requests"):
        raise TracerError(f"--requests {kw['requests']!r}: expected comma-separated whole numbers, e.g. 10,50")
    backends = tuple(_backends(kw["backend"]))
    check_out_dir(out, SWEEP_FILES, kw["force"])
    _quiet()
    plan = SweepPlan(backends=backends, model=kw["model"],
                     batches=lists["batch"], prompts=lists["prompt"], outputs=lists["output"],
                     requests=parse_int_list(kw["requests"], "requests"), repeats=kw["repeats"],
                     layers=kw["layers"], device=kw["device"], dtype=kw["dtype"], hf_batch=kw["hf_batch"],
                     trace_dir=str(Path(out) / "traces") if kw["keep_traces"] else None)
    try:
        df = run_sweep(plan, out, progress=lambda total: progress(total, "runs", "tracer sweep", each=True))
    except KeyboardInterrupt:
        click.echo(f"tracer: interrupted; finished points kept in {out}", err=True)
        sys.exit(130)
    click.echo(summarize_sweep(df))
    if not kw["no_plots"]:
        from analysis.sweep_plots import plot_sweep
        for path in plot_sweep(out):
            click.echo(f"wrote {path}", err=True)
        from analysis.html_sweeps import sweep_html
        from tracer.io.atomic import write_atomic
        click.echo(f"wrote {write_atomic(Path(out) / 'report.html', sweep_html(out).encode())}", err=True)
    click.echo(f"wrote {out}/sweep.parquet {out}/sweep.csv {out}/sweep.json", err=True)


@cli.command()
@click.option("--backend", type=click.Choice(["hf", "vllm"]), default="hf", show_default=True)
@click.option("--model", default="gpt2", show_default=True, help="preset name or local checkpoint folder")
@click.option("--layers", type=int, help="shorten the preset to N layers")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=_PORT)
@click.option("--max-batch", type=int, help="HF: requests per batch (default 8); vLLM: --max-num-seqs")
@click.option("--max-wait-ms", default=50.0, show_default=True, help="HF: how long a batch waits to fill")
@click.option("--max-queue", default=256, show_default=True, help="HF: waiting requests before 503")
@click.option("--device", default="auto", show_default=True, help="auto (GPU if present), cuda[:N] or cpu")
@click.option("--dtype", type=click.Choice(["bfloat16", "float16", "float32"]))
@click.option("--enforce-eager", is_flag=True, help="vLLM: no CUDA graphs")
@click.option("--enable-prefix-caching", is_flag=True, help="vLLM: prefix caching (off by default)")
@click.option("--profile", "profile_s", type=float, help="torch.profiler window of this many seconds under load "
              "(HF: from the first batch, with request spans; vLLM: its profiler endpoints, from the first running "
              "request), with the running batch size")
@click.option("--profile-delay", "profile_delay_s", default=0.0, show_default=True, type=float,
              help="open the window this many seconds after the first request runs (past a load's warm-up)")
@click.option("--profile-out", help="trace path of the window (default traces/serve_<backend>_<model>_<device>.json.gz)")
@click.option("--sdpa-backend", type=click.Choice(SDPA_BACKENDS), default="auto",
              show_default=True, help="HF: torch's attention backend (auto: torch's choice; on Hopper that can be "
              "cuDNN, which plans every new KV length once)")
def serve(**kw):
    """Serve /v1/completions (prompts as token ids): HF with a dynamic batcher, or vLLM's own API server."""
    from tracer.serve.hf_server import ServeOptions
    device = kw["device"]
    if device == "auto":
        import torch
        device = "cuda" if torch.cuda.is_available() else "cpu"
    opts = ServeOptions(model=kw["model"], layers=kw["layers"], device=device, dtype=kw["dtype"], host=kw["host"],
                        port=kw["port"], max_batch=kw["max_batch"] or 8, max_wait_ms=kw["max_wait_ms"],
                        max_queue=kw["max_queue"], profile_s=kw["profile_s"], profile_out=kw["profile_out"],
                        profile_delay_s=kw["profile_delay_s"], sdpa_backend=kw["sdpa_backend"])
    if kw["profile_s"] is not None and not kw["profile_s"] > 0:
        raise TracerError("--profile SECONDS must be above 0")
    if not kw["profile_delay_s"] >= 0:
        raise TracerError("--profile-delay SECONDS must be 0 or more")
    if kw["backend"] == "hf":
        from tracer.serve.hf_server import serve_hf
        serve_hf(opts)
    else:
        from tracer.serve.vllm_server import serve_vllm
        serve_vllm(opts, enable_prefix_caching=kw["enable_prefix_caching"], enforce_eager=kw["enforce_eager"],
                   max_num_seqs=kw["max_batch"])


@cli.command()
@click.option("--url", help="server base URL, e.g. http://127.0.0.1:8000")
@click.option("--rate", type=float, help="open loop: Poisson arrivals per second (inf: all at once)")
@click.option("--rates", help="sweep open-loop rates, e.g. 1,2,4,8 (one run each)")
@click.option("--concurrency", type=int, help="closed loop: clients that each wait for their last answer")
@click.option("--requests", default=100, show_default=True, type=int)
@click.option("--min-duration-s", type=float,
              help="open loop: send at least rate x this many requests, so a high rate is held long enough to queue")
@click.option("--prompt", default=128, show_default=True, type=int, help="prompt tokens per request")
@click.option("--output", default=64, show_default=True, type=int, help="output tokens per request")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--model", default="gpt2", show_default=True, help="model name sent in each request")
@click.option("--vocab-size", default=50257, show_default=True, type=int, help="prompt ids are drawn below this")
@click.option("--slo-ttft-ms", type=float, help="goodput: TTFT at most this")
@click.option("--slo-tpot-ms", type=float, help="goodput: TPOT at most this")
@click.option("--timeout-s", default=300.0, show_default=True, help="per request")
@click.option("--warmup-requests", default=0, show_default=True, type=int,
              help="requests sent first (closed loop, same shapes) and not counted")
@click.option("--label", help="name of this server on plots (default: the output folder's name)")
@click.option("--out", default="traces/load", show_default=True, help="output folder")
@click.option("--plot", "plot_with", multiple=True, help="another sweep folder to draw on the same plot")
def load(**kw):
    """Load-test a /v1/completions server: TTFT, TPOT, ITL, e2e, throughput and goodput; sweeps over rates."""
    from tracer.load.runner import load_command
    load_command(**kw)


def summarize_sweep(df) -> str:
    """Per backend and point: the medians of its timed repeats, with the spread (IQR % of median) of each timing."""
    from tracer.record.sweep import point_summary
    cols = [c for c in ("backend", "mode", "requests", "prompt_tokens", "output_tokens", "runs", "ttft_ms",
                        "ttft_ms_spread_pct", "decode_ms_per_token_mean", "decode_ms_per_token_mean_spread_pct",
                        "output_tokens_per_s", "output_tokens_per_s_spread_pct", "peak_allocated_bytes",
                        "nvml_peak_memory_used_bytes", "gpu_util_pct_mean") if c in df.columns or c == "runs"
            or c.endswith("_spread_pct")]
    agg = point_summary(df)
    agg = agg[[c for c in cols if c in agg.columns]].rename(columns=lambda c: c.replace("_spread_pct", " ±%"))
    return agg.round(2).to_string(index=False)


def main(args=None):
    try:
        cli.main(args=args, standalone_mode=False)
    except TracerError as e:
        click.echo(f"tracer: error: {e}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("tracer: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        click.echo(f"tracer: error: {e.format_message()}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("tracer: interrupted", err=True)
        sys.exit(130)
    except MemoryError:
        click.echo("tracer: error: out of memory; use a smaller batch, prompt or trace", err=True)
        sys.exit(2)
    except ModuleNotFoundError as e:   # an install without one of tracer's dependencies (pip install --no-deps)
        click.echo(f"tracer: error: the package {e.name!r} is not installed (pip install {e.name}); what was written "
                   "before this step is kept", err=True)
        sys.exit(2)
    except Exception as e:  # a bug of ours: one line, the traceback only on request
        if _is_oom(e):   # torch.OutOfMemoryError, or the CPU allocator's RuntimeError
            first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), "")[:200]
            click.echo(f"tracer: error: out of memory ({first}); use a smaller batch or prompt", err=True)
            sys.exit(2)
        if os.environ.get("TRACER_DEBUG"):
            raise
        first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), "")
        click.echo(f"tracer: internal error: {type(e).__name__}: {first} (TRACER_DEBUG=1 shows the traceback)",
                   err=True)
        sys.exit(3)


def _is_oom(e: Exception) -> bool:
    text = f"{type(e).__name__} {e}".lower()
    return "outofmemory" in text or "out of memory" in text or "can't allocate memory" in text


if __name__ == "__main__":
    main()
