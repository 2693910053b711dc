"""Traces as users have them: without tracer's step annotations or sidecar (issue 26). The inputs are the committed
fixtures with their step annotations removed (tests/unannotated.py), analysed without a sidecar, and set against the
same fixtures as recorded."""

import pytest

import tracer
from tests.conftest import CPU_RECORDINGS, DATA, EXTERNAL, run_cli
from tests.unannotated import decode_window, hf_window_mid_step, strip_hf_ranges, strip_nsys_steps, strip_vllm_steps

VLLM = DATA / "h200_vllm_gpt2_decode_b16_graphs.json.gz"
NSYS = DATA / "h100_hf_gpt2_decode_b16_s128_o16_nsys.sqlite.gz"
HF = DATA / "h100_hf_gpt2_decode_b16_s128_o16.json.gz"
PHASES = ("prefill", "decode", "mixed")


@pytest.fixture(scope="module")
def derived(tmp_path_factory):
    d = tmp_path_factory.mktemp("unannotated")
    return {"frames": strip_vllm_steps(VLLM, d / "vllm_frames.json.gz", frames=True),
            "bare": strip_vllm_steps(VLLM, d / "vllm_bare.json.gz"),
            "window": decode_window(VLLM, d / "vllm_window.json.gz"),
            "nsys": strip_nsys_steps(NSYS, d / "hf_nsys_coarse.sqlite"),
            "hf": strip_hf_ranges(HF, d / "hf_no_ranges.json.gz"),
            "hf_mid": hf_window_mid_step(HF, d / "hf_mid_step.json.gz")}


@pytest.fixture(scope="module")
def annotated():
    return tracer.load(VLLM).analyze()


def _shares(a):
    t = a.summary["totals"]
    in_phases = 100 * a.kernels.loc[a.kernels["phase"].astype(str).isin(PHASES), "dur_us"].sum() / t["kernel_us"]
    return in_phases, t["unmodeled_pct"]


def _per_phase(a):
    return {r["phase"]: (r["steps"], round(r["kernel_us"], 1)) for r in a.summary["phases"]}


def test_derived_fixtures_hold_no_step_annotations_or_sidecar(derived):
    for key in ("frames", "bare", "window"):
        t = tracer.load(derived[key])
        assert t.sidecar is None
        assert not t.ranges["name"].str.startswith("execute_context_").any()
    frames = tracer.load(derived["frames"]).ranges
    assert (frames["source"] == "vllm_frame").sum() == 67   # one per engine step of the recording
    nsys = tracer.load(derived["nsys"]).ranges
    assert list(nsys["name"]) == ["prefill", "decode"]


def test_execute_model_frames_give_the_annotated_steps(derived, annotated):
    a = tracer.load(derived["frames"]).analyze(model="gpt2")
    in_phases, unmodeled = _shares(a)
    assert in_phases >= 90 and unmodeled <= 5
    # the same phases, steps and kernel time per phase as the trace with its annotations, and the same modeled share
    assert _per_phase(a) == _per_phase(annotated)
    assert unmodeled == pytest.approx(annotated.summary["totals"]["unmodeled_pct"], abs=0.5)
    # one step differs: the last decode step ran 15 sequences in the graph captured for 16, whose shapes say 16
    assert a.kernels["flops"].sum() == pytest.approx(annotated.kernels["flops"].sum(), rel=1e-3)
    assert any("67 steps from vLLM's execute_model Python frames" in n for n in a.notices)


def test_kernel_pattern_splits_steps_without_frames(derived, annotated):
    a = tracer.load(derived["bare"]).analyze(model="gpt2")
    in_phases, unmodeled = _shares(a)
    assert in_phases >= 90 and unmodeled <= 5
    ours, theirs = _per_phase(a), _per_phase(annotated)
    assert set(ours) == set(theirs) == {"prefill", "mixed", "decode"}
    assert {p: s for p, (s, _) in ours.items()} == {p: s for p, (s, _) in theirs.items()}
    for p in ours:   # a step boundary drawn after the sampler instead of at the annotation moves a few kernels
        assert ours[p][1] == pytest.approx(theirs[p][1], rel=0.1)
    assert any("65 steps from the model's kernel pattern" in n for n in a.notices)


def test_without_model_the_reason_is_a_notice_and_no_verdict_is_built_on_nothing(derived):
    a = tracer.load(derived["bare"]).analyze()
    assert a.summary["totals"]["phase_attributed_pct"] == 0
    assert any("steps unknown; name the model with --model" in n for n in a.notices)
    verdicts = " ".join(p["verdict"] for p in a.summary["phases"])
    assert "dominate" not in verdicts and "no bound verdict" in verdicts


def test_the_wrong_model_is_a_notice_not_steps(derived):
    a = tracer.load(derived["bare"]).analyze(model="llama-1b")
    assert a.summary["totals"]["phase_attributed_pct"] == 0
    assert any("attention blocks, not the model's 16 layers" in n for n in a.notices)


def test_steps_that_fit_no_layout_are_named(annotated):
    a = tracer.load(VLLM).analyze(model="llama-1b")
    n = next(n for n in a.notices if "fit no layout of llama" in n)
    assert "65 steps' GEMMs" in n and "16 layers x 4/5/6/7 + 1 expected" in n and "step 0 (49)" in n


def test_one_graph_launch_a_step_in_a_decode_window(derived):
    t = tracer.load(derived["window"])
    bare = t.analyze(model="gpt2")
    assert any("63 steps from one CUDA-graph launch each" in n for n in bare.notices)
    assert any("the trace begins mid-run" in n for n in bare.notices)
    assert [p["phase"] for p in bare.summary["phases"]] == ["decode"]
    a = t.analyze(model="gpt2", workload="decode_b16_s128_o64")
    in_phases, unmodeled = _shares(a)
    assert in_phases >= 90 and unmodeled <= 5
    steps = a["kernels"].groupby("step")["model_op"].apply(lambda s: (s.astype(str) == "lm_head").sum())
    assert (steps == 1).all() and len(steps) == 63   # one LM head a step: the cuts fall between forward passes


def test_coarse_nsys_ranges_split_by_the_kernel_pattern(derived):
    recorded = tracer.load(NSYS).analyze()
    a = tracer.load(derived["nsys"]).analyze(model="gpt2", workload="decode_b16_s128_o16", dtype="float16")
    in_phases, unmodeled = _shares(a)
    assert in_phases >= 90 and unmodeled <= 5
    assert _per_phase(a)["decode"][0] == 15
    assert a.kernels["flops"].sum() == pytest.approx(recorded.kernels["flops"].sum(), rel=1e-3)
    assert any("15 steps from the model's kernel pattern" in n for n in a.notices)
    plain = tracer.load(derived["nsys"]).analyze(model="gpt2")
    assert any("token counts are unknown" in n for n in plain.notices)


def test_hf_trace_without_any_range(derived):
    recorded = tracer.load(HF).analyze()
    a = tracer.load(derived["hf"]).analyze(model="gpt2", workload="decode_b16_s128_o16")
    assert tracer.load(derived["hf"]).ranges.empty
    assert _per_phase(a) == _per_phase(recorded)   # a prefill and 15 decode steps, the same kernels in each
    assert a.summary["totals"]["unmodeled_pct"] <= 5
    assert a.kernels["flops"].sum() == pytest.approx(recorded.kernels["flops"].sum(), rel=1e-6)
    assert any("16 steps from the model's kernel pattern" in n for n in a.notices)


def test_a_capture_begun_inside_a_forward_pass_leaves_that_part_outside_steps(derived):
    a = tracer.load(derived["hf_mid"]).analyze(model="gpt2", workload="decode_b16_s128_o16")
    assert any("the trace begins inside a forward pass: its first 26 GEMMs stay outside steps" in n for n in a.notices)
    k = a.kernels[a.kernels["step"].notna()]
    head = (k["model_op"].astype(str) == "lm_head") & ~k["name"].astype(str).str.contains("splitK")
    heads = head.groupby(k["step"]).sum()
    assert len(heads) == 11 and (heads == 1).all()   # decode steps 4..14 of the recording, whole
    assert k["work_source"].eq("unmodeled").mean() < 0.05


def test_report_without_sidecar_says_once_what_is_missing(derived, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("analyze", derived["bare"], "--out", out)
    assert proc.returncode == 0, proc.stderr
    report = (out / "report.md").read_text()
    assert report.count("no sidecar") == 1
    assert "Throughput and latency" not in report and "dominate (0" not in report
    assert proc.stdout.count("no sidecar") == 1


def test_ops_parquet_holds_the_steps_the_analysis_inferred(derived, tmp_path):
    """`tracer analyze` writes ops.parquet while the analysis runs, unless the analysis infers the steps (from
    the model's kernel pattern here): then ops.parquet holds them, one per step found, with their phases."""
    import pandas as pd

    proc = run_cli("analyze", derived["bare"], "--out", tmp_path / "out", "--model", "gpt2")
    assert proc.returncode == 0, proc.stderr
    written = pd.read_parquet(tmp_path / "out" / "ops.parquet")
    parsed = tracer.load(derived["bare"]).ops
    assert len(written) == len(parsed) and parsed["step"].isna().all()
    assert written["step"].nunique() == 65 and set(written["phase"].astype(str)) >= {"prefill", "decode"}


def test_b200_execute_model_frame_is_a_step():
    path = EXTERNAL / "tracelens" / "b200_eager_trace.json.gz"
    if not path.exists():
        pytest.skip(f"external trace absent: {path}")
    t = tracer.load(path)
    frames = t.ranges[t.ranges["source"] == "vllm_frame"]
    assert len(frames) == 1
    k = t.kernels
    assert k.loc[k["step"] == 0, "dur_us"].sum() / k["dur_us"].sum() > 0.9
    a = t.analyze()
    assert any("have no tokens the trace can tell" in n for n in a.notices)
    # its step annotation, execute_context_1(888_788544)_generation_0(0), is in no form tracer reads: said so
    assert any("named like vLLM steps" in n and "888_788544" in n for n in a.notices)


def test_execute_model_frames_of_the_vllm_versions_read():
    from tracer.parse.frame_steps import EXECUTE_MODEL
    read = ["vllm/v1/worker/gpu_model_runner.py(2907): execute_model",          # V1 (0.6 onward)
            "/usr/lib/python3/site-packages/vllm/v1/worker/gpu/model_runner.py(512): execute_model",   # V1 runner v2
            "vllm/worker/model_runner.py(1650): execute_model",                  # V0
            "vllm/worker/multi_step_model_runner.py(450): execute_model"]
    not_steps = ["vllm/v1/worker/gpu_worker.py(420): execute_model", "vllm/worker/worker_base.py(300): execute_model",
                 "vllm/v1/worker/gpu_model_runner.py(1297): _prepare_inputs"]
    assert all(EXECUTE_MODEL.search(n) for n in read)
    assert not any(EXECUTE_MODEL.search(n) for n in not_steps)


@pytest.mark.xdist_group(CPU_RECORDINGS)
def test_vllm_cpu_trace_with_python_stacks(cpu_recordings, tmp_path):
    """vLLM's CPU build recorded with Python stacks (real execute_model frames; the suite's shared recording,
    tests/conftest.py), its step annotations removed: the frames give the same steps, and vLLM's CPU attention op
    the same phases, as the annotations."""
    out = cpu_recordings.trace("vllm", "decode_b4_s64_o8")
    bare = strip_vllm_steps(out, tmp_path / "bare.json.gz")
    frames = tracer.load(bare).ranges
    annotated = tracer.load(out).ranges
    assert (frames["source"] == "vllm_frame").sum() == (annotated["source"] == "vllm_step").sum() > 2
    for path, extra in ((out, ()), (bare, ("--model", "gpt2", "--layers", "2"))):
        a = run_cli("analyze", path, "--out", tmp_path / f"an_{path.stem}", *extra)
        assert a.returncode == 0, a.stderr
    import pandas as pd
    ops = {p: pd.read_parquet(tmp_path / f"an_{p}" / "ops.parquet") for p in (out.stem, bare.stem)}
    # per step, its phase (an empty engine step, execute_context_0(0)_generation_0(0), has none either way)
    steps = {p: o[o["phase"].isin(PHASES)].dropna(subset=["step"]).groupby("step")["phase"]
             .agg(lambda s: s.mode().iat[0]).to_dict() for p, o in ops.items()}
    assert steps[bare.stem] == steps[out.stem]
    assert set(steps[bare.stem].values()) >= {"prefill", "decode"}
    model_ops = ops[bare.stem][ops[bare.stem]["name"].str.startswith(("aten::", "vllm::", "_C::"))]
    inside = model_ops.loc[model_ops["phase"].isin(PHASES), "dur_us"].sum()
    assert inside / model_ops["dur_us"].sum() >= 0.99
